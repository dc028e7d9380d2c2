"""Test-wide settings: no test may reach the network (Hugging Face libraries are told to stay offline)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
