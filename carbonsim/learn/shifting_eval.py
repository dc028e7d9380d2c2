"""Evaluation of learned shifting schedulers against the batch baselines (``experiments/eval_shifting.py``).

For every scenario and window the same jobs (same seed) run under each baseline and under each *model group*:
one or more checkpoints of the same recipe trained with different seeds (``learned_shifting`` at
``weights``). :func:`evaluate` returns one row per (scenario, window, policy, member); :func:`summarise`
sums each member's windows and reports, per group, the mean over members and a 95 % confidence interval
(Student's t over the members' totals; none with one member), and :func:`markdown` prints the tables.

Scenarios: the presets (``dag_tpch``, ``gpu_training``, or any scenario with batch jobs, also from a config
folder given by a ``hydra.searchpath=[file://...]`` override), and ``dag_tpch_europe`` and
``gpu_training_europe``: the same job streams on the two European regions of the ``europe`` preset (London,
Frankfurt; 100-CPU clusters, or 64 A100s and 32 A100s + 32 H100s; homes 50/50), a region set (and a number
of regions) the networks never saw in training.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from carbonsim.config import RunConfig
from carbonsim.learn.shifting_config import ShiftingOnlineConfig

#: The seed study's batch policies (conf/experiment/seed_study.yaml), the default baselines.
BASELINES = (
    "carbon_agnostic",
    "pcaps",
    "cap",
    "casper_batch",
    "carbonclipper",
    "lets_wait_awhile",
    "gaia_carbon_time",
    "carbonscaler",
)
#: Held-out windows of 2024 (fixed with the protocol, before any tuning).
DEFAULT_STARTS = ("2024-02-05T00:00:00Z", "2024-05-06T12:00:00Z", "2024-08-05T06:00:00Z")
#: Hours of a (non-leap) year, to extrapolate the windows' savings.
HOURS_PER_YEAR = 8760.0
#: Columns summed over a member's windows.
SUMMED = ("carbon_kg", "cost_usd", "lateness_h", "migrations", "energy_kwh", "tasks", "jobs", "wall_s")


def scenario_run(
    name: str, start_utc: str, hours: float, seed: int, max_drain_hours: float, overrides: Sequence[str] = ()
) -> RunConfig:
    """The run configuration of one window of a scenario (drained, as the environment's episodes)."""
    import carbonsim

    if name in ("dag_tpch_europe", "gpu_training_europe"):
        base = carbonsim.load_config([f"scenario={name.removesuffix('_europe')}", *overrides])
        eu = carbonsim.load_config(["scenario=europe"]).scenario
        if name == "dag_tpch_europe":
            regions = tuple(dataclasses.replace(r, batch_cpus=100) for r in eu.regions)
        else:  # as gpu_training's clusters: one all-A100, one half A100 half H100
            gpus = ({"A100": 64}, {"A100": 32, "H100": 32})
            regions = tuple(
                dataclasses.replace(r, batch_cpus=1024, batch_gpus=g) for r, g in zip(eu.regions, gpus, strict=True)
            )
        shares = {r.name: 1.0 / len(regions) for r in regions}
        batch = dataclasses.replace(base.scenario.batch, home_shares=shares)
        scenario = dataclasses.replace(
            base.scenario, name=name, regions=regions, origins=eu.origins, prices=eu.prices, batch=batch
        )
        base = dataclasses.replace(base, scenario=scenario)
    else:
        base = carbonsim.load_config([f"scenario={name}", *overrides])
    scenario = dataclasses.replace(base.scenario, start_utc=start_utc)
    return dataclasses.replace(
        base, scenario=scenario, seed=seed, sim_hours=hours, drain=True, max_drain_hours=max_drain_hours
    )


def _row(scenario: str, start: str, hours: float, group: str, member: int, **values: Any) -> dict[str, Any]:
    return {"scenario": scenario, "start_utc": start, "hours": hours, "policy": group, "member": member, **values}


def evaluate(
    models: Mapping[str, Sequence[str]],
    scenarios: Sequence[str],
    starts: Sequence[str] = DEFAULT_STARTS,
    *,
    dag_hours: float = 2.0,
    gpu_hours: float = 12.0,
    weights: tuple[float, float, float] | None = None,
    sweep: Sequence[tuple[float, float, float]] = (),
    baselines: Sequence[str] = BASELINES,
    seed: int = 0,
    bound: bool = False,
    overrides: Sequence[str] = (),
    log: bool = True,
    online: Mapping[str, ShiftingOnlineConfig] | None = None,
    decode: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Runs every baseline and every member of every model group on every window; one row per run.

    Args:
        models: Group label -> checkpoints (one per training seed).
        scenarios: Scenario names (see the module docstring).
        starts: Window starts (ISO 8601 UTC hours).
        dag_hours: Arrival window per start of scenarios whose name does not start with ``gpu``.
        gpu_hours: Arrival window per start of the others.
        weights: The operating point [alpha, beta, gamma] of the model groups; None: each checkpoint's own
            (the weights it was selected at, as ``learned_shifting`` without ``weights`` does).
        sweep: Further weightings of the *first* group's checkpoints (rows ``<group>(a,b,g)``).
        baselines: Batch policies run on the same jobs (``carbon_agnostic`` is the reference and always runs).
        seed: Seed of the first window (window ``i`` uses ``seed + i``).
        bound: Also the clairvoyant bounds of each window's jobs (home and any region; carbon only).
        overrides: Hydra overrides applied to every scenario's configuration.
        log: Print a line per run.
        online: Group label -> learning during the run for the groups that learn: each member starts from its
            checkpoint (per scenario) and keeps learning through the scenario's windows in order, one policy
            instance carrying its network from window to window (rows gain ``online_updates``).
        decode: Group label -> ``LearnedShiftingConfig.decode`` of that group's frozen members (default
            ``independent``; ``capacity``: :mod:`carbonsim.learn.shifting_decode`).
    """
    from carbonsim import batch_policy_config, make_batch_policy
    from carbonsim._schema import ConfigError
    from carbonsim.job_bound import job_bounds
    from carbonsim.learn.shifting_policy import LearnedShifting, LearnedShiftingConfig, load_network
    from carbonsim.learn.shifting_train import run_batch_policy, totals
    from carbonsim.runner import peak_memory_mb, prepare, reset_peak_memory

    online = dict(online or {})
    for g in online:
        if g not in models:
            raise ConfigError(f"online: expected the label of a model group ({', '.join(models)}), got {g!r}")
    decode = dict(decode or {})
    for g, mode in decode.items():
        if g not in models or g in online:
            raise ConfigError(f"decode: expected the label of a frozen model group ({', '.join(models)}), got {g!r}")
        LearnedShiftingConfig(decode=mode)  # a bad mode: before any run
    nets = {g: [load_network(p, f"models[{g}]")[0] for p in paths] for g, paths in models.items()}
    first = next(iter(nets), None)
    names = ("carbon_agnostic", *(b for b in baselines if b != "carbon_agnostic"))
    configs = {n: batch_policy_config({"name": n}, "baselines") for n in names}  # bad names: before any run
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        gpu = scenario.startswith("gpu")
        hours = gpu_hours if gpu else dag_hours
        learning = {  # one instance per member for all the scenario's windows: it keeps what it learned
            g: [
                LearnedShifting(LearnedShiftingConfig(checkpoint=str(p), weights=weights or (), online=online[g]))
                for p in models[g]
            ]
            for g in online
        }
        for i, start in enumerate(starts):
            run = scenario_run(scenario, start, hours, seed + i, 72.0 if gpu else 24.0, overrides)
            policies: list[tuple[str, int, Any]] = [(n, 0, make_batch_policy(c)) for n, c in configs.items()]
            for group, members in nets.items():
                extra: list[tuple[str, tuple[float, ...]]] = [(group, weights or ())]
                mode = decode.get(group, "independent")
                if group == first:
                    extra += [(f"{group}({','.join(f'{x:g}' for x in w)})", w) for w in sweep]
                if group in learning:
                    policies += [(group, m, policy) for m, policy in enumerate(learning[group])]
                    continue
                for label, w in extra:
                    policies += [
                        (label, m, LearnedShifting(LearnedShiftingConfig(weights=w, decode=mode), model=net))
                        for m, net in enumerate(members)
                    ]
            for label, member, policy in policies:
                reset_peak_memory()
                result, wall = run_batch_policy(run, policy)
                t = totals(result)
                epochs = max(result.batch_epochs, 1)
                if isinstance(policy, LearnedShifting) and policy.learner is not None:
                    t["online_updates"] = policy.stats()["online_updates"]
                rows.append(
                    _row(
                        scenario,
                        start,
                        hours,
                        label,
                        member,
                        **t,
                        wall_s=wall,
                        epochs=result.batch_epochs,
                        decision_ms=result.batch_decision_cpu_ns / epochs / 1e6,
                        peak_mb=peak_memory_mb(),
                    )
                )
                if log:
                    print(f"{scenario} {start} {label}[{member}]: carbon {t['carbon_kg']:.4g} kg ({wall:.1f} s)")
            if bound:
                world, _, jobs = prepare(run)
                t0 = time.perf_counter()
                for rule, kg in job_bounds(world, jobs).items():
                    rows.append(
                        _row(scenario, start, hours, f"bound_{rule}", 0, carbon_kg=kg, wall_s=time.perf_counter() - t0)
                    )
    return pd.DataFrame(rows)


def _ci95(values: np.ndarray) -> float:
    """Half-width of the 95 % confidence interval of the mean (Student's t); NaN with fewer than two values."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def summarise(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per scenario: one row per policy or model group (mean over members, 95 % CI of the saving).

    Columns: carbon_kg, saved_pct (against carbon_agnostic on the same windows) and saved_pct_ci95,
    saved_t (tonnes CO2eq saved), saved_t_per_year (the same at the windows' arrival rate for a year of
    arrivals: an extrapolation), deadline_met_pct (mean over windows), lateness_h, mean_completion_h,
    energy_per_task_kwh, cost_usd, migrations, decision_ms (CPU per epoch), peak_mb, members, wall_s.
    """
    out: dict[str, pd.DataFrame] = {}
    for scenario, part in df.groupby("scenario", sort=False):
        cols = [c for c in SUMMED if c in part]
        per = part.groupby(["policy", "member"], sort=False)[cols].sum(min_count=1)
        means = part.groupby(["policy", "member"], sort=False)[
            [c for c in ("deadline_met_pct", "mean_completion_h", "decision_ms", "peak_mb") if c in part]
        ].mean()
        per = per.join(means)
        ref = float(per["carbon_kg"].loc[("carbon_agnostic", 0)])
        per["saved_pct"] = 100.0 * (1.0 - per["carbon_kg"] / ref) if ref > 0 else math.nan
        per["saved_t"] = (ref - per["carbon_kg"]) / 1e3
        arrival_h = float(part.loc[(part["policy"] == "carbon_agnostic") & (part["member"] == 0), "hours"].sum())
        per["saved_t_per_year"] = per["saved_t"] * HOURS_PER_YEAR / arrival_h if arrival_h > 0 else math.nan
        if "energy_kwh" in per:
            per["energy_per_task_kwh"] = per["energy_kwh"] / per["tasks"].where(per["tasks"] > 0)
        rows = []
        for policy, grp in per.groupby(level="policy", sort=False):
            row = {"policy": policy, "members": len(grp)}
            row.update({c: float(grp[c].mean()) for c in grp.columns})
            row["saved_pct_ci95"] = _ci95(grp["saved_pct"].to_numpy(dtype=float))
            row["carbon_kg_ci95"] = _ci95(grp["carbon_kg"].to_numpy(dtype=float))
            rows.append(row)
        out[str(scenario)] = pd.DataFrame(rows)
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def markdown(summary: Mapping[str, pd.DataFrame], windows: int) -> str:
    """The summary as Markdown tables, one per scenario."""
    lines: list[str] = []
    for scenario, t in summary.items():
        lines += [
            f"### {scenario} ({windows} windows; learned rows: mean over training seeds, 95 % CI)",
            "",
            "| policy | seeds | carbon kg | saved vs agnostic % | saved t/yr | deadlines met % | lateness job-h "
            "| completion h | kWh per task | cost USD | moves | decision ms/epoch | peak MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in t.to_dict("records"):
            saved = _fmt(r.get("saved_pct"), ".1f")
            ci = r.get("saved_pct_ci95")
            if isinstance(ci, float) and math.isfinite(ci):
                saved += f" ± {ci:.1f}"
            lines.append(
                f"| {r['policy']} | {r['members']} | {_fmt(r.get('carbon_kg'), '.4g')} | {saved} "
                f"| {_fmt(r.get('saved_t_per_year'), '.3g')} | {_fmt(r.get('deadline_met_pct'), '.1f')} "
                f"| {_fmt(r.get('lateness_h'), '.3g')} | {_fmt(r.get('mean_completion_h'), '.3g')} "
                f"| {_fmt(r.get('energy_per_task_kwh'), '.3g')} | {_fmt(r.get('cost_usd'), '.3g')} "
                f"| {_fmt(r.get('migrations'), '.0f')} | {_fmt(r.get('decision_ms'), '.2f')} "
                f"| {_fmt(r.get('peak_mb'), '.0f')} |"
            )
        lines.append("")
    return "\n".join(lines)


__all__ = ["BASELINES", "DEFAULT_STARTS", "evaluate", "markdown", "scenario_run", "summarise"]
