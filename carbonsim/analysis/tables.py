"""Comparison tables across runs, as DataFrames and Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Batch-job metrics, in the aggregate table and the job table alike.
JOB_METRIC_COLUMNS = (
    "jobs",
    "jobs_completed",
    "jobs_failed",
    "jobs_in_flight",
    "deadline_met_pct",
    "job_mean_wait_h",
    "job_p95_wait_h",
    "job_mean_completion_h",
    "job_p95_completion_h",
    "job_energy_kwh",
    "job_carbon_kg",
    "job_cost_usd",
    "job_carbon_reduction_pct",
    "job_suspensions",
    "job_migrations",
)

#: Inference-request metrics of the aggregate table (left out of the report of a sweep without requests).
INFERENCE_COLUMNS = (
    "requests",
    "completed",
    "rejected",
    "failed",
    "in_flight",
    "retries",
    "mean_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "slo_violation_pct",
    "mean_intensity_gco2_per_kwh",
    "energy_kwh",
    "carbon_kg",
    "carbon_g_per_request",
    "cost_usd",
    "carbon_reduction_pct",
    "intensity_reduction_pct",
    "bound_carbon_kg",
    "share_of_bound_pct",
)

#: Columns of the aggregate comparison table, in order.
AGGREGATE_COLUMNS = (
    "label",
    "variant",
    "scenario",
    "policy",
    "batch_policy",
    "seed",
    *INFERENCE_COLUMNS,
    *JOB_METRIC_COLUMNS,
)

#: Columns of the reference table (one row per policy and source).
REFERENCE_COLUMNS = (
    "policy",
    "source",
    "mean_latency_ms",
    "p95_latency_ms",
    "slo_violation_pct",
    "mean_intensity_gco2_per_kwh",
    "intensity_reduction_pct",
)


def aggregate(summaries: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run with the headline metrics (columns missing from a summary are left empty)."""
    df = pd.DataFrame(list(summaries))
    return df.reindex(columns=[c for c in AGGREGATE_COLUMNS if c in df.columns])


#: Columns of the batch-job comparison table.
JOB_COLUMNS = (
    "label",
    "variant",
    "scenario",
    "batch_policy",
    "batch_trace",
    "seed",
    *JOB_METRIC_COLUMNS,
    "bound_home_job_carbon_kg",
    "job_share_of_home_bound_pct",
    "bound_any_job_carbon_kg",
    "job_share_of_any_bound_pct",
)


def job_comparison(summaries: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run with the batch-job metrics."""
    df = pd.DataFrame(list(summaries))
    return df.reindex(columns=[c for c in JOB_COLUMNS if c in df.columns])


#: Significant figures of a column's typical value (its median magnitude) in the human tables.
SIGNIFICANT_FIGURES = 3
#: Most decimals a human table shows.
MAX_DECIMALS = 6

#: One human name per metric, used by every human table (Markdown, the report, the terminal).
COLUMN_NAMES = {
    "label": "policy",
    "variant": "variant",
    "scenario": "scenario",
    "seed": "seed",
    "seeds": "seeds",
    "policy": "routing policy",
    "batch_policy": "batch policy",
    "requests": "requests",
    "completed": "completed",
    "mean_latency_ms": "mean latency ms",
    "p50_latency_ms": "p50 latency ms",
    "p95_latency_ms": "p95 latency ms",
    "p99_latency_ms": "p99 latency ms",
    "slo_violation_pct": "SLO violations %",
    "mean_intensity_gco2_per_kwh": "serving intensity gCO2/kWh",
    "energy_kwh": "energy kWh",
    "carbon_kg": "kg CO2",
    "carbon_g_per_request": "g CO2 per request",
    "cost_usd": "cost USD",
    "carbon_reduction_pct": "carbon reduction %",
    "intensity_reduction_pct": "intensity reduction %",
    "bound_carbon_kg": "bound kg CO2",
    "share_of_bound_pct": "% of bound reduction",
    "jobs": "jobs",
    "jobs_completed": "jobs done",
    "jobs_in_flight": "jobs running",
    "deadline_met_pct": "deadlines met %",
    "job_mean_wait_h": "job wait h",
    "job_p95_wait_h": "job p95 wait h",
    "job_energy_kwh": "job energy kWh",
    "job_carbon_kg": "job kg CO2",
    "job_cost_usd": "job cost USD",
    "job_migrations": "job migrations",
    "job_carbon_reduction_pct": "job carbon reduction %",
    "job_share_of_home_bound_pct": "% of home-region bound",
    "job_share_of_any_bound_pct": "% of any-region bound",
    "job_mean_completion_h": "mean JCT h",
    "job_p95_completion_h": "p95 JCT h",
    # The seed study's columns (carbonsim.analysis.seed_study).
    "job_carbon_t": "t CO2eq",
    "saved_vs_agnostic_t": "saved t vs carbon-agnostic",
    "saved_vs_agnostic_pct": "saved % vs carbon-agnostic",
    "energy_per_task_kwh": "kWh per task (with PUE)",
    "decision_cpu_ms": "scheduler CPU ms per decision",
    "batch_epochs": "decisions",
    "peak_memory_mb": "peak memory MB",
    "saved_t": "saved t",
    "saved_pct": "saved %",
}


def column_name(column: str) -> str:
    """The human name of a column (:data:`COLUMN_NAMES`), or the column itself."""
    return COLUMN_NAMES.get(column, column)


def column_decimals(values: Any) -> int:
    """Decimals that show a column's values to :data:`SIGNIFICANT_FIGURES` significant figures.

    One column shares one number of decimals: enough for the figures of its smallest non-zero magnitude,
    but at most one more than its median non-zero magnitude needs (so that 0.09 beside 52.5 reads 0.09 and
    52.50, not 52.5000; 0.0003 beside them rounds to 0.00). More decimals are added (up to
    :data:`MAX_DECIMALS`) while values that differ would all print alike (never a column of identical 0.00s).
    A column of whole numbers has none.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    nonzero = np.abs(x[x != 0])
    if not nonzero.size or np.all(x == np.round(x)):
        return 0

    def needed(magnitude: float) -> int:
        return min(max(SIGNIFICANT_FIGURES - 1 - math.floor(math.log10(magnitude)), 0), MAX_DECIMALS)

    base = min(needed(float(nonzero.min())), needed(float(np.median(nonzero))) + 1)
    d = base

    def collapsed(d: int) -> bool:
        return len({_fixed(v, d) for v in x}) == 1 and len(set(x.tolist())) > 1

    while d < MAX_DECIMALS and collapsed(d):
        d += 1
    return d


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"


def format_number(value: Any, decimals: int) -> str:
    """A cell: empty for a missing value, integers as they are, floats with ``decimals``."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    return _fixed(float(value), decimals)


def format_table(df: pd.DataFrame, digits: int | None = None) -> pd.DataFrame:
    """The table as text, each numeric column to its own precision (:func:`column_decimals`).

    Args:
        df: The table.
        digits: Decimals for every float column instead (the machine tables of the learning scripts).
    """
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_float_dtype(s.dtype):
            d = column_decimals(s.to_numpy()) if digits is None else digits
            out[col] = [format_number(v, d) for v in s]
        else:
            out[col] = [format_number(v, 0) for v in s]
    return pd.DataFrame(out, columns=list(df.columns), index=df.index)


def markdown(df: pd.DataFrame) -> str:
    """A table of text as a GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def esc(v: Any) -> str:
        return str(v).replace("|", "\\|")

    header = "| " + " | ".join(esc(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def human_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table as text (:func:`format_table`) under the human column names (:data:`COLUMN_NAMES`).

    ``policy`` is the run's label where the table has no ``label`` (the reference table).
    """
    names = {c: column_name(c) for c in df.columns}
    if "label" not in df.columns and "policy" in df.columns:
        names["policy"] = "policy"
    return format_table(df).rename(columns=names)


def to_markdown(df: pd.DataFrame, digits: int | None = None) -> str:
    """Renders a DataFrame as a Markdown table, numbers to each column's precision (:func:`format_table`)."""
    return markdown(format_table(df, digits))


#: Metrics summarised over seeds (mean and 95 % confidence interval) in ``results_by_policy``.
CI_METRICS = (
    "mean_latency_ms",
    "p95_latency_ms",
    "slo_violation_pct",
    "mean_intensity_gco2_per_kwh",
    "energy_kwh",
    "carbon_kg",
    "cost_usd",
    "carbon_reduction_pct",
    "share_of_bound_pct",
    "deadline_met_pct",
    "job_mean_wait_h",
    "job_energy_kwh",
    "job_carbon_kg",
    "job_cost_usd",
    "job_carbon_reduction_pct",
    "job_share_of_any_bound_pct",
)


def mean_ci(df: pd.DataFrame, by: Sequence[str], columns: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Mean and confidence half-width over the rows of each group (seeds), per metric.

    The half-width is Student's ``t`` quantile at ``(1 + level) / 2`` with ``n - 1`` degrees of freedom
    times the standard error ``s / sqrt(n)``; NaN with a single seed. Columns: ``by``, ``seeds`` (rows in
    the group), then ``<metric>_mean`` and ``<metric>_ci95`` for each metric present. Groups keep their
    order of first appearance.
    """
    present = [c for c in columns if c in df.columns and pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()]
    rows = []
    for key, g in df.groupby(list(by), sort=False, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, keys, strict=True))
        row["seeds"] = len(g)
        for c in present:
            values = g[c].dropna().to_numpy(dtype=np.float64)
            n = values.size
            row[f"{c}_mean"] = float(values.mean()) if n else math.nan
            half = float(stats.t.ppf((1 + level) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            row[f"{c}_ci95"] = half
        rows.append(row)
    return pd.DataFrame(rows)


#: Headline metrics of inference routing in the compact per-policy table.
HEADLINE_INFERENCE = (
    "mean_latency_ms",
    "slo_violation_pct",
    "carbon_kg",
    "carbon_reduction_pct",
    "share_of_bound_pct",
)
#: Headline metrics of batch jobs in the compact per-policy table.
HEADLINE_JOBS = (
    "deadline_met_pct",
    "job_mean_wait_h",
    "job_carbon_kg",
    "job_carbon_reduction_pct",
    "job_share_of_any_bound_pct",
)


def _present(by_policy: pd.DataFrame, metric: str) -> bool:
    col = f"{metric}_mean"
    return col in by_policy.columns and bool(pd.to_numeric(by_policy[col], errors="coerce").notna().any())


def has_inference(by_policy: pd.DataFrame) -> bool:
    """Whether a per-policy table (:func:`mean_ci`) comes from runs that served requests (a mean latency)."""
    return _present(by_policy, "mean_latency_ms")


def has_jobs(by_policy: pd.DataFrame) -> bool:
    """Whether a per-policy table (:func:`mean_ci`) comes from runs with batch jobs."""
    return _present(by_policy, "job_carbon_kg")


def ci_cells(mean: pd.Series, half: pd.Series) -> list[str]:
    """``mean ± half-width`` cells of one metric, both to the precision of the column of means.

    A missing half-width (one seed) leaves the mean alone.
    """
    means = pd.to_numeric(mean, errors="coerce").to_numpy(dtype=np.float64)
    halves = pd.to_numeric(half, errors="coerce").to_numpy(dtype=np.float64)
    d = column_decimals(means)
    return [
        "" if math.isnan(m) else _fixed(m, d) + ("" if math.isnan(h) else f" ± {_fixed(h, d)}")
        for m, h in zip(means, halves, strict=True)
    ]


def headline_table(by_policy: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """The compact human table of a sweep: per policy, ``mean ± 95 % CI`` of a handful of metrics.

    Args:
        by_policy: :func:`mean_ci`'s table.
        metrics: The metrics, in order; by default the headline ones of what the sweep holds (inference
            :data:`HEADLINE_INFERENCE`, batch jobs :data:`HEADLINE_JOBS`, or both).

    Columns carry :data:`COLUMN_NAMES`; the variant and scenario appear where they vary, the seed count
    where it differs between rows (a failed job). Cells are text (:func:`ci_cells`).
    """
    if metrics is None:
        metrics = [
            *(HEADLINE_INFERENCE if has_inference(by_policy) else ()),
            *(HEADLINE_JOBS if has_jobs(by_policy) else ()),
        ]
    out = pd.DataFrame(index=by_policy.index)
    for key in ("label", "variant", "scenario"):
        if key not in by_policy.columns or not by_policy[key].astype(str).replace("nan", "").ne("").any():
            continue
        if key == "label" or by_policy[key].nunique(dropna=False) > 1:
            out[column_name(key)] = by_policy[key].astype(str).to_numpy()
    if "seeds" in by_policy.columns and by_policy["seeds"].nunique() > 1:
        out[column_name("seeds")] = by_policy["seeds"].astype(int).astype(str).to_numpy()
    for metric in metrics:
        if _present(by_policy, metric):
            out[column_name(metric)] = ci_cells(by_policy[f"{metric}_mean"], by_policy[f"{metric}_ci95"])
    return out.reset_index(drop=True)
