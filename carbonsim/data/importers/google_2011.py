"""Google cluster-usage trace 2011 (``clusterdata-2011-2``): ``task_events`` and ``job_events`` CSVs.

Schema ("Google cluster-usage traces: format + schema", v2.1, and the ``schema.csv`` shipped with the
trace; the CSVs have no header): ``task_events``: 1 timestamp (µs), 2 missing info, 3 job ID, 4 task index,
5 machine ID, 6 event type, 7 user, 8 scheduling class, 9 priority, 10 CPU request, 11 memory request,
12 disk space request, 13 different-machines restriction. ``job_events``: 1 timestamp, 2 missing info,
3 job ID, 4 event type, 5 user, 6 scheduling class, 7 job name, 8 logical job name. Event types: 0 SUBMIT,
1 SCHEDULE, 2 EVICT, 3 FAIL, 4 FINISH, 5 KILL, 6 LOST, 7 UPDATE_PENDING, 8 UPDATE_RUNNING. Timestamps count
from 600 s before the trace's start (19:00 EDT, 1 May 2011 = 23:00 UTC); 0 = before the trace, 2^63 - 1 =
after it. CPU requests are fractions of the largest machine.

Mapping (see :mod:`carbonsim.data.importers._google`): each task's last run; a job's tasks with the same CPU
request form one stage. The job is submitted at its first SUBMIT in ``job_events`` (or of its tasks when no
``job_events`` are given); it is replayed when its last job event is FINISH (any end with
``replay_failed``), or, without ``job_events``, when at least one of its tasks finished. ``options.home``
places every job (the trace is one cell).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import StageRows, Window, describe, expand_paths, home_of, iter_chunks
from carbonsim.data.importers._google import (
    ENDED,
    FINISH,
    OFFSET_S,
    SCHEDULE,
    SUBMIT,
    Runs,
    last_runs,
    stages_of,
)
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

TASK_COLUMNS = (
    "timestamp",
    "missing_info",
    "job_id",
    "task_index",
    "machine_id",
    "event_type",
    "user",
    "scheduling_class",
    "priority",
    "cpu_request",
    "memory_request",
    "disk_request",
    "different_machines",
)
JOB_COLUMNS = (
    "timestamp",
    "missing_info",
    "job_id",
    "event_type",
    "user",
    "scheduling_class",
    "job_name",
    "logical_job_name",
)
#: 2011 event type -> normalised kind.
KINDS = np.array([SUBMIT, SCHEDULE, ENDED, ENDED, FINISH, ENDED, ENDED, SUBMIT, SUBMIT])
#: Calendar time of the trace's start (timestamp 600 s): 19:00 EDT on 1 May 2011 (ClusterData2011_2.md).
ORIGIN_UTC = pd.Timestamp("2011-05-01T23:00:00Z")


def _events(chunk_type: np.ndarray, where: object, n_types: int) -> None:
    bad = np.flatnonzero((chunk_type < 0) | (chunk_type >= n_types))
    if bad.size:
        raise DataError(f"{where}: field event_type {chunk_type[bad[0]]:g}; expected 0 to {n_types - 1}")


def load_google_2011(
    task_paths: PathLike | Sequence[PathLike],
    job_paths: PathLike | Sequence[PathLike] | None = None,
    options: JobImportOptions | None = None,
) -> JobTrace:
    """Jobs of the Google 2011 trace.

    Args:
        task_paths: ``task_events`` part files (``part-00000-of-00500.csv.gz`` ...), in order.
        job_paths: ``job_events`` part files; with them, only the task events of jobs submitted in the
            time window are kept in memory (recommended for the full trace).
        options: Time window (seconds after the trace's start), ``home``, ``replay_failed``,
            ``cpus_per_normalised_unit``, ``duration_stat``.

    Returns:
        The stage table (``origin_utc`` = 2011-05-01 23:00 UTC plus the window start); ``skipped`` counts
        jobs by reason, and tasks (instances) left out of replayed jobs.

    Raises:
        DataError: naming file, line and field: a row without 13 (8) fields, a field that is not a number,
            an unknown event type.
    """
    opts = options or JobImportOptions()
    task_files = expand_paths(task_paths, "google_2011 task_events")
    job_files = expand_paths(job_paths, "google_2011 job_events") if job_paths else []
    rows = StageRows(describe("google_2011", task_files + job_files))
    window = Window.of(opts)
    submit_us: dict[int, float] = {}
    status: dict[int, int] = {}
    for path in job_files:
        for chunk in iter_chunks(path, JOB_COLUMNS):
            t = chunk.number("timestamp", lo=0)
            jid = chunk.number("job_id", lo=0, integer=True).astype(np.int64)
            ev = chunk.number("event_type", integer=True)
            for i in range(len(t)):
                e = int(ev[i])
                if not 0 <= e <= 8:
                    raise DataError(f"{chunk.where(i)}: field event_type {e}; expected 0 to 8")
                j = int(jid[i])
                if e == 0:
                    submit_us.setdefault(j, float(t[i]))
                elif KINDS[e] in (FINISH, ENDED):
                    status[j] = int(KINDS[e])
    keep: set[int] | None = None
    if job_files:
        keep = set()
        for j, t_us in submit_us.items():
            reason = _submit_reason(t_us, window, status.get(j), opts)
            if reason is None:
                keep.add(j)
            else:
                rows.skip(reason)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("job", "index", "time", "kind", "ncu")}
    for path in task_files:
        for chunk in iter_chunks(path, TASK_COLUMNS):
            jid = chunk.number("job_id", lo=0, integer=True).astype(np.int64)
            ev = chunk.number("event_type", integer=True)
            _events(ev, chunk.where(int(np.argmax((ev < 0) | (ev > 8)))), 9)
            t = chunk.number("timestamp", lo=0)
            idx = chunk.number("task_index", lo=0, integer=True).astype(np.int64)
            ncu = chunk.number("cpu_request", empty=np.nan, lo=0)
            sel = np.isin(jid, np.fromiter(keep, np.int64)) if keep is not None else np.ones(len(jid), bool)
            cols["job"].append(jid[sel])
            cols["index"].append(idx[sel])
            cols["time"].append(t[sel])
            cols["kind"].append(KINDS[ev[sel].astype(np.int64)])
            cols["ncu"].append(ncu[sel])
    arrays = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    runs = last_runs(
        arrays["job"].astype(np.int64),
        arrays["index"].astype(np.int64),
        arrays["time"],
        arrays["kind"].astype(np.int64),
        arrays["ncu"],
    )
    where = describe("google_2011", task_files)
    if keep is None:
        first = pd.Series(arrays["time"][arrays["kind"] == SUBMIT]).groupby(
            arrays["job"][arrays["kind"] == SUBMIT].astype(np.int64)
        )
        submit_us = {int(k): float(v) for k, v in first.min().items()}  # type: ignore[call-overload]
    _add_jobs(runs, submit_us, keep, rows, opts, window, where)
    return rows.build(ORIGIN_UTC, shift_s=opts.start_s)


def _submit_reason(t_us: float, window: Window, status: int | None, opts: JobImportOptions) -> str | None:
    if t_us <= 0:
        return "submitted before the trace began"
    if status is None:
        return "did not end within the trace"
    if status != FINISH and not opts.replay_failed:
        return "ended without finishing (replay_failed is off)"
    return window.outside(t_us / 1e6 - OFFSET_S)


def _add_jobs(
    runs: Runs,
    submit_us: dict[int, float],
    keep: set[int] | None,
    rows: StageRows,
    opts: JobImportOptions,
    window: Window,
    where: str,
) -> None:
    frame = runs.runs
    seen = set(frame["job"].tolist())
    for j in set(runs.never_ran) | set(runs.outside):
        if j not in seen and (keep is None or j in keep):
            rows.skip("no task run within the trace")
    silent = (keep or set()) - seen - set(runs.never_ran) - set(runs.outside)
    if silent:
        rows.skip("no task events", len(silent))
    for j, n in runs.outside.items():
        if j in seen:
            rows.skip("tasks of replayed jobs running at the trace's start or end (instances, not replayed)", n)
    for job, g in frame.groupby("job", sort=False):
        j = int(job)  # type: ignore[arg-type]
        if keep is None:
            t = submit_us.get(j, 0.0)
            reason = "submitted before the trace began" if t <= 0 else window.outside(t / 1e6 - OFFSET_S)
            if reason is not None:
                rows.skip(reason)
                continue
        done = g if opts.replay_failed else g[g["finished"]]
        ok = done[done["ncu"] > 0]
        if not ok.empty:
            if len(done) < len(g):
                rows.skip("tasks of replayed jobs that did not finish (instances, not replayed)", len(g) - len(done))
            if len(ok) < len(done):
                rows.skip("tasks with no CPU request (instances, not replayed)", len(done) - len(ok))
        if ok.empty:
            rows.skip("no task finished with a CPU request")
            continue
        submit_s = submit_us[j] / 1e6 - OFFSET_S
        for spec in stages_of(ok, opts.google_cpus_per_unit, opts.duration_stat):
            if spec.zero_runs:
                rows.adjust("task runs of 0 µs replayed as 0.5 µs", spec.zero_runs)
            rows.add(
                f"{where}: job ID {j}",
                job=str(j),
                stage=f"{j}{spec.suffix}",
                submit_s=submit_s,
                tasks=spec.tasks,
                duration_s=spec.duration_s,
                cpus=spec.cpus,
                home=home_of("", opts, where),
            )
