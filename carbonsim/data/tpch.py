"""The TPC-H job DAGs of the Decima and PCAPS simulators: 22 queries at 7 input sizes, with measured tasks.

Files (``traces/workloads/``; see ``traces/README.md`` and ``docs/data/tpch.md``):

* ``tpch_dag_edges.csv.gz``: ``size_gb``, ``query``, ``parent_stage``, ``child_stage`` (one row per edge);
* ``tpch_task_durations_ms.csv.gz``: ``size_gb``, ``query``, ``stage``, ``executors`` (the job's executors
  when measured), ``wave`` (``first_wave``, ``rest_wave``, ``fresh_durations``), ``task``, ``duration_ms``.

From umass-solar/carbon-aware-dag (MIT), which forks hongzimao/decima-sim; cite Mao et al., "Learning
Scheduling Algorithms for Data Processing Clusters", SIGCOMM 2019, and Lechowicz et al., SIGCOMM 2025.

carbonsim's tasks of a stage are identical, so each stage needs one task count and one task duration:

* **tasks**: the first- plus later-wave durations at the smallest executor count measured for the stage
  (Decima's simulator counts them at the first executor count of its data, which is the smallest);
* **task duration** (``duration_executors = 0``, the default): Decima's "rough duration", the mean of every
  measured duration of the stage: first-wave durations with the fresh-executor ones taken out (they are
  also listed among the first wave), a count with no first wave left borrowing the next smaller count's,
  plus the later-wave and the fresh-executor durations, over all executor counts. With
  ``duration_executors = N``, the mean of the first-wave (fresh ones taken out) and later-wave durations
  at the measured executor count closest to N (ties: the smaller; if that leaves none, the fresh ones).

Decima samples each task's duration from these measurements as it runs (by wave and by the job's current
executors, with a warm-up for fresh executors); carbonsim replays their mean, so a stage's waves all take
the same time and the warm-up is spread over every task.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim.data._io import at_row, read_csv
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike, trace_path

TPCH_SIZES_GB = (2, 5, 10, 20, 50, 80, 100)
TPCH_QUERIES = tuple(range(1, 23))
EDGE_HEADER = ("size_gb", "query", "parent_stage", "child_stage")
DURATION_HEADER = ("size_gb", "query", "stage", "executors", "wave", "task", "duration_ms")
WAVES = ("first_wave", "rest_wave", "fresh_durations")
#: Longest plausible task in the measurements (a unit error beyond it).
MAX_TASK_MS = 24 * 3600 * 1000.0
_KEY = ["size_gb", "query", "stage"]


def _integers(df: pd.DataFrame, file: Path, columns: tuple[str, ...]) -> None:
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file}: {at_row(i + 1)}: {col} '{df[col].iat[i]}'; expected a whole number >= 0")
        df[col] = values.astype(np.int64)


def _known(df: pd.DataFrame, file: Path) -> None:
    for col, valid in (("size_gb", TPCH_SIZES_GB), ("query", TPCH_QUERIES)):
        bad = ~df[col].isin(valid).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file}: {at_row(i + 1)}: {col} {df[col].iat[i]}; expected one of {list(valid)}")


@functools.lru_cache(maxsize=4)
def _load(edges_file: Path, durations_file: Path, duration_executors: int) -> pd.DataFrame:
    edges = read_csv(edges_file, EDGE_HEADER)
    _integers(edges, edges_file, EDGE_HEADER)
    _known(edges, edges_file)
    dur = read_csv(durations_file, DURATION_HEADER, dtype={"wave": str})
    _integers(dur, durations_file, ("size_gb", "query", "stage", "executors", "task"))
    _known(dur, durations_file)
    bad_wave = ~dur["wave"].isin(WAVES).to_numpy()
    if bad_wave.any():
        i = int(np.flatnonzero(bad_wave)[0])
        raise DataError(f"{durations_file}: {at_row(i + 1)}: wave {dur['wave'].iat[i]!r}; expected one of {WAVES}")
    ms = pd.to_numeric(dur["duration_ms"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~((ms > 0) & (ms <= MAX_TASK_MS))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{durations_file}: {at_row(i + 1)}: duration_ms '{dur['duration_ms'].iat[i]}'; expected a time in "
            f"(0, {MAX_TASK_MS:g}] ms"
        )
    if (dur["executors"] < 1).any():
        i = int(np.flatnonzero((dur["executors"] < 1).to_numpy())[0])
        raise DataError(f"{durations_file}: {at_row(i + 1)}: executors 0; expected >= 1")
    dur["duration_ms"] = ms
    stages = _stages(dur, duration_executors)
    _check_coverage(stages, durations_file)
    parents = _parents(edges, stages, edges_file)
    stages["parents"] = [parents.get((s, q, k), "") for s, q, k in stages[_KEY].itertuples(index=False)]
    return stages


def _stages(dur: pd.DataFrame, duration_executors: int) -> pd.DataFrame:
    """One row per stage: tasks and task duration by the rules of the module docstring."""
    first = dur[dur["wave"] == "first_wave"]
    rest = dur[dur["wave"] == "rest_wave"]
    fresh = dur[dur["wave"] == "fresh_durations"]
    cell = [*_KEY, "executors"]
    # Fresh-executor durations also appear among the first wave: take each one out once (a multiset difference).
    occurrence = first.groupby([*cell, "duration_ms"]).cumcount()
    listed = fresh.groupby([*cell, "duration_ms"]).size().rename("fresh_n")
    joined = first[[*cell, "duration_ms"]].join(listed, on=[*cell, "duration_ms"])
    clean = first[occurrence.to_numpy() >= joined["fresh_n"].fillna(0).to_numpy()]
    per_cell = pd.DataFrame(
        {
            "first_n": first.groupby(cell).size(),
            "rest_n": rest.groupby(cell).size(),
            "clean_sum": clean.groupby(cell)["duration_ms"].sum(),
            "clean_n": clean.groupby(cell).size(),
            "rest_sum": rest.groupby(cell)["duration_ms"].sum(),
            "fresh_sum": fresh.groupby(cell)["duration_ms"].sum(),
            "fresh_n": fresh.groupby(cell).size(),
        }
    ).fillna(0.0)
    per_cell = per_cell.sort_index()
    # A count with no first wave left borrows the next smaller count's (which may itself have borrowed).
    borrowed = per_cell[["clean_sum", "clean_n"]].where(per_cell["clean_n"] > 0)
    borrowed = borrowed.groupby(level=_KEY).ffill().fillna(0.0)
    per_cell["clean_sum"], per_cell["clean_n"] = borrowed["clean_sum"], borrowed["clean_n"]
    smallest = per_cell.groupby(level=_KEY).head(1)
    tasks = (smallest["first_n"] + smallest["rest_n"]).droplevel("executors").astype(np.int64)
    if duration_executors <= 0:
        total = per_cell.groupby(level=_KEY)[
            ["clean_sum", "rest_sum", "fresh_sum", "clean_n", "rest_n", "fresh_n"]
        ].sum()
        mean_ms = (total["clean_sum"] + total["rest_sum"] + total["fresh_sum"]) / (
            total["clean_n"] + total["rest_n"] + total["fresh_n"]
        )
    else:
        flat = per_cell.reset_index()
        flat["gap"] = (flat["executors"] - duration_executors).abs()
        nearest = flat.sort_values([*_KEY, "gap", "executors"]).groupby(_KEY).head(1).set_index(_KEY)
        waves = nearest["clean_n"] + nearest["rest_n"]
        mean_ms = pd.Series(
            np.where(
                waves > 0,
                (nearest["clean_sum"] + nearest["rest_sum"]) / waves.where(waves > 0, 1.0),
                nearest["fresh_sum"] / nearest["fresh_n"].where(nearest["fresh_n"] > 0, 1.0),
            ),
            index=nearest.index,
        )
    out = pd.DataFrame({"tasks": tasks, "task_duration_s": mean_ms.reindex(tasks.index) / 1000.0})
    return out.reset_index().sort_values(_KEY, kind="stable").reset_index(drop=True)


def _check_coverage(stages: pd.DataFrame, file: Path) -> None:
    """Each query and size with stages numbered 0..k-1, each stage with tasks."""
    for (size, query), group in stages.groupby(["size_gb", "query"]):
        if group["stage"].tolist() != list(range(len(group))):
            raise DataError(
                f"{file}: size {size} GB query {query}: stages {group['stage'].tolist()[:10]}; expected 0..k-1"
            )
    if (stages["tasks"] < 1).any() or not np.isfinite(stages["task_duration_s"]).all():
        row = stages[(stages["tasks"] < 1) | ~np.isfinite(stages["task_duration_s"])].iloc[0]
        raise DataError(
            f"{file}: size {row['size_gb']} GB query {row['query']} stage {row['stage']}: no first- or later-wave "
            "tasks at its smallest executor count"
        )


def _parents(edges: pd.DataFrame, stages: pd.DataFrame, file: Path) -> dict[tuple[int, int, int], str]:
    known = set(zip(stages["size_gb"], stages["query"], stages["stage"], strict=True))
    out: dict[tuple[int, int, int], list[str]] = {}
    for i, (size, query, parent, child) in enumerate(edges[list(EDGE_HEADER)].itertuples(index=False)):
        for stage in (parent, child):
            if (size, query, stage) not in known:
                raise DataError(
                    f"{file}: {at_row(i + 1)}: size {size} GB query {query}: stage {stage} has no task durations"
                )
        out.setdefault((size, query, child), []).append(str(parent))
    return {k: " ".join(v) for k, v in out.items()}


def load_tpch_stages(
    edges_path: PathLike | None = None, durations_path: PathLike | None = None, duration_executors: int = 0
) -> pd.DataFrame:
    """The stages of every TPC-H query and size, with one task count and one task duration each.

    Args:
        edges_path: Edge file to read instead of the shipped one.
        durations_path: Task-duration file to read instead of the shipped one.
        duration_executors: The task-duration rule: 0 for Decima's mean over all measurements, N > 0 for
            the measured executor count closest to N (see the module docstring).

    Returns:
        Frame with ``size_gb``, ``query``, ``stage`` (0..k-1 per query and size), ``tasks`` (int64),
        ``task_duration_s`` (float64) and ``parents`` (space-separated stage numbers, "" for a root),
        ordered by size, query and stage. Precedence is checked when the stages become a trace
        (:func:`carbonsim.data.job_trace.validate_stages`: a cycle or a self-loop is named there).

    Raises:
        DataError: a file is missing or has an unexpected header; a size, query, stage, executor count or
            wave that is not one of the known ones; a duration that is not a positive time; a query and size
            with stages not numbered 0..k-1, or an edge to a stage without durations.
    """
    edges = Path(edges_path) if edges_path is not None else trace_path("workloads", "tpch_dag_edges.csv.gz")
    durations = (
        Path(durations_path) if durations_path is not None else trace_path("workloads", "tpch_task_durations_ms.csv.gz")
    )
    return _load(edges, durations, int(duration_executors)).copy()


__all__ = ["TPCH_QUERIES", "TPCH_SIZES_GB", "load_tpch_stages"]
