"""The drift experiment: a transformer scheduler trained on earlier years, deployed through later ones.

Grid mixes change from year to year (more renewables in some grids, less in others) and regions are added;
a scheduler trained once sees a world that drifts away from its training data. :func:`run_drift` deploys
one trained network twice over the same sequence of windows (:class:`~carbonsim.learn.config.DriftConfig`):
a frozen copy, and a copy that keeps learning from its own outcomes (:mod:`carbonsim.learn.online`). Both
meet the same arrivals, and at ``region_added_utc`` the same new region, which neither has seen in
training. Reference policies run on the same windows. The outputs are one row per window and policy, and
means per half-year (:func:`summarise_drift`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from carbonsim._hydra import load_config
from carbonsim.config import RunConfig
from carbonsim.core.policy import Policy
from carbonsim.learn.config import DriftConfig
from carbonsim.learn.evaluation import EVAL_METRICS, weighted_penalty
from carbonsim.policies import make_policy, policy_config
from carbonsim.runner import policy_label, prepare, simulate_policy

LEARNING, FROZEN = "transformer (learning)", "transformer (frozen)"


def _window_run(base: RunConfig, start_utc: str, cfg: DriftConfig, seed: int) -> RunConfig:
    scenario = dataclasses.replace(base.scenario, start_utc=start_utc)
    return dataclasses.replace(
        base,
        scenario=scenario,
        seed=seed,
        sim_hours=cfg.window_hours,
        drain=True,
        max_drain_hours=cfg.max_drain_hours,
        baseline="",
        experiment=None,
    )


def deployed_policies(cfg: DriftConfig) -> dict[str, tuple[Any, Policy]]:
    """The policies of the experiment by label: (config, object); the transformer ones persist across windows."""
    from carbonsim.learn.transformer_policy import TransformerPolicyConfig

    frozen = TransformerPolicyConfig(checkpoint=cfg.checkpoint)
    learning = TransformerPolicyConfig(checkpoint=cfg.checkpoint, online=dataclasses.replace(cfg.online, enabled=True))
    out: dict[str, tuple[Any, Policy]] = {
        LEARNING: (learning, make_policy(learning)),
        FROZEN: (frozen, make_policy(frozen)),
    }
    for spec in cfg.references:
        pcfg = policy_config(dict(spec))
        out[policy_label(pcfg)] = (pcfg, make_policy(pcfg))
    return out


def run_drift(cfg: DriftConfig, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Runs every policy on every window; one row per (window, policy).

    Reference policies are rebuilt for every window (they keep no state); the two transformer copies are
    the same objects throughout.
    """
    bases = {False: load_config([f"scenario={cfg.scenario}"])}
    if cfg.added_scenario:
        bases[True] = load_config([f"scenario={cfg.added_scenario}"])
    policies = deployed_policies(cfg)
    added_regions = sorted(
        set(bases.get(True, bases[False]).scenario.region_names) - set(bases[False].scenario.region_names)
    )
    rows = []
    windows = cfg.windows()
    for k, (start_utc, added) in enumerate(windows):
        wcfg = _window_run(bases[added], start_utc, cfg, cfg.seed + k)
        world, requests, jobs = prepare(wcfg)
        for label, (pcfg, policy) in policies.items():
            instance = policy if label in (LEARNING, FROZEN) else make_policy(pcfg)
            t0 = time.perf_counter()
            out = simulate_policy(wcfg, pcfg, world, requests, jobs=jobs, instance=instance)
            s = out.summary
            per_region = out.per_region.set_index("region")["requests"]
            new_share = float(per_region.reindex(added_regions).fillna(0).sum() / max(per_region.sum(), 1))
            row: dict[str, Any] = {
                "window": k,
                "start_utc": start_utc,
                "regions": len(wcfg.scenario.regions),
                "policy": label,
                **{m: s[m] for m in EVAL_METRICS},
                "penalty": weighted_penalty(s, cfg.online.reward),
                "new_region_share": new_share,
                "decision_us": out.timing["decision_overhead_us"],
                "wall_s": time.perf_counter() - t0,
            }
            row.update({k2: v for k2, v in s.items() if k2.startswith("policy_online_")})
            rows.append(row)
        log(f"window {k + 1}/{len(windows)} from {start_utc} ({len(wcfg.scenario.regions)} regions) done")
    return pd.DataFrame(rows)


def summarise_drift(table: pd.DataFrame) -> pd.DataFrame:
    """Means per half-year and policy (carbon, SLO violations, latency, penalty, share of the new region)."""
    t = table.copy()
    when = pd.to_datetime(t["start_utc"], utc=True)
    t["period"] = when.dt.year.astype(str) + "-H" + ((when.dt.month - 1) // 6 + 1).astype(str)
    cols = ["carbon_kg", "slo_violation_pct", "mean_latency_ms", "p95_latency_ms", "penalty", "new_region_share"]
    out = t.groupby(["period", "policy"], sort=True)[cols].mean().reset_index()
    return out


__all__ = ["FROZEN", "LEARNING", "deployed_policies", "run_drift", "summarise_drift"]
