"""PPO training of a routing agent (extra ``rl``): stable-baselines3 over ``carbonsim/Routing-v0``.

:func:`train` is what ``experiments/train_ppo.py`` runs. It trains PPO (Schulman et al. 2017, "Proximal
Policy Optimization Algorithms", arXiv:1707.06347) on vectorised environments over the training window,
logs to TensorBoard, evaluates the greedy agent against heuristic policies on held-out windows with the
ordinary simulator (``policy=ppo`` on the exported checkpoint, so the numbers are those a sweep would
give), writes checkpoints and can resume from one.

Files written into the output folder:

* ``policy.npz``: the deployable policy (:mod:`carbonsim.learn.checkpoint`, no pickle);
* ``train_state.pt``: network and optimiser tensors plus the step count, for ``resume`` (read with
  ``torch.load(weights_only=True)``, which refuses arbitrary objects);
* ``checkpoints/step_<n>/``: both files every ``checkpoint_every_steps``;
* ``tensorboard/``: training curves and ``eval/*`` scalars;
* ``eval_history.csv``: every evaluation during training; ``evaluation.csv`` / ``.md``: the final table.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from torch import nn

from carbonsim._hydra import load_config
from carbonsim.analysis import tables
from carbonsim.config import RunConfig
from carbonsim.envs.routing import RoutingEnv
from carbonsim.learn import checkpoint as ckpt
from carbonsim.learn.config import PPOConfig, RoutingEnvConfig, TrainConfig
from carbonsim.learn.evaluation import evaluate, summarise, weighted_penalty
from carbonsim.runner import write_json, write_text

ACTIVATION_FN: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def base_run(env: RoutingEnvConfig) -> RunConfig:
    """The run configuration the environment's scenario composes to."""
    return load_config([f"scenario={env.scenario}", *env.overrides])


def _env_factory(config: RoutingEnvConfig, run: RunConfig, seed: int) -> Callable[[], gym.Env[Any, Any]]:
    def make() -> gym.Env[Any, Any]:
        env = Monitor(RoutingEnv(config, run=run))
        env.reset(seed=seed)
        return env

    return make


def vec_envs(env: RoutingEnvConfig, run: RunConfig, ppo: PPOConfig, seed: int) -> VecEnv:
    """``ppo.n_envs`` environments of configuration ``env``, environment k seeded with ``seed + k``."""
    factories = [_env_factory(env, run, seed + k) for k in range(ppo.n_envs)]
    if ppo.vec_env == "subproc":
        return SubprocVecEnv(factories, start_method="spawn")
    return DummyVecEnv(factories)


def make_vec_env(cfg: TrainConfig, run: RunConfig) -> VecEnv:
    """``n_envs`` training environments, environment k seeded with ``seed + k``."""
    return vec_envs(cfg.env, run, cfg.ppo, cfg.seed)


def ppo_arguments(p: PPOConfig, seed: int, tensorboard: Path | None) -> dict[str, Any]:
    """stable-baselines3 ``PPO`` keyword arguments from the configuration (CPU, quiet)."""
    return {
        "learning_rate": p.learning_rate,
        "n_steps": p.n_steps,
        "batch_size": p.batch_size,
        "n_epochs": p.n_epochs,
        "gamma": p.gamma,
        "gae_lambda": p.gae_lambda,
        "clip_range": p.clip_range,
        "ent_coef": p.ent_coef,
        "tensorboard_log": str(tensorboard) if tensorboard is not None else None,
        "seed": seed,
        "device": "cpu",
        "verbose": 0,
    }


def make_model(cfg: TrainConfig, env: VecEnv, tensorboard: Path | None) -> PPO:
    """A fresh PPO model with the configured hyperparameters (tanh MLP, separate policy and value nets)."""
    arch = list(cfg.ppo.net_arch)
    return PPO(
        "MlpPolicy",
        env,
        policy_kwargs={"net_arch": {"pi": arch, "vf": arch}, "activation_fn": nn.Tanh},
        **ppo_arguments(cfg.ppo, cfg.seed, tensorboard),
    )


def export_policy(model: PPO, cfg: TrainConfig, run: RunConfig, path: Path) -> Path:
    """Writes the model's policy network as a deployable checkpoint (``policy=ppo policy.checkpoint=path``)."""
    layers: list[nn.Linear] = []
    activations: set[str] = set()
    for module in model.policy.mlp_extractor.policy_net:
        if isinstance(module, nn.Linear):
            layers.append(module)
        else:
            name = next((k for k, cls in ACTIVATION_FN.items() if isinstance(module, cls)), None)
            if name is None:
                raise TypeError(f"cannot export layer {module!r}: expected Linear, Tanh or ReLU")
            activations.add(name)
    action_net = model.policy.action_net
    assert isinstance(action_net, nn.Linear)
    layers.append(action_net)
    if len(activations) > 1:
        raise TypeError(f"cannot export mixed activations {sorted(activations)}")
    sc = run.scenario
    meta = {
        "features": dataclasses.asdict(cfg.env.features),
        "reward": dataclasses.asdict(cfg.env.reward),
        "regions": list(sc.region_names),
        "workloads": list(sc.workload_names),
        "scenario": sc.name,
        "trained_steps": int(model.num_timesteps),
        "training_window": [cfg.env.window_start_utc, cfg.env.window_end_utc],
        "algorithm": "stable-baselines3 PPO",
    }
    network = ckpt.MLPPolicy(
        weights=tuple(layer.weight.detach().cpu().numpy().astype(np.float32) for layer in layers),
        biases=tuple(layer.bias.detach().cpu().numpy().astype(np.float32) for layer in layers),
        activation=activations.pop() if activations else "tanh",
        meta=meta,
    )
    return ckpt.save(path, network)


def save_train_state(model: PPO, path: Path) -> Path:
    """Network and optimiser tensors and the step count, for :func:`load_train_state`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "num_timesteps": int(model.num_timesteps),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_train_state(model: PPO, path: Path) -> int:
    """Loads :func:`save_train_state` 's file into ``model`` safely; returns the step count it had reached.

    ``torch.load(weights_only=True)`` accepts only tensors and plain containers, so a tampered file cannot
    run code. A network of another architecture is refused by ``load_state_dict``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"resume: {path}: no such training state (train_state.pt)")
    state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or set(state) != {"policy", "optimizer", "num_timesteps"}:
        raise ValueError(f"resume: {path}: expected keys policy, optimizer, num_timesteps")
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = int(state["num_timesteps"])
    return model.num_timesteps


class _Periodic(BaseCallback):
    """Checkpoints and evaluations every so many steps during training."""

    def __init__(
        self,
        every_ckpt: int,
        every_eval: int,
        on_ckpt: Callable[[PPO], None],
        on_eval: Callable[[PPO], dict[str, float]],
    ) -> None:
        super().__init__()
        self.every_ckpt = every_ckpt
        self.every_eval = every_eval
        self.on_ckpt = on_ckpt
        self.on_eval = on_eval
        self._next_ckpt = math.inf
        self._next_eval = math.inf

    def _on_training_start(self) -> None:
        n = self.model.num_timesteps
        if self.every_ckpt:
            self._next_ckpt = (n // self.every_ckpt + 1) * self.every_ckpt
        if self.every_eval:
            self._next_eval = (n // self.every_eval + 1) * self.every_eval

    def _on_step(self) -> bool:
        model = self.model
        assert isinstance(model, PPO)
        n = model.num_timesteps
        if n >= self._next_ckpt:
            self._next_ckpt += self.every_ckpt
            self.on_ckpt(model)
        if n >= self._next_eval:
            self._next_eval += self.every_eval
            for key, value in self.on_eval(model).items():
                self.logger.record(f"eval/{key}", value)
        return True


def train(
    cfg: TrainConfig, out_dir: Path, run: RunConfig | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Trains, evaluates and writes everything into ``out_dir``; returns paths and the final table.

    Args:
        cfg: Training configuration.
        out_dir: Output folder.
        run: Run configuration to use instead of composing ``cfg.env.scenario`` (tests build toy ones).
        log: Where progress lines go.
    """
    torch.set_num_threads(cfg.ppo.torch_threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = run if run is not None else base_run(cfg.env)
    vec = make_vec_env(cfg, run)
    model = make_model(cfg, vec, out_dir / "tensorboard")
    start = 0
    if cfg.resume:
        start = load_train_state(model, Path(cfg.resume))
        log(f"resumed from {cfg.resume} at step {start}")
    history: list[dict[str, Any]] = []
    baseline: list[pd.DataFrame] = []  # the heuristics' evaluation, computed once (it does not change)
    side_s = [0.0]  # wall time spent evaluating and checkpointing inside learn()

    def heuristics() -> pd.DataFrame:
        if not baseline:
            baseline.append(evaluate(run, cfg.env, cfg.eval_windows, list(cfg.eval_policies), cfg.seed))
        return baseline[0]

    def on_ckpt(m: PPO) -> None:
        t = time.perf_counter()
        folder = out_dir / "checkpoints" / f"step_{m.num_timesteps}"
        export_policy(m, cfg, run, folder / "policy.npz")
        save_train_state(m, folder / "train_state.pt")
        side_s[0] += time.perf_counter() - t

    def on_eval(m: PPO) -> dict[str, float]:
        t = time.perf_counter()
        path = export_policy(m, cfg, run, out_dir / "checkpoints" / f"eval_{m.num_timesteps}.npz")
        table = evaluate(
            run, cfg.env, cfg.eval_windows, [{"name": "ppo", "checkpoint": str(path), "label": "ppo"}], cfg.seed
        )
        means = summarise(table).iloc[0]
        row: dict[str, Any] = {"step": m.num_timesteps}
        row.update({k: float(means[k]) for k in ("carbon_kg", "slo_violation_pct", "penalty")})
        if cfg.eval_policies:
            best = summarise(heuristics()).iloc[0]
            row["best_heuristic"] = best["policy"]
            row["best_heuristic_penalty"] = float(best["penalty"])
            row["penalty_vs_best_heuristic"] = row["penalty"] - row["best_heuristic_penalty"]
        history.append(row)
        pd.DataFrame(history).to_csv(out_dir / "eval_history.csv", index=False)
        log(f"step {m.num_timesteps}: held-out penalty {row['penalty']:.4g}, carbon {row['carbon_kg']:.4g} kg")
        side_s[0] += time.perf_counter() - t
        return {k: v for k, v in row.items() if k not in ("step", "best_heuristic")}

    callback = _Periodic(cfg.checkpoint_every_steps, cfg.eval_every_steps if cfg.eval_windows else 0, on_ckpt, on_eval)
    remaining = max(cfg.ppo.total_timesteps - start, 0)
    t0 = time.perf_counter()
    if remaining:
        model.learn(remaining, callback=callback, reset_num_timesteps=not cfg.resume, tb_log_name="ppo")
    train_s = time.perf_counter() - t0 - side_s[0]
    vec.close()
    policy_path = export_policy(model, cfg, run, out_dir / "policy.npz")
    save_train_state(model, out_dir / "train_state.pt")
    steps = int(model.num_timesteps) - start
    facts = {
        "trained_steps": int(model.num_timesteps),
        "steps_this_session": steps,
        "train_wall_s": train_s,
        "train_steps_per_s": steps / train_s if train_s > 0 else math.nan,
    }
    log(f"trained {steps} steps in {train_s:.1f} s ({facts['train_steps_per_s']:.0f} steps/s, evaluation excluded)")
    result: dict[str, Any] = {"policy": policy_path, "train_state": out_dir / "train_state.pt", **facts}
    if cfg.eval_windows:
        mine = evaluate(
            run, cfg.env, cfg.eval_windows, [{"name": "ppo", "checkpoint": str(policy_path), "label": "ppo"}], cfg.seed
        )
        table = pd.concat([mine, heuristics()], ignore_index=True) if cfg.eval_policies else mine
        table.to_csv(out_dir / "evaluation_by_window.csv", index=False)
        means = summarise(table)
        means.to_csv(out_dir / "evaluation.csv", index=False)
        write_text(out_dir / "evaluation.md", tables.to_markdown(means, digits=4))
        result["evaluation"] = means
        log(means.to_string(index=False))
    write_json(out_dir / "training.json", facts)
    return result


__all__ = [
    "base_run",
    "evaluate",
    "export_policy",
    "load_train_state",
    "make_model",
    "make_vec_env",
    "ppo_arguments",
    "save_train_state",
    "summarise",
    "train",
    "vec_envs",
    "weighted_penalty",
]
