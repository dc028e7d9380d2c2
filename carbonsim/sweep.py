"""Sweeps whose results survive faults: one folder per job, written atomically, collected at the end.

A *job* is one simulation: a routing policy (and batch policy), a scenario variant and a seed. It writes
its files into its own folder, ``summary.json`` last and atomically (:func:`carbonsim.runner.write_outputs`).
So a folder is in one of three states:

* **done**: it has a ``summary.json`` that parses and belongs to the job (:func:`read_summary`); running
  the same sweep again skips it (``redo=true`` runs it again);
* **failed**: the job raised (``failed.json`` keeps the error and traceback, and the other jobs go on), or
  its ``summary.json`` is truncated or foreign (it is run again next time);
* **missing**: the job started (it wrote ``job.json``, or Hydra its ``.hydra/`` folder) but never finished
  (interrupted), or an expected job has no folder at all;
* **duplicate**: a second folder of a job already found (same overrides); one of them must go.

:func:`collect` gathers every job folder below a sweep directory into one tidy table with a ``status``
column, so the aggregate marks what is missing or failed instead of silently leaving it out; given the
sweep's expected jobs, it checks that each is there exactly once.
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

from carbonsim._errors import is_user_error, one_line
from carbonsim.analysis import jobs as job_metrics
from carbonsim.analysis import metrics, tables
from carbonsim.runner import write_json, write_text

log = logging.getLogger(__name__)

DONE_FILE = "summary.json"
FAILED_FILE = "failed.json"
STARTED_FILE = "job.json"
EXPECTED_FILE = ".jobs_expected.json"
"""In a Hydra sweep's folder: the overrides of every job the sweep launches (written when it starts)."""

#: Keys every carbonsim ``summary.json`` has; a file without them was not written by a carbonsim run.
SUMMARY_KEYS = ("policy", "label", "seed", "scenario")
#: Keys of ``job.json`` that the job's summary repeats; a summary that disagrees belongs to another job.
IDENTITY_KEYS = ("seed", "experiment", "variant_index", "run_index")

#: Files :func:`write_tables` (and :func:`carbonsim.experiment.analyse`) write; removed before they are
#: written again, so that none is left over from an earlier collection.
RESULT_FILES = (
    "results.parquet",
    "results.csv",
    "results_by_policy.csv",
    "results_by_policy.md",
    "comparison.csv",
    "comparison.md",
    "jobs_comparison.csv",
    "jobs_comparison.md",
    "comparison_per_workload.csv",
    "comparison_per_workload.md",
    "reference_table.csv",
    "reference_table.md",
)


class SummaryError(ValueError):
    """A ``summary.json`` that is unreadable, truncated or not the job's own."""


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; raises ValueError (with the reason) if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name}: not valid JSON (truncated or damaged?): {exc}") from None


def _read_mapping(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or an empty mapping if the file is missing or not an object."""
    try:
        data = _read_json(path)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def read_summary(folder: Path) -> dict[str, Any]:
    """The job's ``summary.json``, checked: valid JSON, a carbonsim summary, and this job's.

    Raises:
        SummaryError: if the file is missing, does not parse, lacks :data:`SUMMARY_KEYS`, or disagrees with
            the job's ``job.json`` on one of :data:`IDENTITY_KEYS` (a summary copied from another job).
    """
    path = folder / DONE_FILE
    if not path.is_file():
        raise SummaryError(f"{DONE_FILE}: missing")
    try:
        data = _read_json(path)
    except ValueError as exc:
        raise SummaryError(str(exc)) from None
    if not isinstance(data, dict) or any(k not in data for k in SUMMARY_KEYS):
        found = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise SummaryError(f"{DONE_FILE}: expected a carbonsim summary with keys {list(SUMMARY_KEYS)}, got {found}")
    identity = _read_mapping(folder / STARTED_FILE)
    for key in IDENTITY_KEYS:
        if key in identity and key in data and identity[key] != data[key]:
            raise SummaryError(
                f"{DONE_FILE}: {key} {data[key]!r}, but the job is {key} {identity[key]!r} (a summary of another job)"
            )
    return data


def job_status(folder: Path) -> str:
    """``done``, ``failed`` or ``missing`` (see the module docstring)."""
    if (folder / DONE_FILE).is_file():
        try:
            read_summary(folder)
        except SummaryError:
            return "failed"
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
        # Bad input is one line (as on the command line); a bug keeps its type, and both the traceback.
        error = one_line(exc) if is_user_error(exc) else repr(exc)
        log.error("job %s failed: %s", folder, error)
        write_json(
            folder / FAILED_FILE,
            {
                **identity,
                "error": error,
                "error_type": type(exc).__name__,
                "bad_input": is_user_error(exc),
                "traceback": traceback.format_exc(),
            },
        )
        return "failed"
    return "done"


def recorded_failure(folder: Path) -> tuple[str, bool]:
    """The error a failed job recorded in ``failed.json`` (one line) and whether it was bad input (not a bug)."""
    data = _read_mapping(folder / FAILED_FILE)
    if not data:
        return f"failed ({FAILED_FILE} missing or unreadable)", False
    return str(data.get("error", "")), bool(data.get("bad_input", False))


def _job_folders(sweep_dir: Path) -> list[Path]:
    folders = {p.parent for name in (DONE_FILE, FAILED_FILE, STARTED_FILE) for p in sweep_dir.rglob(name)}
    folders |= {p.parent for p in sweep_dir.rglob(".hydra") if p.parent != sweep_dir}
    return sorted(f for f in folders if not any(part.startswith(".") for part in f.relative_to(sweep_dir).parts))


def _overrides(folder: Path) -> dict[str, Any]:
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf

    try:
        items = [str(item) for item in OmegaConf.load(path)]
    except Exception:  # a damaged overrides.yaml only loses the job's overrides in the table
        return {}
    return dict(item.split("=", 1) for item in items if "=" in item)


def _row(sweep_dir: Path, folder: Path) -> dict[str, Any]:
    """The table row of one job folder (see :func:`collect`)."""
    overrides = _overrides(folder)
    row: dict[str, Any] = {"job": str(folder.relative_to(sweep_dir)), "status": "missing", _MATCH: overrides}
    summary_file = folder / DONE_FILE
    if summary_file.is_file():
        try:
            row.update(read_summary(folder), status="done")
            return row
        except SummaryError as exc:
            # Truncated or foreign: the job counts as failed, and the next run of the sweep does it again.
            row.update(_read_mapping(folder / STARTED_FILE), status="failed", error=str(exc))
    elif (folder / FAILED_FILE).is_file():
        failed = _read_mapping(folder / FAILED_FILE) or {"error": f"{FAILED_FILE}: unreadable"}
        failed.pop("traceback", None)
        row.update(failed, status="failed")
    else:
        row.update(_read_mapping(folder / STARTED_FILE))
    row.update({f"override.{k}": v for k, v in overrides.items()})
    return row


_MATCH = "_overrides"  # a row's Hydra overrides, for matching against the expected jobs (not a column)


def _override_key(overrides: dict[str, Any]) -> frozenset[tuple[str, str]]:
    return frozenset((str(k), str(v)) for k, v in overrides.items())


def collect(sweep_dir: Path, expected: list[dict[str, str]] | None = None) -> pd.DataFrame:
    """One row per job folder below ``sweep_dir``: its summary (if done), ``status``, ``job`` (folder).

    Failed jobs carry what ``failed.json`` names them by and ``error``; missing ones their Hydra overrides.
    Lists and mappings in a summary (such as ``warnings``) become one text cell each.

    Args:
        sweep_dir: The sweep's folder.
        expected: The overrides of every job the sweep launched (default: those in the sweep's
            :data:`EXPECTED_FILE`, if any). Each must match exactly one folder's Hydra overrides: an
            expected job without a folder is added as ``missing``; a second folder of the same job is
            marked ``duplicate``.
    """
    if expected is None:
        listed = _read_json(sweep_dir / EXPECTED_FILE) if (sweep_dir / EXPECTED_FILE).is_file() else None
        expected = listed if isinstance(listed, list) else None
    rows = [_row(sweep_dir, folder) for folder in _job_folders(sweep_dir)]
    if expected is not None:
        rows = _check_expected(rows, expected)
    for row in rows:
        row.pop(_MATCH, None)
        for key, value in row.items():
            if isinstance(value, list | dict):
                row[key] = "; ".join(map(str, value)) if isinstance(value, list) else json.dumps(value)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["job", "status"])
    df = df.replace({None: math.nan}).infer_objects()
    # Sweep order (variant, seed, run) where the jobs say it, not the folders' alphabetical order.
    order = [c for c in ("variant_index", "seed", "run_index") if c in df.columns]
    return df.sort_values(order, kind="stable", na_position="last").reset_index(drop=True) if order else df


def _check_expected(rows: list[dict[str, Any]], expected: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Matches the expected jobs to the rows by overrides: adds the missing ones, marks duplicates."""
    wanted = {_override_key(e) for e in expected}
    seen: dict[frozenset[tuple[str, str]], str] = {}
    for row in rows:
        key = _override_key(row.get(_MATCH) or {})
        if key not in wanted:
            continue
        if key in seen:
            row.update(status="duplicate", error=f"the same job as folder {seen[key]!r}; remove one of them")
        else:
            seen[key] = row["job"]
    for overrides in expected:
        if _override_key(overrides) not in seen:
            rows.append(
                {
                    "job": "",
                    "status": "missing",
                    "error": "no job folder in the sweep folder (never started, or written elsewhere)",
                    **{f"override.{k}": v for k, v in overrides.items()},
                }
            )
    return rows


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
    for name in RESULT_FILES:  # nothing from an earlier collection may survive this one
        (out_dir / name).unlink(missing_ok=True)
    tmp = out_dir / ".results.parquet.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(out_dir / "results.parquet")
    write_text(out_dir / "results.csv", df.to_csv(index=False, float_format="%.6g"))
    done = df[df["status"] == "done"] if "status" in df.columns else df
    summaries = _records(done)
    comparison = tables.aggregate(summaries)
    if comparison.columns.empty:  # no job done: the table still has its columns
        comparison = pd.DataFrame(columns=list(tables.AGGREGATE_COLUMNS))
    result: dict[str, pd.DataFrame] = {"results": df, "comparison": comparison}
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
