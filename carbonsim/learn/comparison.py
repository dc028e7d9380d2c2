"""Comparing schedulers on held-out windows: outcomes, decision overhead and memory, one process per policy.

:func:`compare` runs each (scenario, policy) pair in a fresh worker process (``spawn``, one task per
process), so that the process's peak resident memory belongs to that policy alone: the interpreter,
carbonsim, the policy's own libraries (torch, transformers) and models, and the simulation. The same
windows, seeds and therefore arrivals are used in every process. The clairvoyant inference bound of each
window is computed in the parent.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import resource
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from carbonsim._hydra import load_config
from carbonsim._schema import ConfigError
from carbonsim.bounds import inference_bound
from carbonsim.config import RunConfig
from carbonsim.learn.config import CompareConfig, EvalWindow, RewardConfig
from carbonsim.learn.evaluation import EVAL_METRICS, weighted_penalty
from carbonsim.policies import policy_config
from carbonsim.runner import policy_label, prepare, simulate_policy

BOUND = "hindsight bound"
OUTCOME_COLUMNS = (*EVAL_METRICS, "penalty", "decision_us", "plan_ms")


def window_config(
    scenario: str, window: EvalWindow, seed: int, max_drain_hours: float, overrides: Sequence[str] = ()
) -> RunConfig:
    """The run configuration of one held-out window of a scenario."""
    base = load_config([f"scenario={scenario}", *overrides])
    return dataclasses.replace(
        base,
        scenario=dataclasses.replace(base.scenario, start_utc=window.start_utc),
        seed=seed,
        sim_hours=window.hours,
        drain=True,
        max_drain_hours=max_drain_hours,
        baseline="",
        experiment=None,
    )


def _run_policy(
    task: tuple[str, tuple[EvalWindow, ...], dict[str, Any], int, float, RewardConfig, tuple[str, ...]],
) -> tuple[list[dict[str, Any]], float]:
    """Worker: one policy on every window of one scenario; returns its rows and the process's peak RSS in MB."""
    scenario, windows, spec, seed, drain_h, reward, overrides = task
    spec = dict(spec)
    label = spec.pop("label", None)
    rows: list[dict[str, Any]] = []
    try:
        pcfg = policy_config(spec)
        label = label or policy_label(pcfg)
        for k, window in enumerate(windows):
            cfg = window_config(scenario, window, seed + k, drain_h, overrides)
            world, requests, jobs = prepare(cfg)
            out = simulate_policy(cfg, pcfg, world, requests, jobs=jobs)
            s = out.summary
            row: dict[str, Any] = {"scenario": scenario, "window_start_utc": window.start_utc, "policy": label}
            row.update({m: s[m] for m in EVAL_METRICS})
            row["penalty"] = weighted_penalty(s, reward)
            row["decision_us"] = out.timing["decision_overhead_us"]
            row["plan_ms"] = out.timing["plan_overhead_ms"]
            row.update({key: value for key, value in s.items() if key.startswith("policy_")})
            rows.append(row)
    except (ConfigError, ImportError) as exc:
        rows = [{"scenario": scenario, "policy": label or spec.get("name"), "not_run": str(exc).splitlines()[0]}]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return rows, peak_mb


def bound_rows(cfg: CompareConfig, scenario: str) -> list[dict[str, Any]]:
    """The clairvoyant inference bound of every window (carbon only)."""
    rows = []
    for k, window in enumerate(cfg.windows):
        wcfg = window_config(scenario, window, cfg.seed + k, cfg.max_drain_hours, cfg.overrides)
        world, requests, _ = prepare(wcfg)
        bound = inference_bound(world, requests, wcfg.sim_hours * 3600.0)
        rows.append(
            {
                "scenario": scenario,
                "window_start_utc": window.start_utc,
                "policy": BOUND,
                "carbon_kg": bound.carbon_g / 1e3,
            }
        )
    return rows


def compare(cfg: CompareConfig, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Every policy on every window of every scenario; one row per (scenario, window, policy).

    Columns: the outcome metrics, ``decision_us`` (mean wall time per routing decision), ``plan_ms`` (mean
    wall time per planning call), ``peak_rss_mb`` (the worker process's peak resident memory), the policy's
    own counters (``policy_*``) and, for a policy that cannot run on a scenario, ``not_run`` with the
    reason.
    """
    tasks = [
        (scenario, tuple(cfg.windows), dict(spec), cfg.seed, cfg.max_drain_hours, cfg.reward, cfg.overrides)
        for scenario in cfg.scenarios
        for spec in cfg.policies
    ]
    rows: list[dict[str, Any]] = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes=min(cfg.processes, len(tasks)), maxtasksperchild=1) as pool:
        for task, (policy_rows, peak_mb) in zip(tasks, pool.imap(_run_policy, tasks), strict=True):
            scenario = task[0]
            for row in policy_rows:
                row["peak_rss_mb"] = peak_mb
            rows += policy_rows
            log(f"{scenario}: {policy_rows[0]['policy']} done (peak {peak_mb:.0f} MB)")
    if cfg.bound:
        for scenario in cfg.scenarios:
            rows += bound_rows(cfg, scenario)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, policies: Sequence[str] | None = None) -> pd.DataFrame:
    """Means over windows per scenario and policy, in the order the policies were given."""
    cols = [c for c in (*OUTCOME_COLUMNS, "peak_rss_mb") if c in table]
    extra = [c for c in table.columns if c.startswith("policy_") and c.endswith(("fallbacks", "updates"))]
    agg = table.groupby(["scenario", "policy"], sort=False)[cols + extra].mean(numeric_only=True).reset_index()
    if "not_run" in table:
        reasons = table.dropna(subset=["not_run"]).set_index(["scenario", "policy"])["not_run"]
        agg = agg.merge(reasons.reset_index(), on=["scenario", "policy"], how="left")
    return agg


__all__ = ["BOUND", "bound_rows", "compare", "summarise", "window_config"]
