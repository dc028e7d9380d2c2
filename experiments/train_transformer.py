"""Train the transformer scheduler: imitate a teacher, fine-tune with PPO, evaluate on held-out windows.

Usage (extras ``rl`` and ``llm``; install torch first with ``pip install torch==2.13.0``)::

    python experiments/train_transformer.py                                  # conf/train_transformer.yaml
    python experiments/train_transformer.py model.backbone=minilm            # pre-trained MiniLM encoder
    python experiments/train_transformer.py ppo.total_timesteps=0            # imitation only
    python -m carbonsim policy=transformer policy.checkpoint=outputs/train_transformer/.../transformer.safetensors

Everything is written to the Hydra run folder (or ``out_dir``); see :mod:`carbonsim.learn.train_transformer`.
"""

from __future__ import annotations

from pathlib import Path

from carbonsim._hydra import script_main
from carbonsim.learn.config import TrainTransformerConfig


def work(cfg: TrainTransformerConfig, out: Path) -> None:
    """Trains and evaluates."""
    # Imported after validation: torch, transformers and stable-baselines3 take seconds to load.
    from carbonsim.learn.train_transformer import train

    result = train(cfg, out)
    print(
        f"train_transformer: network {result['checkpoint']}\n"
        f"use it: python -m carbonsim policy=transformer policy.checkpoint={result['checkpoint']}"
    )


def main() -> None:
    """Hydra entry point (``conf/train_transformer.yaml``)."""
    script_main("train_transformer", "train_transformer", TrainTransformerConfig, work)


if __name__ == "__main__":
    main()
