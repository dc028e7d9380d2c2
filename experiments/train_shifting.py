"""Train the learned shifting scheduler: imitate teachers, PPO in carbonsim/Shifting-v0, select on 2023.

Usage (extra ``rl``; install torch first with ``pip install torch==2.13.0``)::

    python experiments/train_shifting.py                                   # conf/train_shifting.yaml, minutes
    python experiments/train_shifting.py ppo_timesteps=200000 n_envs=2 subprocess=true imitation_windows=20
    python experiments/train_shifting.py ppo_timesteps=0                    # imitation only
    python experiments/train_shifting.py model.backbone=minilm model.layers=2   # blocks from MiniLM's layers
    python experiments/train_shifting.py init_checkpoint=outputs/.../shifting.npz   # resume
    python -m carbonsim scenario=dag_tpch batch_policy=learned_shifting batch_policy.checkpoint=outputs/.../shifting.npz

Everything is written to the Hydra run folder (or ``out_dir``): ``shifting.npz`` (the selected network),
``imitation.npz``, ``ppo.npz``, ``train_summary.json`` and TensorBoard logs in ``tb/``; see
:mod:`carbonsim.learn.shifting_train` and docs/learning_shifting.md.
"""

from __future__ import annotations

from pathlib import Path

from carbonsim._hydra import script_main
from carbonsim.learn.shifting_config import TrainShiftingConfig


def work(cfg: TrainShiftingConfig, out: Path) -> None:
    """Trains and selects."""
    # Imported after validation: torch and stable-baselines3 take seconds to load.
    from carbonsim.learn.shifting_train import train

    result = train(cfg, out)
    print(
        f"train_shifting: {result['selected']} network {result['checkpoint']} ({result['wall_s']:.0f} s)\n"
        f"use it: python -m carbonsim scenario={cfg.env.scenario} batch_policy=learned_shifting "
        f"batch_policy.checkpoint={result['checkpoint']}"
    )


def main() -> None:
    """Hydra entry point (``conf/train_shifting.yaml``)."""
    script_main("train_shifting", "train_shifting", TrainShiftingConfig, work)


if __name__ == "__main__":
    main()
