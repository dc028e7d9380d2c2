"""Train the transformer scheduler: imitate a teacher, fine-tune with PPO, evaluate on held-out windows.

Usage (extras ``rl`` and ``llm``; install torch first with ``pip install torch==2.13.0``)::

    python experiments/train_transformer.py                                  # conf/train_transformer.yaml
    python experiments/train_transformer.py model.backbone=minilm            # pre-trained MiniLM encoder
    python experiments/train_transformer.py ppo.total_timesteps=0            # imitation only
    python -m carbonsim policy=transformer policy.checkpoint=outputs/train_transformer/.../transformer.safetensors

Everything is written to the Hydra run folder (or ``out_dir``); see :mod:`carbonsim.learn.train_transformer`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from carbonsim._hydra import config_dir, register_configs
from carbonsim._schema import ConfigError, build
from carbonsim.learn.config import TrainTransformerConfig


def task(cfg: DictConfig) -> None:
    """Validates the configuration and trains."""
    try:
        train_cfg = build(TrainTransformerConfig, OmegaConf.to_container(cfg, resolve=True), "")
    except ConfigError as exc:
        print(f"train_transformer: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Imported after validation: torch, transformers and stable-baselines3 take seconds to load.
    from carbonsim.learn.train_transformer import train

    out = Path(train_cfg.out_dir) if train_cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    result = train(train_cfg, out)
    print(
        f"train_transformer: network {result['checkpoint']}\n"
        f"use it: python -m carbonsim policy=transformer policy.checkpoint={result['checkpoint']}"
    )


def main() -> None:
    """Hydra entry point."""
    register_configs()
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train_transformer")(task)()


if __name__ == "__main__":
    main()
