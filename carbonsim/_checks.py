"""Small validators shared by the configuration modules (each raises :class:`ConfigError` naming the field)."""

from __future__ import annotations

import math
from typing import Any

from carbonsim._schema import ConfigError

#: Shares must sum to one within this tolerance (YAML decimals such as 0.1 are not exact in binary).
SHARE_TOLERANCE = 1e-6


def check(ok: bool, name: str, value: Any, expected: str) -> None:
    """Raises ``ConfigError("<name>: expected <expected>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


def finite(x: float) -> bool:
    """Whether ``x`` is a finite number."""
    return math.isfinite(x)


def shares_sum_to_one(name: str, shares: dict[str, float]) -> None:
    """Raises unless the shares sum to 1 (within :data:`SHARE_TOLERANCE`)."""
    total = sum(shares.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        listing = ", ".join(f"{k}={v}" for k, v in shares.items())
        raise ConfigError(f"{name}: shares must sum to 1, they sum to {total:.6g} ({listing})")
