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
    "job_energy_kwh",
    "job_carbon_kg",
    "job_cost_usd",
    "job_carbon_reduction_pct",
    "job_suspensions",
    "job_migrations",
)

#: Columns of the aggregate comparison table, in order.
AGGREGATE_COLUMNS = (
    "label",
    "variant",
    "scenario",
    "policy",
    "batch_policy",
    "seed",
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
    "carbon_reduction_pct",
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


def to_markdown(df: pd.DataFrame, digits: int = 2) -> str:
    """Renders a DataFrame as a GitHub-flavoured Markdown table (numbers rounded to ``digits``)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


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
