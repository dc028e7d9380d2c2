"""Train a PPO routing agent on carbonsim/Routing-v0 and evaluate it on held-out windows.

Usage (extra ``rl``; install torch first with ``pip install torch==2.13.0``)::

    python experiments/train_ppo.py                                   # conf/train_ppo.yaml
    python experiments/train_ppo.py ppo.total_timesteps=50000 ppo.n_envs=4 ppo.vec_env=subproc
    python experiments/train_ppo.py resume=outputs/train_ppo/.../train_state.pt ppo.total_timesteps=600000
    python -m carbonsim policy=ppo policy.checkpoint=outputs/train_ppo/.../policy.npz

Everything is written to the Hydra run folder (or ``out_dir``): ``policy.npz``, ``train_state.pt``,
``checkpoints/``, ``tensorboard/`` (``tensorboard --logdir ...``), ``eval_history.csv`` and the final
``evaluation.csv`` / ``evaluation.md`` (see :mod:`carbonsim.learn.ppo`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from carbonsim._hydra import config_dir, register_configs
from carbonsim._schema import ConfigError, build
from carbonsim.learn.config import TrainConfig


def task(cfg: DictConfig) -> None:
    """Validates the configuration and trains."""
    try:
        train_cfg = build(TrainConfig, OmegaConf.to_container(cfg, resolve=True), "")
    except ConfigError as exc:
        print(f"train_ppo: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Imported after validation: torch and stable-baselines3 take a few seconds to load.
    from carbonsim.learn.ppo import train

    out = Path(train_cfg.out_dir) if train_cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    result = train(train_cfg, out)
    print(
        f"train_ppo: policy {result['policy']}\n"
        f"use it: python -m carbonsim policy=ppo policy.checkpoint={result['policy']}"
    )


def main() -> None:
    """Hydra entry point."""
    register_configs()
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train_ppo")(task)()


if __name__ == "__main__":
    main()
