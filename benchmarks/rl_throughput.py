"""Speed of the routing environment and of PPO training on it (extra ``rl``).

Three figures on the default real-data scenario (6 regions, 60 requests/s, measured signals):

* ``env_steps_per_s``: ``RoutingEnv.step`` with uniformly random actions, bare environment (no wrapper),
  resets excluded; one step is one routing decision, including the simulation up to the next arrival, the
  reward's ledger and the observation;
* ``reset_s``: mean wall time of ``reset`` (compiles the episode's world: signals, forecasts, arrivals);
* ``ppo_steps_per_s``: stable-baselines3 PPO ``learn`` over ``--ppo-steps`` steps with the training
  configuration of ``conf/train_ppo.yaml`` (``--n-envs`` environments, ``dummy`` or ``subproc``), no
  evaluation, creation of the model excluded.

Run: ``python benchmarks/rl_throughput.py [--steps N] [--ppo-steps N] [--n-envs K] [--vec-env subproc]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from carbonsim.envs.routing import RoutingEnv
from carbonsim.learn.config import PPOConfig, RoutingEnvConfig, TrainConfig


def env_speed(steps: int, episode_hours: float, seed: int) -> tuple[float, float, int]:
    """(steps per wall-second, mean reset seconds, resets) over ``steps`` random-action steps."""
    env = RoutingEnv(RoutingEnvConfig(episode_hours=episode_hours))
    rng = np.random.default_rng(seed)
    n_actions = int(env.action_space.n)
    resets, reset_s, step_s, done_steps = 0, 0.0, 0.0, 0
    episode = 0
    while done_steps < steps:
        t0 = time.perf_counter()
        env.reset(seed=seed + episode)
        reset_s += time.perf_counter() - t0
        resets += 1
        episode += 1
        done = False
        t0 = time.perf_counter()
        while not done and done_steps < steps:
            _obs, _r, done, _t, _i = env.step(int(rng.integers(n_actions)))
            done_steps += 1
        step_s += time.perf_counter() - t0
    return done_steps / step_s, reset_s / resets, resets


def ppo_speed(steps: int, n_envs: int, vec_env: str, seed: int) -> float:
    """PPO training steps per wall-second (model and environments created beforehand)."""
    from carbonsim.learn.ppo import base_run, make_model, make_vec_env

    cfg = TrainConfig(seed=seed, env=RoutingEnvConfig(episode_hours=0.25))
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(PPOConfig(), n_envs=n_envs, vec_env=vec_env))
    import torch

    torch.set_num_threads(cfg.ppo.torch_threads)
    vec = make_vec_env(cfg, base_run(cfg.env))
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(cfg, vec, Path(tmp))
        t0 = time.perf_counter()
        model.learn(steps)
        elapsed = time.perf_counter() - t0
    vec.close()
    return model.num_timesteps / elapsed


def main() -> None:
    """Parses the options, measures, prints."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100_000, help="environment steps with random actions")
    ap.add_argument("--episode-hours", type=float, default=0.25, help="episode length for the env figure")
    ap.add_argument("--ppo-steps", type=int, default=32_768, help="PPO training steps (0 skips)")
    ap.add_argument("--n-envs", type=int, default=2)
    ap.add_argument("--vec-env", choices=("dummy", "subproc"), default="dummy")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    sps, reset_s, resets = env_speed(args.steps, args.episode_hours, args.seed)
    print(f"env: {args.steps} random-action steps, {resets} episodes of {args.episode_hours} h")
    print(f"reset_s {reset_s:.3f}")
    print(f"env_steps_per_s {sps:.0f}")
    if args.ppo_steps:
        pps = ppo_speed(args.ppo_steps, args.n_envs, args.vec_env, args.seed)
        print(f"ppo: {args.ppo_steps} steps, {args.n_envs} {args.vec_env} environments, MLP 64x64, n_steps 1024")
        print(f"ppo_steps_per_s {pps:.0f}")


if __name__ == "__main__":
    main()
