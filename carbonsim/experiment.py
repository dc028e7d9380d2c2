"""Experiments: several policies on the same arrivals, compared in one table."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from carbonsim._schema import ConfigError, build
from carbonsim.analysis import jobs as job_metrics
from carbonsim.analysis import metrics, tables
from carbonsim.bounds import batch_bound, inference_bound
from carbonsim.config import BatchPolicyConfig, PolicyConfig, PublishedRow, RunConfig
from carbonsim.policies import batch_policy_config, policy_config
from carbonsim.runner import (
    RunOutput,
    add_reductions,
    baseline_policies,
    is_baseline,
    prepare,
    run_label,
    simulate_policy,
    write_outputs,
    write_text,
)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")


def _run_specs(cfg: RunConfig) -> list[tuple[str, PolicyConfig, BatchPolicyConfig]]:
    """(label, routing policy, batch policy) of every run of the experiment."""
    assert cfg.experiment is not None
    with_jobs = bool(cfg.scenario.batch.trace)
    specs = []
    for i, run in enumerate(cfg.experiment.runs):
        routing = {k: v for k, v in run.items() if k not in ("label", "batch_policy")}
        pc = policy_config(routing, f"experiment.runs[{i}]") if routing else cfg.policy
        bc = (
            batch_policy_config(run["batch_policy"], f"experiment.runs[{i}].batch_policy")
            if "batch_policy" in run
            else cfg.batch_policy
        )
        label = str(run.get("label") or run_label(pc, bc if with_jobs else None))
        specs.append((label, pc, bc))
    return specs


def apply_variant(cfg: RunConfig, variant: Mapping[str, Any]) -> RunConfig:
    """The run configuration with dotted paths set (e.g. ``scenario.batch.window_h``), validated again.

    A ``label`` entry only names the variant.
    """
    data = dataclasses.asdict(cfg)
    for path, value in variant.items():
        if path == "label":
            continue
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            if not isinstance(node, dict) or key not in node:
                raise ConfigError(f"experiment.variants: unknown configuration path {path!r}")
            node = node[key]
        if not isinstance(node, dict) or keys[-1] not in node:
            raise ConfigError(f"experiment.variants: unknown configuration path {path!r}")
        node[keys[-1]] = value
    return build(RunConfig, data)


def variant_label(variant: Mapping[str, Any]) -> str:
    """Label of a variant: its ``label`` entry, else the last path component and value of each entry."""
    if "label" in variant:
        return str(variant["label"])
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in variant.items())


def run_experiment(cfg: RunConfig, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Runs every policy of ``cfg.experiment`` on every variant and seed and writes the comparison tables.

    Every policy sees the same requests and jobs for a given variant and seed (common random numbers).
    Each run's files go to ``runs/<variant>_<label>_seed<seed>/``; the comparison goes to
    ``comparison.csv/.md`` (aggregate) and ``comparison_per_workload.csv/.md``, plus ``jobs_comparison.csv/.md``
    when the scenario has batch jobs; an experiment with published results also writes
    ``reference_table.csv/.md``.

    Returns:
        The tables by name (``comparison``, ``per_workload``, and if present ``jobs`` and ``reference``).
    """
    exp = cfg.experiment
    if exp is None:
        raise ValueError("run_experiment needs cfg.experiment")
    summaries = []
    workload_rows = []
    for variant in exp.variants or ({},):
        vcfg = apply_variant(cfg, variant) if variant else cfg
        vlabel = variant_label(variant)
        specs = _run_specs(vcfg)
        baseline_pair = baseline_policies(vcfg)
        for seed in exp.seeds or (vcfg.seed,):
            world, requests, jobs = prepare(vcfg, seed)
            bounds = (
                {rule: batch_bound(world, jobs, rule).carbon_g / 1e3 for rule in ("home", "any")} if len(jobs) else {}
            )
            horizon_s = vcfg.sim_hours * 3600.0
            inference_kg = inference_bound(world, requests, horizon_s).carbon_g / 1e3 if len(requests) else None
            baseline: RunOutput | None = None
            if baseline_pair is not None:
                baseline = simulate_policy(
                    vcfg, baseline_pair[0], world, requests, seed, jobs=jobs, batch_policy=baseline_pair[1]
                )
                # Experiments write no per-request table: drop the baseline's (tens of millions of rows on
                # the default scenario) rather than hold it through every other run.
                baseline = dataclasses.replace(baseline, requests=baseline.requests.iloc[:0])
            for label, pc, bc in specs:
                if baseline is not None and is_baseline(baseline_pair, pc, bc, jobs):
                    # The baseline already ran these policies on these arrivals: reuse it under this run's label.
                    out = dataclasses.replace(baseline, label=label, summary={**baseline.summary, "label": label})
                else:
                    out = simulate_policy(vcfg, pc, world, requests, seed, label, jobs=jobs, batch_policy=bc)
                if baseline is not None:
                    add_reductions(out.summary, baseline.summary, vcfg)
                job_metrics.add_bound(out.summary, bounds)
                if inference_kg is not None and baseline is not None:
                    metrics.add_inference_bound(out.summary, inference_kg)
                if variant:
                    out.summary["variant"] = vlabel
                folder = f"{_slug(vlabel) + '_' if variant else ''}{_slug(label)}_seed{seed}"
                write_outputs(out, out_dir / "runs" / folder, write_requests=False)
                summaries.append(out.summary)
                wl = out.per_workload.copy()
                wl.insert(0, "seed", seed)
                if variant:
                    wl.insert(0, "variant", vlabel)
                wl.insert(0, "label", label)
                workload_rows.append(wl)
    comparison = tables.aggregate(summaries)
    per_workload = pd.concat(workload_rows, ignore_index=True)
    result = {"comparison": comparison, "per_workload": per_workload}
    outputs = [("comparison", comparison), ("comparison_per_workload", per_workload)]
    if any("jobs" in s for s in summaries):
        result["jobs"] = tables.job_comparison(summaries)
        outputs.append(("jobs_comparison", result["jobs"]))
    for name, df in outputs:
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
