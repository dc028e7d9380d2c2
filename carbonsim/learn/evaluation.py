"""Evaluating routing policies on held-out windows with the ordinary simulator (no torch needed).

Shared by the training scripts (PPO, the transformer scheduler) and the comparison experiments: every
policy runs on the same windows and, within a window, on the same arrivals (common random numbers); the
table's columns come from each run's ``summary.json``, plus the weighted penalty alpha C + beta S + gamma E
of the learning reward (:class:`~carbonsim.learn.config.RewardConfig`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from carbonsim.config import RunConfig
from carbonsim.learn.config import EvalWindow, RewardConfig, RoutingEnvConfig
from carbonsim.policies import policy_config
from carbonsim.runner import policy_label, prepare, simulate_policy

#: Columns of the evaluation table (from each run's summary), plus the weighted penalty.
EVAL_METRICS = (
    "carbon_kg",
    "slo_violation_pct",
    "mean_latency_ms",
    "p95_latency_ms",
    "slo_excess_s",
    "electricity_cost_usd",
    "rejected",
)


def window_run(run: RunConfig, env: RoutingEnvConfig, window: EvalWindow, seed: int) -> RunConfig:
    """The run configuration of one held-out window (no baseline run: every policy is evaluated)."""
    scenario = dataclasses.replace(run.scenario, start_utc=window.start_utc)
    return dataclasses.replace(
        run,
        scenario=scenario,
        seed=seed,
        sim_hours=window.hours,
        drain=env.drain,
        max_drain_hours=env.max_drain_hours,
        baseline="",
        experiment=None,
    )


def weighted_penalty(summary: dict[str, Any], reward: RewardConfig) -> float:
    """The weighted penalty alpha C + beta S + gamma E of a run from its summary (minus an episode's return)."""
    unserved = summary["rejected"] + summary["failed"]
    return float(
        reward.carbon_per_kg * summary["carbon_kg"]
        + reward.sla_per_s * (summary["slo_excess_s"] + reward.unserved_s * unserved)
        + reward.cost_per_usd * summary["electricity_cost_usd"]
    )


def evaluate(
    run: RunConfig,
    env: RoutingEnvConfig,
    windows: Sequence[EvalWindow],
    policies: Sequence[dict[str, Any]],
    seed: int,
) -> pd.DataFrame:
    """Runs every policy on every window with the ordinary simulator; one row per (window, policy).

    A policy is a mapping such as ``{"name": "hybrid", "alpha": 0.5}``; an optional ``label`` names its rows
    (default: the name and the parameters that differ from the defaults).

    Every policy sees the same arrivals in a window (common random numbers); window k draws them with seed
    ``seed + k``, so the windows differ in their arrivals as well as in their grid signals and prices.
    """
    rows = []
    for k, window in enumerate(windows):
        wcfg = window_run(run, env, window, seed + k)
        world, requests, jobs = prepare(wcfg)
        for spec in policies:
            spec = dict(spec)
            label = spec.pop("label", None)
            pcfg = policy_config(spec)
            out = simulate_policy(wcfg, pcfg, world, requests, jobs=jobs)
            s = out.summary
            row = {"window_start_utc": window.start_utc, "hours": window.hours, "policy": label or policy_label(pcfg)}
            row.update({m: s[m] for m in EVAL_METRICS})
            row["penalty"] = weighted_penalty(s, env.reward)
            row["decision_us"] = out.timing["decision_overhead_us"]
            rows.append(row)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Means over windows per policy, sorted by the weighted penalty."""
    cols = [*EVAL_METRICS, "penalty", "decision_us"]
    out = table.groupby("policy", sort=False)[cols].mean().reset_index()
    return out.sort_values("penalty", kind="stable").reset_index(drop=True)


__all__ = ["EVAL_METRICS", "evaluate", "summarise", "weighted_penalty", "window_run"]
