"""Experiments: several policies on the same arrivals, compared in one table."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from carbonsim.analysis import metrics, tables
from carbonsim.config import PublishedRow, RunConfig
from carbonsim.policies import policy_config
from carbonsim.runner import RunOutput, policy_label, prepare, simulate_policy, write_outputs, write_text


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")


def run_experiment(cfg: RunConfig, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Runs every policy of ``cfg.experiment`` on every seed and writes the comparison tables.

    Every policy sees the same requests for a given seed (common random numbers). Each run's files go to
    ``runs/<label>_seed<seed>/``; the comparison goes to ``comparison.csv/.md`` (aggregate) and
    ``comparison_per_workload.csv/.md``; an experiment with published results also writes
    ``reference_table.csv/.md``.

    Returns:
        The tables by name (``comparison``, ``per_workload`` and, if published, ``reference``).
    """
    exp = cfg.experiment
    if exp is None:
        raise ValueError("run_experiment needs cfg.experiment")
    seeds = exp.seeds or (cfg.seed,)
    specs = []
    for i, run in enumerate(exp.runs):
        data = {k: v for k, v in run.items() if k != "label"}
        pc = policy_config(data, f"experiment.runs[{i}]")
        specs.append((str(run.get("label") or policy_label(pc)), pc))
    baseline_cfg = policy_config({"name": cfg.baseline}, "baseline") if cfg.baseline else None
    summaries = []
    workload_rows = []
    for seed in seeds:
        world, requests = prepare(cfg, seed)
        baseline: RunOutput | None = None
        if baseline_cfg is not None:
            baseline = simulate_policy(cfg, baseline_cfg, world, requests, seed)
        for label, pc in specs:
            if baseline is not None and pc == baseline_cfg:
                # The baseline already ran this policy on these arrivals: reuse it under this run's label.
                out = dataclasses.replace(baseline, label=label, summary={**baseline.summary, "label": label})
            else:
                out = simulate_policy(cfg, pc, world, requests, seed, label)
            if baseline is not None:
                metrics.add_reduction(out.summary, baseline.summary, cfg.baseline)
            write_outputs(out, out_dir / "runs" / f"{_slug(label)}_seed{seed}", write_requests=False)
            summaries.append(out.summary)
            wl = out.per_workload.copy()
            wl.insert(0, "seed", seed)
            wl.insert(0, "label", label)
            workload_rows.append(wl)
    comparison = tables.aggregate(summaries)
    per_workload = pd.concat(workload_rows, ignore_index=True)
    result = {"comparison": comparison, "per_workload": per_workload}
    for name, df in (("comparison", comparison), ("comparison_per_workload", per_workload)):
        write_text(out_dir / f"{name}.csv", df.to_csv(index=False, float_format="%.6g"))
        write_text(out_dir / f"{name}.md", tables.to_markdown(df))
    if exp.published:
        ref = reference_table(comparison, exp.published)
        write_text(out_dir / "reference_table.csv", ref.to_csv(index=False, float_format="%.6g"))
        write_text(out_dir / "reference_table.md", tables.to_markdown(ref))
        result["reference"] = ref
    return result


def reference_table(comparison: pd.DataFrame, published: Sequence[PublishedRow]) -> pd.DataFrame:
    """Rows of carbonsim beside the published ones, one row per policy and source.

    carbonsim's ``carbon_reduction_pct`` here is the reduction of the mean serving-region intensity against
    the baseline, which is how the published table defines it. With several seeds, carbonsim's row is
    the mean over seeds.
    """
    cols = [
        "mean_latency_ms",
        "p95_latency_ms",
        "slo_violation_pct",
        "mean_intensity_gco2_per_kwh",
        "intensity_reduction_pct",
    ]
    ours = comparison.groupby("label", sort=False)[cols].mean().reset_index()
    published_by_label = {pub.policy: pub for pub in published}
    rows = []
    for _, m in ours.iterrows():
        rows.append(
            {
                "policy": m["label"],
                "source": "carbonsim",
                "mean_latency_ms": m["mean_latency_ms"],
                "p95_latency_ms": m["p95_latency_ms"],
                "slo_violation_pct": m["slo_violation_pct"],
                "mean_intensity_gco2_per_kwh": m["mean_intensity_gco2_per_kwh"],
                "carbon_reduction_pct": m["intensity_reduction_pct"],
            }
        )
        pub = published_by_label.get(m["label"])
        if pub is not None:
            rows.append(
                {
                    "policy": pub.policy,
                    "source": "published",
                    "mean_latency_ms": pub.mean_latency_ms,
                    "p95_latency_ms": pub.p95_latency_ms,
                    "slo_violation_pct": pub.slo_violation_pct,
                    "mean_intensity_gco2_per_kwh": pub.mean_intensity_gco2_per_kwh,
                    "carbon_reduction_pct": pub.carbon_reduction_pct,
                }
            )
    missing = sorted(set(published_by_label) - set(ours["label"]))
    if missing:
        raise ValueError(f"experiment.published: no run is labelled {', '.join(map(repr, missing))}")
    return pd.DataFrame(rows, columns=list(tables.REFERENCE_COLUMNS))
