"""The Standard Workload Format (SWF, version 2.2) of the Parallel Workloads Archive.

One job per line, 18 whitespace-separated fields, -1 for unknown; lines starting with ``;`` are header
comments (``; UnixStartTime: 1104537600``, ``; TimeZoneString: Europe/Stockholm``, ...). Fields (1-based, as
the format's definition numbers them): 1 job number, 2 submit time (s, from the log's start; lines are
sorted by it), 3 wait time, 4 run time (s), 5 allocated processors, 6 average CPU time, 7 used memory,
8 requested processors, 9 requested time, 10 requested memory, 11 status (1 completed, 0 failed,
5 cancelled, 2/3/4 partial executions of a checkpointed job), 12 user, 13 group, 14 executable, 15 queue,
16 partition, 17 preceding job number, 18 think time from the preceding job.

Mapping: a job is one stage of one task holding all its processors (a rigid parallel job) for its run time;
processors are field 5, or field 8 where 5 is unknown. A job with a preceding job (field 17) joins that
job's chain: the chain is one carbonsim job whose stages are the SWF jobs, each after its predecessor,
submitted when its first job was (think times are not modelled: a stage starts when its parents end). The
home region comes from the partition number (field 16) through ``options.homes``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import READ_ERRORS, StageRows, Window, describe, expand_paths, home_of, open_text
from carbonsim.data.job_trace import MAX_CPUS_PER_TASK, JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

FIELDS = (
    "job_number",
    "submit_time",
    "wait_time",
    "run_time",
    "allocated_processors",
    "average_cpu_time",
    "used_memory",
    "requested_processors",
    "requested_time",
    "requested_memory",
    "status",
    "user_id",
    "group_id",
    "executable_number",
    "queue_number",
    "partition_number",
    "preceding_job_number",
    "think_time",
)
COMPLETED = (1.0, 3.0)
FAILED = (0.0, 4.0, 5.0)
#: Half the 1 s resolution of the logs: the run time given to jobs logged with a run time of 0.
ZERO_RUN_S = 0.5
_HEADER = re.compile(r"^;\s*([A-Za-z]+)\s*:\s*(.*?)\s*$")


def load_swf(paths: PathLike | Sequence[PathLike], options: JobImportOptions | None = None) -> JobTrace:
    """Jobs of a Standard Workload Format log.

    Args:
        paths: The ``.swf`` file (plain or gzip'd, as the archive serves them).
        options: Time window (seconds after the log's start, field 2's zero), ``homes`` (partition number
            -> region; ``home`` for all), ``replay_failed`` (also status 0, 4 and 5 jobs that ran),
            ``missing_parents``.

    Returns:
        The stage table with ``origin_utc`` from the ``UnixStartTime`` header (None if absent); ``skipped``
        counts jobs left out: failed or cancelled, unknown run time or processors, a partial execution
        (status 2), more processors than one task can hold, a preceding job not replayed, the window.

    Raises:
        DataError: naming the file, line and field: a line without 18 fields, a field that is not a number,
            submit times out of order, a duplicate job number, a preceding job that is not an earlier job of
            the log (with ``missing_parents: error``), a negative run time.
    """
    opts = options or JobImportOptions()
    files = expand_paths(paths, "swf log")
    if len(files) != 1:
        raise DataError(f"swf: one log file expected, got {len(files)}: {[str(f) for f in files]}")
    path = files[0]
    rows = StageRows(describe("swf", files))
    headers: dict[str, str] = {}
    parts: dict[int, list[tuple[list[float], str]]] = {}
    last_submit = -math.inf
    try:
        with open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                text = line.strip()
                if not text:
                    continue
                if text.startswith(";"):
                    if m := _HEADER.match(text):
                        headers.setdefault(m.group(1), m.group(2))
                    continue
                where = f"{path}: line {line_no}"
                values = _fields(text.split(), where)
                number = int(values[0])
                if number in parts and parts[number][-1][0][10] != 2:
                    raise DataError(
                        f"{where}: job number {number} also on {parts[number][-1][1]}, which is not a partial "
                        "execution (status 2)"
                    )
                if values[1] < last_submit:
                    raise DataError(
                        f"{where}: field 2 submit_time {values[1]:g} before the previous line's {last_submit:g}; "
                        "SWF lines are sorted by submit time"
                    )
                last_submit = values[1]
                parts.setdefault(number, []).append((values, where))
    except READ_ERRORS as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    jobs = {number: _merge(p, rows) for number, p in parts.items()}
    origin = _origin(headers, path)
    _build(jobs, rows, opts)
    return rows.build(origin, shift_s=opts.start_s)


def _fields(parts: list[str], where: str) -> list[float]:
    if len(parts) != len(FIELDS):
        raise DataError(f"{where}: {len(parts)} fields; expected {len(FIELDS)} (the SWF fields {', '.join(FIELDS)})")
    out: list[float] = []
    for k, (name, text) in enumerate(zip(FIELDS, parts, strict=True), start=1):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (value < 0 and value != -1):
            raise DataError(f"{where}: field {k} {name} {text!r}; expected a number >= 0 or -1 (unknown)")
        out.append(value)
    if out[0] < 1 or out[0] != int(out[0]):
        raise DataError(f"{where}: field 1 job_number {parts[0]!r}; expected a whole number >= 1")
    if out[1] < 0:
        raise DataError(f"{where}: field 2 submit_time {parts[1]!r}; expected seconds >= 0")
    return out


def _origin(headers: dict[str, str], path: object) -> pd.Timestamp | None:
    if "UnixStartTime" not in headers:
        return None
    try:
        return pd.Timestamp(int(headers["UnixStartTime"]), unit="s", tz="UTC")
    except (ValueError, OverflowError) as exc:
        raise DataError(f"{path}: header UnixStartTime {headers['UnixStartTime']!r}; expected Unix seconds") from exc


def _merge(parts: list[tuple[list[float], str]], rows: StageRows) -> tuple[list[float], str]:
    """One job from its lines.

    A checkpointed job's partial executions (status 2, then 3 or 4) become one run as long as their run
    times together, submitted with the first part.
    """
    values, where = list(parts[0][0]), parts[0][1]
    if len(parts) > 1:
        runs = [p[0][3] for p in parts]
        values[3] = -1.0 if -1.0 in runs else float(sum(runs))
        values[10] = parts[-1][0][10]
        rows.adjust("checkpointed jobs replayed as one run (the sum of their partial executions)")
    return values, where


def _build(jobs: dict[int, tuple[list[float], str]], rows: StageRows, opts: JobImportOptions) -> None:
    window = Window.of(opts)
    root: dict[int, int] = {}
    replayed: dict[int, bool] = {}
    members: dict[int, list[int]] = {}
    for number, (v, where) in jobs.items():
        reason = _unreplayable(v, opts)
        prev = int(v[16])
        if prev != -1:
            if prev not in replayed:
                if opts.missing_parents == "error":
                    raise DataError(f"{where}: field 17 preceding_job_number {prev}: not an earlier job of the log")
                reason = reason or "preceding job not in the log"
            elif not replayed[prev]:
                reason = reason or "preceding job not replayed"
        if reason is None and prev == -1:
            reason = window.outside(v[1])
        replayed[number] = reason is None
        if reason is not None:
            rows.skip(reason)
            continue
        r = root[prev] if prev != -1 else number
        root[number] = r
        members.setdefault(r, []).append(number)
    for r, chain in members.items():
        v0, where0 = jobs[r]
        home = home_of(_pool(v0), opts, where0)
        for number in chain:
            v, where = jobs[number]
            run = v[3]
            if run == 0:
                run = ZERO_RUN_S
                rows.adjust(f"jobs with a 0 s run time replayed as {ZERO_RUN_S} s (half the 1 s resolution)")
            procs = v[4] if v[4] > 0 else v[7]
            prev = int(v[16])
            rows.add(
                where,
                job=str(r),
                stage=str(number),
                submit_s=v0[1],
                tasks=1,
                duration_s=run,
                cpus=procs,
                parents=str(prev) if prev != -1 else "",
                home=home,
            )


def _pool(v: list[float]) -> str:
    return str(int(v[15])) if v[15] != -1 else ""


def _unreplayable(v: list[float], opts: JobImportOptions) -> str | None:
    status = v[10]
    if status == 2:
        return "partial execution of a checkpointed job (status 2; its last part is replayed)"
    if status in FAILED and not opts.replay_failed:
        return f"failed or cancelled, status {status:g} (replay_failed is off)"
    if status not in COMPLETED and status not in FAILED:
        return "status unknown (-1)"
    if v[3] == -1:
        return "run time unknown (-1)"
    procs = v[4] if v[4] > 0 else v[7]
    if not procs > 0:
        return "processors unknown (-1) or 0"
    if procs > MAX_CPUS_PER_TASK:
        return f"more than {MAX_CPUS_PER_TASK:g} processors in one rigid job"
    return None
