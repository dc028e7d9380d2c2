"""Alibaba PAI GPU cluster trace 2020 (cluster-trace-gpu-v2020): ``pai_task_table`` and ``pai_job_table``.

Schemas (alibaba/clusterdata ``cluster-trace-gpu-v2020/README.md``; the CSVs have no header, the
``.header`` files beside them name the columns, and a file that starts with that header is read too):

* ``pai_task_table``: ``job_name``, ``task_name``, ``inst_num``, ``status``, ``start_time``, ``end_time``
  (seconds, shifted by a constant), ``plan_cpu`` (100 = one vCPU), ``plan_mem`` (GB), ``plan_gpu``
  (100 = one GPU, 50 = half a GPU), ``gpu_type`` (``MISC``, ``T4``, ``P100``, ``V100``, ``V100M32``; MISC
  is "older generations, e.g. K40m, K80, M60").
* ``pai_job_table``: ``job_name``, ``inst_id``, ``user``, ``status``, ``start_time`` (job submission),
  ``end_time``.

Mapping: one stage per task (a job's roles such as ``ps`` and ``worker`` run side by side, so no stage waits
for another), ``inst_num`` parallel tasks of ``end_time - start_time`` each, ``plan_cpu / 100`` CPUs and
``plan_gpu / 100`` GPUs of the catalog GPU ``gpu_type`` maps to (``options.gpu_types``; by default T4 and
V100 are catalog GPUs, V100M32 is a V100, and MISC and P100 are not in the catalog, so their jobs are
skipped and counted unless mapped). A job is submitted at its ``pai_job_table`` start time, or at the
earliest start of its tasks when no job table is given. Only ``Terminated`` tasks and jobs succeeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import GpuTypes, StageRows, Window, describe, expand_paths, home_of, iter_chunks
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

TASK_COLUMNS = (
    "job_name",
    "task_name",
    "inst_num",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
    "plan_gpu",
    "gpu_type",
)
JOB_COLUMNS = ("job_name", "inst_id", "user", "status", "start_time", "end_time")
SUCCEEDED = "Terminated"
FAILED = "Failed"
#: Half the 1 s resolution: the run time given to tasks whose end equals their start.
ZERO_RUN_S = 0.5


def _read(paths: PathLike | Sequence[PathLike], columns: tuple[str, ...], what: str) -> tuple[pd.DataFrame, list[Path]]:
    files = expand_paths(paths, what)
    parts = []
    nan = math.nan
    for path in files:
        for chunk in iter_chunks(path, columns, header=(columns,)):
            data: dict[str, object] = {"where": [f"{path}: line {n}" for n in chunk.lines]}
            for col in columns:
                if col in ("inst_num",):
                    data[col] = chunk.number(col, empty=nan, lo=0, integer=True)
                elif col in ("start_time", "end_time", "plan_cpu", "plan_gpu"):
                    data[col] = chunk.number(col, empty=nan, lo=0)
                elif col in ("job_name", "task_name", "status", "gpu_type"):
                    data[col] = chunk.text(col)
            parts.append(pd.DataFrame(data))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["where", *columns])
    return frame, files


def load_pai_2020(
    task_paths: PathLike | Sequence[PathLike],
    job_paths: PathLike | Sequence[PathLike] | None = None,
    options: JobImportOptions | None = None,
) -> JobTrace:
    """GPU (and CPU) jobs of the Alibaba PAI 2020 trace.

    Args:
        task_paths: ``pai_task_table.csv`` (plain or gzip'd).
        job_paths: ``pai_job_table.csv`` for the jobs' submission times and statuses (optional).
        options: Time window (seconds of the trace's own clock), ``home``, ``replay_failed`` (also Failed
            tasks and jobs, with the time they ran), ``gpu_types``, ``unknown_gpu``.

    Returns:
        The stage table; ``skipped`` counts jobs left out by reason (not Terminated, a time unknown, an
        unmapped GPU type, no CPU or GPU request, no task rows, the window).

    Raises:
        DataError: naming file, line and field: malformed rows, an end before a start, a task name twice in
            a job, a job twice in the job table, an unmapped GPU type with ``unknown_gpu: error``.
    """
    opts = options or JobImportOptions()
    tasks, files = _read(task_paths, TASK_COLUMNS, "pai_task_table")
    jobs_frame = None
    if job_paths is not None and (not isinstance(job_paths, list | tuple) or job_paths):
        jobs_frame, job_files = _read(job_paths, JOB_COLUMNS, "pai_job_table")
        files = files + job_files
    rows = StageRows(describe("pai_2020", files))
    gpus = GpuTypes(opts)
    window = Window.of(opts)
    ok = {SUCCEEDED, FAILED} if opts.replay_failed else {SUCCEEDED}
    submitted: dict[str, tuple[float, str]] = {}
    if jobs_frame is not None:
        seen: dict[str, str] = {}
        for name, status, start, where in zip(
            jobs_frame["job_name"], jobs_frame["status"], jobs_frame["start_time"], jobs_frame["where"], strict=True
        ):
            if name in seen:
                raise DataError(f"{where}: job_name {name} also on {seen[name]}")
            seen[name] = where
            submitted[name] = (float(start), str(status))
        rows.skip("job with no rows in pai_task_table", len(set(submitted) - set(tasks["job_name"])))
    for job, g in tasks.groupby("job_name", sort=False):
        _add_job(str(job), g, submitted, jobs_frame is not None, rows, gpus, window, opts, ok)
    return rows.build(None, shift_s=opts.start_s)


def _add_job(
    job: str,
    g: pd.DataFrame,
    submitted: dict[str, tuple[float, str]],
    have_jobs: bool,
    rows: StageRows,
    gpus: GpuTypes,
    window: Window,
    opts: JobImportOptions,
    ok: set[str],
) -> None:
    where = g["where"].to_numpy(dtype=object)
    if have_jobs:
        if job not in submitted:
            rows.skip("job not in pai_job_table")
            return
        submit, job_status = submitted[job]
        if job_status not in ok:
            rows.skip(_status_reason(job_status))
            return
    for status in g["status"]:
        if status not in ok:
            rows.skip(_status_reason(str(status)))
            return
    start = g["start_time"].to_numpy(dtype=np.float64)
    end = g["end_time"].to_numpy(dtype=np.float64)
    if np.isnan(start).any() or np.isnan(end).any() or (have_jobs and math.isnan(submit)):
        rows.skip("a start or end time is empty")
        return
    bad = np.flatnonzero(end < start)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{where[i]}: end_time {end[i]:g} before start_time {start[i]:g}; expected end >= start")
    if not have_jobs:
        submit = float(start.min())
    cpus = np.nan_to_num(g["plan_cpu"].to_numpy(dtype=np.float64)) / 100.0
    gpu = np.nan_to_num(g["plan_gpu"].to_numpy(dtype=np.float64)) / 100.0
    inst = g["inst_num"].to_numpy(dtype=np.float64)
    if np.any((cpus <= 0) & (gpu <= 0)):
        rows.skip("a task requests no CPU and no GPU")
        return
    if np.any(~(inst >= 1)):
        rows.skip("a task has no instances (inst_num empty or 0)")
        return
    types: list[str] = []
    for k, t in enumerate(g["gpu_type"]):
        mapped = gpus(str(t), str(where[k])) if gpu[k] > 0 and t else ""
        if mapped is None:
            rows.skip(f"GPU type {t!r} not in the hardware catalog (map it with options.gpu_types)")
            return
        types.append(mapped)
    names = [str(n) for n in g["task_name"]]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        lines = [str(w) for n, w in zip(names, where, strict=True) if n == dup]
        raise DataError(f"{lines[1]}: job {job}: task_name {dup!r} twice (also {lines[0]})")
    if (reason := window.outside(submit)) is not None:
        rows.skip(reason)
        return
    home = home_of("", opts, str(where[0]))
    for k, name in enumerate(names):
        duration = float(end[k] - start[k])
        if duration == 0:
            duration = ZERO_RUN_S
            rows.adjust(f"tasks with a 0 s run time replayed as {ZERO_RUN_S} s (half the 1 s resolution)")
        rows.add(
            str(where[k]),
            job=job,
            stage=name,
            submit_s=submit,
            tasks=int(inst[k]),
            duration_s=duration,
            cpus=float(cpus[k]),
            gpus=float(gpu[k]),
            gpu_type=types[k],
            home=home,
        )


def _status_reason(status: str) -> str:
    if status == FAILED:
        return "failed (replay_failed is off)"
    return f"did not finish in the trace: status {status}"
