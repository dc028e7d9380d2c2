"""Sweeps whose results survive faults: one folder per job, written atomically, collected at the end.

A *job* is one simulation: a routing policy (and batch policy), a scenario variant and a seed. It writes
its files into its own folder, ``summary.json`` last and atomically (:func:`carbonsim.runner.write_outputs`).
So a folder is in one of three states:

* **done**: it has ``summary.json``; running the same sweep again skips it (``redo=true`` runs it again);
* **failed**: the job raised; ``failed.json`` keeps the error and traceback, and the other jobs go on;
* **missing**: the job started (it wrote ``job.json``, or Hydra its ``.hydra/`` folder) but never finished
  (interrupted).

:func:`collect` gathers every job folder below a sweep directory into one tidy table with a ``status``
column, so the aggregate marks what is missing or failed instead of silently leaving it out.
:func:`finish` then adds the reductions against the baseline job of the same variant, scenario and seed
and the shares of the clairvoyant bounds, and :func:`write_tables` writes ``results.parquet``/``results.csv`` and
the Markdown tables.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from carbonsim.analysis import jobs as job_metrics
from carbonsim.analysis import metrics, tables
from carbonsim.runner import write_json, write_text

log = logging.getLogger(__name__)

DONE_FILE = "summary.json"
FAILED_FILE = "failed.json"
STARTED_FILE = "job.json"


def job_status(folder: Path) -> str:
    """``done``, ``failed`` or ``missing`` (see the module docstring)."""
    if (folder / DONE_FILE).is_file():
        return "done"
    if (folder / FAILED_FILE).is_file():
        return "failed"
    return "missing"


def guarded(folder: Path, work: Callable[[], None], identity: dict[str, Any], redo: bool = False) -> str:
    """Runs one job into ``folder`` unless it is done; records a failure instead of raising.

    Args:
        folder: The job's folder.
        work: Runs the job and writes its files (``summary.json`` last).
        identity: What names the job (label, seed, variant...), kept in ``failed.json`` if it fails.
        redo: Run the job even if it is done.

    Returns:
        ``skipped`` (already done), ``done`` or ``failed``.
    """
    if not redo and job_status(folder) == "done":
        log.info("skipping %s: already done", folder)
        return "skipped"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE_FILE).unlink(missing_ok=True)
    (folder / FAILED_FILE).unlink(missing_ok=True)
    write_json(folder / STARTED_FILE, identity)
    try:
        work()
    except Exception as exc:  # one failed job must not lose the others: record it and go on
        log.error("job %s failed: %r", folder, exc)
        write_json(folder / FAILED_FILE, {**identity, "error": repr(exc), "traceback": traceback.format_exc()})
        return "failed"
    return "done"


def _job_folders(sweep_dir: Path) -> list[Path]:
    folders = {p.parent for name in (DONE_FILE, FAILED_FILE, STARTED_FILE) for p in sweep_dir.rglob(name)}
    folders |= {p.parent for p in sweep_dir.rglob(".hydra") if p.parent != sweep_dir}
    return sorted(f for f in folders if not any(part.startswith(".") for part in f.relative_to(sweep_dir).parts))


def _overrides(folder: Path) -> dict[str, Any]:
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf

    items = [str(item) for item in OmegaConf.load(path)]
    return dict(item.split("=", 1) for item in items if "=" in item)


def collect(sweep_dir: Path) -> pd.DataFrame:
    """One row per job folder below ``sweep_dir``: its summary (if done), ``status``, ``job`` (folder).

    Failed jobs carry what ``failed.json`` names them by and ``error``; missing ones their Hydra overrides.
    """
    rows = []
    for folder in _job_folders(sweep_dir):
        status = job_status(folder)
        row: dict[str, Any] = {"job": str(folder.relative_to(sweep_dir)), "status": status}
        if status == "done":
            row.update(json.loads((folder / DONE_FILE).read_text(encoding="utf-8")))
        elif status == "failed":
            failed = json.loads((folder / FAILED_FILE).read_text(encoding="utf-8"))
            failed.pop("traceback", None)
            row.update(failed)
        else:
            started = folder / STARTED_FILE
            if started.is_file():
                row.update(json.loads(started.read_text(encoding="utf-8")))
            row.update({f"override.{k}": v for k, v in _overrides(folder).items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["job", "status"])
    df = df.replace({None: math.nan}).infer_objects()
    # Sweep order (variant, seed, run) where the jobs say it, not the folders' alphabetical order.
    order = [c for c in ("variant_index", "seed", "run_index") if c in df.columns]
    return df.sort_values(order, kind="stable", na_position="last").reset_index(drop=True) if order else df


def finish(df: pd.DataFrame, baseline_name: str) -> pd.DataFrame:
    """Adds reductions against the baseline job of each (variant, scenario, seed) and the bounds' shares.

    Jobs of an experiment carry ``is_baseline`` (the job that ran the baseline policies) and the raw bound
    emissions of their instance (``bound_carbon_kg``, ``bound_<rule>_job_carbon_kg``); a job outside an
    experiment already carries its reductions (it ran its own baseline).
    """
    if df.empty or "is_baseline" not in df.columns:
        return df
    rows = _records(df)
    keys = ("variant", "scenario", "seed")  # a sweep may vary the scenario preset itself
    baselines = {
        tuple(r.get(k) for k in keys): r for r in rows if r.get("status") == "done" and r.get("is_baseline") in (True,)
    }
    for r in rows:
        base = baselines.get(tuple(r.get(k) for k in keys))
        if r.get("status") != "done" or base is None or ("carbon_reduction_pct" in r and _finite(r)):
            continue
        metrics.add_reduction(r, base, baseline_name)
        job_metrics.add_job_reduction(r, base)
        add_bound_shares(r)
    return pd.DataFrame(rows)


def add_bound_shares(summary: dict[str, Any]) -> None:
    """Adds the shares of the bounds' reductions from the raw bounds a job's summary carries (in place).

    Call after the reductions against the baseline; ``bound_<rule>_job_carbon_kg`` and ``bound_carbon_kg``
    are the clairvoyant emissions of the job's instance.
    """
    bounds = {
        rule: summary[f"bound_{rule}_job_carbon_kg"]
        for rule in ("home", "any")
        if isinstance(summary.get(f"bound_{rule}_job_carbon_kg"), float)
    }
    job_metrics.add_bound(summary, bounds)
    if isinstance(summary.get("bound_carbon_kg"), float) and not math.isnan(summary["bound_carbon_kg"]):
        metrics.add_inference_bound(summary, summary["bound_carbon_kg"])


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _finite(row: dict[str, Any]) -> bool:
    value = row.get("carbon_reduction_pct")
    return isinstance(value, float) and not math.isnan(value)


def write_tables(df: pd.DataFrame, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Writes the sweep's tables into ``out_dir`` and returns them by name.

    ``results.parquet`` / ``results.csv``: every job, every metric, its status; ``results_by_policy``:
    mean and 95 % confidence interval over seeds per label (and variant), every summarised metric in the
    .csv, the headline ones as ``mean ± CI`` in the .md (:func:`carbonsim.analysis.tables.headline_table`);
    ``comparison`` (.csv/.md): the headline columns per job; ``jobs_comparison`` with batch jobs.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".results.parquet.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(out_dir / "results.parquet")
    write_text(out_dir / "results.csv", df.to_csv(index=False, float_format="%.6g"))
    done = df[df["status"] == "done"] if "status" in df.columns else df
    summaries = _records(done)
    result: dict[str, pd.DataFrame] = {"results": df, "comparison": tables.aggregate(summaries)}
    by = [c for c in ("label", "variant") if c in done.columns and done[c].notna().any()]
    if "scenario" in done.columns and done["scenario"].nunique() > 1:
        by.append("scenario")
    if by and len(done):
        result["by_policy"] = tables.mean_ci(done, by, tables.CI_METRICS)
        outputs = [("results_by_policy", result["by_policy"])]
    else:
        outputs = []
    outputs.append(("comparison", result["comparison"]))
    if "jobs" in done.columns and done["jobs"].notna().any():
        result["jobs"] = tables.job_comparison(summaries)
        outputs.append(("jobs_comparison", result["jobs"]))
    for name, table in outputs:
        write_text(out_dir / f"{name}.csv", table.to_csv(index=False, float_format="%.6g"))
        # results_by_policy.md is the compact human table; the CSV keeps every metric at full precision.
        md = tables.markdown(tables.headline_table(table) if name == "results_by_policy" else tables.human_table(table))
        write_text(out_dir / f"{name}.md", md)
    problems = df[df["status"] != "done"] if "status" in df.columns else df.iloc[:0]
    if len(problems):
        log.warning("%d of %d jobs did not finish (see the status column of results.csv)", len(problems), len(df))
    return result
