"""Alibaba cluster-trace-v2018 ``batch_task``: batch jobs as DAGs of tasks, the DAG encoded in task names.

Schema (alibaba/clusterdata ``cluster-trace-v2018/schema.md``; no header line): ``task_name``,
``instance_num``, ``job_name``, ``task_type``, ``status``, ``start_time``, ``end_time`` (seconds from the
start of the 8-day trace; 0 = outside it), ``plan_cpu`` (100 = one core), ``plan_mem`` (normalised).

Task names (``trace_2018.md`` section 2.3): ``M1`` is task 1 with no parent, ``R2_1`` task 2 after task 1,
``J3_1_2`` task 3 after tasks 1 and 2; the letter does not matter. Names of other shapes
(``task_Nzg3ODAw...``, ``MergeTask``) carry no DAG information and are independent tasks. Two forms seen in
the real sample (``traces/workloads/alibaba2018_batch_task_distinct_names.csv.gz``) are handled too: a
``_Stg<n>`` suffix (``R2_1_Stg8``; the numbers before it are read as usual) and names cut at 50 characters
(183 of its 17,996 names have exactly 50, against 8 with 49), whose dependency lists are incomplete: such
jobs are left out and counted.

Mapping: one stage per task, ``instance_num`` parallel tasks each running ``end_time - start_time`` (the
task's span; per-instance times are in ``batch_instance``, not read, so this is an upper bound of the work),
``plan_cpu / 100`` cores each. A job arrives at the earliest start of its tasks (the table has no
submission time). Only ``Terminated`` tasks succeeded; a job is replayed when all its tasks are replayable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import (
    StageRows,
    Window,
    check_dag,
    describe,
    expand_paths,
    home_of,
    iter_chunks,
)
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

COLUMNS = (
    "task_name",
    "instance_num",
    "job_name",
    "task_type",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
)
#: The header of the shipped distinct-names sample (its source renamed some columns).
SAMPLE_HEADER = ("task_name", "task_count", "job_id", "none1", "status", "start_time", "end_time", "none2", "none3")
#: Longest task name the trace stores; longer names were cut (see the module docstring).
NAME_LIMIT = 50
SUCCEEDED = "Terminated"
ENDED = ("Failed", "Cancelled", "Interrupted")
#: Half the trace's 1 s resolution: the run time given to tasks whose end equals their start.
ZERO_RUN_S = 0.5
_DAG_NAME = re.compile(r"^[A-Za-z]+(\d+)((?:_\d+)*)(?:_Stg\d+)?$")
_CUT_NAME = re.compile(r"^[A-Za-z]+\d+(?:_\d+)*_$")


@dataclass(frozen=True)
class TaskName:
    """What a ``task_name`` says about the DAG.

    Attributes:
        task: The task's id within its job (the number of a DAG name, else the whole name).
        parents: Ids of the tasks it waits for.
        dag: True if the name follows the DAG convention.
        truncated: True if the name was cut at ``NAME_LIMIT`` characters, so ``parents`` may be incomplete
            (and its last number cut short).
    """

    task: str
    parents: tuple[str, ...]
    dag: bool
    truncated: bool


def parse_task_name(name: str) -> TaskName:
    """Reads the task id and dependencies from an Alibaba 2018 task name (see the module docstring)."""
    m = _DAG_NAME.match(name)
    if m:
        parents = tuple(str(int(x)) for x in m.group(2).split("_")[1:])
        cut = len(name) >= NAME_LIMIT and bool(parents) and "_Stg" not in name
        return TaskName(str(int(m.group(1))), parents, True, cut)
    if len(name) >= NAME_LIMIT and _CUT_NAME.match(name):
        numbers = name.rstrip("_").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz").split("_")
        return TaskName(str(int(numbers[0])), tuple(str(int(x)) for x in numbers[1:]), True, True)
    return TaskName(name, (), False, False)


def read_batch_task(paths: PathLike | Sequence[PathLike]) -> tuple[pd.DataFrame, str]:
    """All rows of ``batch_task`` file(s), typed, with the file and line of each.

    Returns:
        (frame, source): columns ``task_name``, ``job_name``, ``status`` (str), ``instance_num``,
        ``start_time``, ``end_time``, ``plan_cpu`` (float64, NaN where empty; instance counts and times must
        be whole numbers >= 0), ``where`` (file and line); and the description of what was read.

    Raises:
        DataError: a row with too many or too few fields, an unknown header, a field that is not a number.
    """
    files = expand_paths(paths, "alibaba_2018 batch_task")
    parts: list[pd.DataFrame] = []
    for path in files:
        for chunk in iter_chunks(path, COLUMNS, header=(COLUMNS, SAMPLE_HEADER)):
            nan = float("nan")
            parts.append(
                pd.DataFrame(
                    {
                        "task_name": chunk.text("task_name"),
                        "job_name": chunk.text("job_name"),
                        "status": chunk.text("status"),
                        "instance_num": chunk.number("instance_num", empty=nan, lo=0, integer=True),
                        "start_time": chunk.number("start_time", empty=nan, lo=0, integer=True),
                        "end_time": chunk.number("end_time", empty=nan, lo=0, integer=True),
                        "plan_cpu": chunk.number("plan_cpu", empty=nan, lo=0),
                        "where": [f"{path}: line {n}" for n in chunk.lines],
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*COLUMNS, "where"])
    return frame, describe("alibaba_2018", files)


def load_alibaba_2018(paths: PathLike | Sequence[PathLike], options: JobImportOptions | None = None) -> JobTrace:
    """Jobs of the Alibaba cluster-trace-v2018 ``batch_task`` table (or the shipped distinct-names sample).

    Args:
        paths: ``batch_task.csv`` (plain or gzip'd), or shards of it in order.
        options: Time window (seconds after the trace's start), ``home``, ``replay_failed`` (also replay
            Failed/Cancelled/Interrupted tasks that have both times), ``missing_parents``.

    Returns:
        The stage table; ``skipped`` counts the jobs left out by reason (a task that did not finish or
        failed, a time outside the trace, no CPU request, a truncated name, a missing parent, the window).

    Raises:
        DataError: naming file, line and field: malformed rows, an end before the start of a task that is
            replayed, a duplicate task id within a job, a dependency cycle, a missing parent (with
            ``missing_parents: error``).
    """
    opts = options or JobImportOptions()
    frame, source = read_batch_task(paths)
    rows = StageRows(source)
    window = Window.of(opts)
    ok_status = {SUCCEEDED, *ENDED} if opts.replay_failed else {SUCCEEDED}
    for job, group in frame.groupby("job_name", sort=False):
        _add_job(str(job), group, rows, window, opts, ok_status)
    return rows.build(None, shift_s=opts.start_s)


def _add_job(
    job: str, g: pd.DataFrame, rows: StageRows, window: Window, opts: JobImportOptions, ok_status: set[str]
) -> None:
    status = g["status"].to_numpy(dtype=object)
    bad = [s for s in status if s not in ok_status]
    if bad:
        s = str(bad[0])
        reason = "failed or cancelled (replay_failed is off)" if s in ENDED else "did not finish in the trace"
        rows.skip(f"a task {reason}: status {s}")
        return
    start = g["start_time"].to_numpy(dtype=np.float64)
    end = g["end_time"].to_numpy(dtype=np.float64)
    where = g["where"].to_numpy(dtype=object)
    if np.any(~(start > 0) | ~(end > 0)):
        rows.skip("a task time is 0 or empty (outside the trace's 8 days)")
        return
    if (i := _first(end < start)) is not None:
        raise DataError(f"{where[i]}: end_time {end[i]:.0f} before start_time {start[i]:.0f}; expected end >= start")
    cpus = g["plan_cpu"].to_numpy(dtype=np.float64) / 100.0
    inst = g["instance_num"].to_numpy(dtype=np.float64)
    if np.any(~(cpus > 0)):
        rows.skip("a task has no CPU request (plan_cpu empty or 0)")
        return
    if np.any(~(inst >= 1)):
        rows.skip("a task has no instances (instance_num empty or 0)")
        return
    names = [parse_task_name(str(n)) for n in g["task_name"]]
    if any(n.truncated for n in names):
        rows.skip(f"a task name was cut at {NAME_LIMIT} characters (dependency list incomplete)")
        return
    parents: dict[str, tuple[str, ...]] = {}
    at: dict[str, str] = {}
    for n, w in zip(names, where, strict=True):
        if n.task in parents:
            raise DataError(f"{w}: job {job}: task id {n.task} appears twice (also {at[n.task]})")
        parents[n.task] = n.parents
        at[n.task] = str(w)
    missing = check_dag(job, parents, at)
    if missing is not None:
        if opts.missing_parents == "error":
            lost = [p for p in parents[missing] if p not in parents]
            raise DataError(f"{at[missing]}: job {job}: task {missing} depends on task(s) {lost}, not in the job")
        rows.skip("depends on a task that is not in the trace")
        return
    submit = float(start.min())
    if (outside := window.outside(submit)) is not None:
        rows.skip(outside)
        return
    home = home_of("", opts, str(where[0]))
    for k, n in enumerate(names):
        duration = end[k] - start[k]
        if duration == 0:
            duration = ZERO_RUN_S
            rows.adjust(f"tasks with a 0 s run time replayed as {ZERO_RUN_S} s (half the 1 s resolution)")
        rows.add(
            str(where[k]),
            job=job,
            stage=n.task,
            submit_s=submit,
            tasks=int(inst[k]),
            duration_s=float(duration),
            cpus=float(cpus[k]),
            parents=" ".join(n.parents),
            home=home,
        )


def _first(bad: np.ndarray) -> int | None:
    rows = np.flatnonzero(bad)
    return int(rows[0]) if rows.size else None
