"""Training of the learned shifting scheduler: imitation of teachers, PPO in Shifting-v0, selection on 2023.

:func:`train` is what ``experiments/train_shifting.py`` runs (configuration:
:class:`~carbonsim.learn.shifting_config.TrainShiftingConfig`, ``conf/train_shifting.yaml``):

1. **Imitation.** Each teacher runs on ``imitation_windows`` windows drawn from the training calendar window
   (2021-2022 by default); its epochs are recorded with the weights it stands for in the weights token
   (:mod:`carbonsim.learn.shifting_imitation`), and the network is fitted to all of them.
2. **PPO** (stable-baselines3, :mod:`carbonsim.learn.shifting_sb3`) in ``carbonsim/Shifting-v0`` over the
   same window, weights drawn per episode, rewards scaled by a running estimate of the return's spread
   (``VecNormalize``), TensorBoard logs in ``tb/``.
3. **Selection** on 2023 windows: the imitation-only and the PPO network run as ``learned_shifting`` at
   ``select_weights``; the one with the lower weighted total (alpha carbon + beta lateness + gamma cost) is
   written to ``shifting.npz``, with both scores in its header.

``init_checkpoint`` resumes from a network written before (a ``shifting.npz``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from carbonsim.analysis import jobs as job_metrics
from carbonsim.config import RunConfig
from carbonsim.core.jobs import BatchPolicy
from carbonsim.core.simulation import SimResult
from carbonsim.learn import shifting_imitation as im
from carbonsim.learn import shifting_model as sm
from carbonsim.learn.shifting_config import ShiftingEnvConfig, TrainShiftingConfig
from carbonsim.learn.shifting_policy import LearnedShifting, LearnedShiftingConfig
from carbonsim.policies import batch_policy_config, make_policy
from carbonsim.runner import make_simulation, prepare


def totals(result: SimResult) -> dict[str, float]:
    """A run's job-table totals: carbon, cost, lateness (job-hours past deadlines), deadlines met, completion, energy.

    Keys: carbon_kg, cost_usd, lateness_h, deadline_met_pct, jobs, tasks, migrations, energy_kwh (jobs' IT,
    facility and network energy), energy_per_task_kwh, mean_completion_h (arrival to end, completed jobs).
    """
    df = job_metrics.job_table(result)
    ok = df["status"] != "failed"
    end = np.where(df["status"] == "completed", df["end_s"], result.end_s)
    late_h = float(np.maximum(end - df["deadline_s"], 0.0)[ok].sum() / 3600.0)
    summary = job_metrics.job_summary(df, result)
    return {
        "carbon_kg": float(df["carbon_g"].sum() / 1e3),
        "cost_usd": float(df["cost_usd"].sum()),
        "lateness_h": late_h,
        "deadline_met_pct": float(summary["deadline_met_pct"]),
        "jobs": float(len(df)),
        "migrations": float(summary.get("job_migrations", 0.0)),
        "tasks": float(df["tasks"].sum()),
        "energy_kwh": float(df["energy_kwh"].sum()),
        "energy_per_task_kwh": float(df["energy_kwh"].sum() / max(df["tasks"].sum(), 1)),
        "mean_completion_h": float(summary["job_mean_completion_h"]),
    }


def run_batch_policy(run: RunConfig, policy: BatchPolicy) -> tuple[SimResult, float]:
    """Runs ``policy`` (an instance) on ``run``; the result and the wall time in s."""
    world, requests, jobs = prepare(run)
    t0 = time.perf_counter()
    sim = make_simulation(run, world, requests, make_policy(run.policy), run.seed, jobs=jobs, batch_policy=policy)
    result = sim.run()
    return result, time.perf_counter() - t0


def window_run(env: ShiftingEnvConfig, start_utc: str, hours: float, seed: int) -> RunConfig:
    """The run configuration of one window of the environment's scenario (drained like an episode)."""
    from carbonsim.envs.shifting import ShiftingEnv

    base = ShiftingEnv(dataclasses.replace(env, window_start_utc="", window_end_utc="", episode_hours=hours))
    run = base.episode_config(0, seed)
    return dataclasses.replace(run, scenario=dataclasses.replace(run.scenario, start_utc=start_utc))


def weighted(t: dict[str, float], weights: tuple[float, ...]) -> float:
    """The weighted total: alpha x carbon_kg + beta x lateness_h + gamma x cost_usd."""
    return weights[0] * t["carbon_kg"] + weights[1] * t["lateness_h"] + weights[2] * t["cost_usd"]


def _imitate(cfg: TrainShiftingConfig, model: sm.ShiftingNet, rng: np.random.Generator, out: Path) -> dict[str, Any]:
    from carbonsim.envs.shifting import ShiftingEnv

    env = ShiftingEnv(cfg.env)
    starts = cfg.env.start_hours()
    epochs: list[im.Epoch] = []
    t0 = time.perf_counter()
    policies = [batch_policy_config(dict(t.policy), "teachers[].policy") for t in cfg.teachers]
    labels = [(float(t.weights[0]), float(t.weights[1]), float(t.weights[2])) for t in cfg.teachers]
    wins = [0] * len(policies)
    if cfg.relabel:
        # Every teacher on the same windows; each of `relabel` weightings per window takes the demonstrations
        # of the teacher whose run is best at that weighting (the operating point labels what it did).
        fixed = tuple(float(x) for x in cfg.env.weights)
        for _ in range(cfg.imitation_windows):
            seed = int(rng.integers(2**31 - 1))
            run = env.episode_config(int(rng.integers(starts)), seed)
            demos = [im.demonstrate(run, p, w, cfg.imitation_keep, seed) for p, w in zip(policies, labels, strict=True)]
            scores = [totals(result) for _, result in demos]
            for _ in range(cfg.relabel):
                draw = fixed or tuple(float(x) for x in cfg.env.weight_scale * rng.dirichlet(np.ones(3)))
                w3 = (draw[0], draw[1], draw[2])
                best = im.best_teacher(scores, w3)
                wins[best] += 1
                epochs += im.relabel(demos[best][0], w3)
    else:
        for policy, w in zip(policies, labels, strict=True):
            for _ in range(cfg.imitation_windows):
                seed = int(rng.integers(2**31 - 1))
                run = env.episode_config(int(rng.integers(starts)), seed)
                epochs += im.collect(run, policy, w, cfg.imitation_keep, seed)
    collect_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    before = im.agreement(model, epochs)
    losses = im.fit(model, epochs, cfg.imitation_steps, rng, cfg.imitation_batch, cfg.imitation_lr)
    after = im.agreement(model, epochs)
    try:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb" / "imitation"))
        for step, value in enumerate(losses):
            writer.add_scalar("imitation/cross_entropy", value, step)
        writer.close()
    except ImportError:  # pragma: no cover - tensorboard is part of extra rl
        pass
    return {
        "epochs": len(epochs),
        "teacher_wins": {f"{i}:{p.name}": n for i, (p, n) in enumerate(zip(policies, wins, strict=True))}
        if cfg.relabel
        else {},
        "items": int(sum(e.items.shape[0] for e in epochs)),
        "agreement_before": before,
        "agreement_after": after,
        "loss_first": losses[0] if losses else float("nan"),
        "loss_last": losses[-1] if losses else float("nan"),
        "collect_wall_s": collect_s,
        "fit_wall_s": time.perf_counter() - t0,
    }


def _ppo(cfg: TrainShiftingConfig, model: sm.ShiftingNet, out: Path) -> dict[str, Any]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    from carbonsim.envs.shifting import ShiftingEnv
    from carbonsim.learn.shifting_sb3 import ShiftingActorCritic

    def factory(i: int) -> Any:
        def make() -> ShiftingEnv:
            env = ShiftingEnv(cfg.env)
            env.reset(seed=cfg.seed * 1000 + i)
            return env

        return make

    fns = [factory(i) for i in range(cfg.n_envs)]
    vec = SubprocVecEnv(fns) if cfg.subprocess else DummyVecEnv(fns)
    vec.seed(cfg.seed)
    env = VecNormalize(vec, norm_obs=False, norm_reward=True, gamma=cfg.gamma)
    agent = PPO(
        ShiftingActorCritic,
        env,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        learning_rate=cfg.learning_rate,
        gamma=cfg.gamma,
        ent_coef=cfg.ent_coef,
        seed=cfg.seed,
        device="cpu",
        tensorboard_log=str(out / "tb"),
        policy_kwargs={"network": model},
        verbose=0,
    )
    t0 = time.perf_counter()
    agent.learn(total_timesteps=cfg.ppo_timesteps, tb_log_name="ppo")
    env.close()
    model.eval()
    return {"timesteps": int(agent.num_timesteps), "wall_s": time.perf_counter() - t0}


def select(cfg: TrainShiftingConfig, candidates: dict[str, sm.ShiftingNet]) -> tuple[str, dict[str, dict[str, float]]]:
    """Scores each candidate on the selection windows; returns the best name and every score."""
    w = tuple(float(x) for x in cfg.select_weights)
    scores: dict[str, dict[str, float]] = {}
    for name, model in candidates.items():
        acc = {"carbon_kg": 0.0, "cost_usd": 0.0, "lateness_h": 0.0, "wall_s": 0.0}
        for i, start in enumerate(cfg.select_starts):
            run = window_run(cfg.env, start, cfg.select_hours, cfg.seed + i)
            policy = LearnedShifting(LearnedShiftingConfig(weights=w), model=model)
            result, wall = run_batch_policy(run, policy)
            t = totals(result)
            for k in ("carbon_kg", "cost_usd", "lateness_h"):
                acc[k] += t[k]
            acc["wall_s"] += wall
        acc["weighted"] = weighted(acc, w)
        scores[name] = acc
    best = min(scores, key=lambda k: scores[k]["weighted"]) if scores else ""
    return best, scores


def train(cfg: TrainShiftingConfig, out: Path) -> dict[str, Any]:
    """Imitation, PPO, selection (see the module docstring); returns what ``train_summary.json`` holds."""
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.torch_threads)
    rng = np.random.default_rng(cfg.seed)
    t_start = time.perf_counter()
    trained = 0
    if cfg.init_checkpoint:
        model, header = sm.load(cfg.init_checkpoint)
        trained = int(header.get("ppo_timesteps", 0))
    else:
        model = sm.build(cfg.model, cfg.seed)
    summary: dict[str, Any] = {"parameters": sm.parameter_count(model), "init_checkpoint": cfg.init_checkpoint}
    candidates: dict[str, sm.ShiftingNet] = {}
    if cfg.init_checkpoint:
        candidates["init"] = copy.deepcopy(model)
    if cfg.imitation_steps and cfg.teachers:
        summary["imitation"] = _imitate(cfg, model, rng, out)
        sm.save(out / "imitation.npz", model, {"stage": "imitation", "selected_weights": list(cfg.select_weights)})
        candidates["imitation"] = copy.deepcopy(model)
    if cfg.ppo_timesteps:
        summary["ppo"] = _ppo(cfg, model, out)
        trained += summary["ppo"]["timesteps"]
        sm.save(out / "ppo.npz", model, {"stage": "ppo", "selected_weights": list(cfg.select_weights)})
        candidates["ppo"] = model
    if not candidates:
        candidates["untrained"] = model
    t0 = time.perf_counter()
    # Without selection windows the most trained candidate is written.
    best, scores = select(cfg, candidates) if cfg.select_starts else (list(candidates)[-1], {})
    summary.update(selected=best, selection=scores, selection_wall_s=time.perf_counter() - t0)
    meta = {
        "stage": best,
        "selected_weights": list(cfg.select_weights),
        "ppo_timesteps": trained,
        "selection": scores,
        "train_window": [cfg.env.window_start_utc, cfg.env.window_end_utc],
        "scenario": cfg.env.scenario,
    }
    path = sm.save(out / "shifting.npz", candidates[best], meta)
    summary.update(checkpoint=str(path), wall_s=time.perf_counter() - t_start)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=float) + "\n")
    return summary


__all__ = ["run_batch_policy", "select", "totals", "train", "weighted", "window_run"]
