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

from pathlib import Path

from carbonsim._hydra import script_main
from carbonsim.learn.config import TrainConfig


def work(cfg: TrainConfig, out: Path) -> None:
    """Trains and evaluates."""
    # Imported after validation: torch and stable-baselines3 take a few seconds to load.
    from carbonsim.learn.ppo import train

    result = train(cfg, out)
    print(
        f"train_ppo: policy {result['policy']}\n"
        f"use it: python -m carbonsim policy=ppo policy.checkpoint={result['policy']}"
    )


def main() -> None:
    """Hydra entry point (``conf/train_ppo.yaml``)."""
    script_main("train_ppo", "train_ppo", TrainConfig, work)


if __name__ == "__main__":
    main()
