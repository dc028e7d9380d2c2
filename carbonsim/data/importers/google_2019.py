"""Google cluster-usage traces v3 (``clusterdata_2019_<cell>``): ``collection_events`` and ``instance_events``.

Schema: ``clusterdata_trace_format_v3.proto`` and "Google cluster-usage traces v3" (google/cluster-data).
carbonsim reads the tables as newline-delimited JSON, the form BigQuery exports them in (``bq extract
--destination_format NEWLINE_DELIMITED_JSON``) and the form of the ``collection_events-*.json.gz`` /
``instance_events-*.json.gz`` shards of the public ``clusterdata_2019_<cell>`` buckets: one object per line,
nested ``resource_request`` ``{"cpus": ..., "memory": ...}`` and a ``start_after_collection_ids`` list;
integers may be JSON numbers or strings (BigQuery writes INT64 as strings); a null or absent field is
unknown. CSV is not offered: BigQuery cannot export the nested and repeated fields to CSV.

Events: 0 SUBMIT, 1 QUEUE, 2 ENABLE, 3 SCHEDULE, 4 EVICT, 5 FAIL, 6 FINISH, 7 KILL, 8 LOST, 9 UPDATE_PENDING,
10 UPDATE_RUNNING. Times are microseconds from 600 s before the trace's start (00:00 PDT on 1 May 2019 =
07:00 UTC for every cell); 0 = before the trace, 2^63 - 1 = after. CPU requests are normalised compute units
(fractions of the largest machine's GCUs; ``options.cpus_per_normalised_unit`` converts them to cores).

Mapping (see :mod:`carbonsim.data.importers._google`): jobs (``collection_type`` 0) are replayed, alloc sets
(reservations) are not. A job's tasks with the same CPU request form a stage running each task's last run.
``start_after_collection_ids`` (a job starts only after those jobs finished successfully) join the jobs
into one carbonsim job whose stages keep that order, submitted with its earliest collection. A start-after
id that is not in ``collection_events`` names a collection that was not active during the trace (the
tables hold every collection active in it), so it had already finished: that dependency is met and dropped,
and counted. ``options.home`` places every job (each trace is one cell).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import (
    READ_ERRORS,
    StageRows,
    Window,
    check_dag,
    describe,
    expand_paths,
    home_of,
    open_text,
)
from carbonsim.data.importers._google import (
    ENDED,
    FINISH,
    IGNORED,
    OFFSET_S,
    SCHEDULE,
    SUBMIT,
    StageSpec,
    last_runs,
    stages_of,
)
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

COLLECTION_KEYS = frozenset(
    [
        "time",
        "type",
        "collection_id",
        "scheduling_class",
        "missing_type",
        "collection_type",
        "priority",
        "alloc_collection_id",
        "user",
        "collection_name",
        "collection_logical_name",
        "parent_collection_id",
        "start_after_collection_ids",
        "max_per_machine",
        "max_per_switch",
        "vertical_scaling",
        "scheduler",
    ]
)
INSTANCE_KEYS = frozenset(
    [
        "time",
        "type",
        "collection_id",
        "scheduling_class",
        "missing_type",
        "collection_type",
        "priority",
        "alloc_collection_id",
        "instance_index",
        "machine_id",
        "alloc_instance_index",
        "resource_request",
        "constraint",
    ]
)
#: v3 event type -> normalised kind.
KINDS = (SUBMIT, IGNORED, IGNORED, SCHEDULE, ENDED, ENDED, FINISH, ENDED, ENDED, SUBMIT, SUBMIT)
#: Calendar time of the traces' start (timestamp 600 s): 00:00 PDT on 1 May 2019 ("Traces" table of the doc).
ORIGIN_UTC = pd.Timestamp("2019-05-01T07:00:00Z")


def iter_json_lines(path: Path, keys: frozenset[str]) -> Iterator[tuple[str, dict[str, object]]]:
    """Streams the objects of a JSON-lines file with their location; blank lines are skipped.

    Raises:
        DataError: naming the file and line: invalid JSON, a line that is not an object, a key that is not
            a field of the table, or a file that cannot be read.
    """
    try:
        with open_text(path) as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}: line {n}"
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
                if not isinstance(rec, dict):
                    raise DataError(f"{where}: expected a JSON object per line, got {type(rec).__name__}")
                unknown = sorted(set(rec) - keys)
                if unknown:
                    raise DataError(f"{where}: unknown field(s) {unknown}; expected fields of {sorted(keys)}")
                yield where, rec
    except READ_ERRORS as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def _int(rec: dict[str, object], key: str, where: str, *, required: bool = True) -> int | None:
    value = rec.get(key)
    if value is None:
        if required:
            raise DataError(f"{where}: field {key} is missing or null; expected an integer")
        return None
    if isinstance(value, bool):
        raise DataError(f"{where}: field {key} {value!r}; expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise DataError(f"{where}: field {key} {value!r}; expected an integer")


def _kind(rec: dict[str, object], where: str) -> int:
    t = _int(rec, "type", where)
    assert t is not None
    if not 0 <= t < len(KINDS):
        raise DataError(f"{where}: field type {t}; expected an event type 0 to {len(KINDS) - 1}")
    return KINDS[t]


def _time(rec: dict[str, object], where: str) -> float:
    t = _int(rec, "time", where)
    assert t is not None
    if t < 0:
        raise DataError(f"{where}: field time {t}; expected microseconds >= 0")
    return float(t)


@dataclass
class _Collection:
    where: str
    ctype: int | None = None
    submit_us: float = math.inf
    end_us: float = -math.inf
    end_kind: int | None = None
    after: set[int] = field(default_factory=set)


def load_google_2019(
    instance_paths: PathLike | Sequence[PathLike],
    collection_paths: PathLike | Sequence[PathLike],
    options: JobImportOptions | None = None,
) -> JobTrace:
    """Jobs of one cell of the Google 2019 trace.

    Args:
        instance_paths: ``instance_events`` JSON-lines shards (``*`` patterns allowed), plain or gzip'd.
        collection_paths: ``collection_events`` shards of the same cell.
        options: Time window (seconds after the trace's start), ``home``, ``replay_failed``,
            ``cpus_per_normalised_unit``, ``duration_stat``. Only the instance events of jobs submitted in
            the window are kept in memory.

    Returns:
        The stage table (``origin_utc`` = 2019-05-01 07:00 UTC plus the window start); ``skipped`` counts
        collections left out by reason, tasks (instances) left out of replayed jobs, and dropped start-after
        dependencies.

    Raises:
        DataError: naming file, line and field: invalid JSON, an unknown field, a field of the wrong type,
            an unknown event type, a start-after cycle.
    """
    opts = options or JobImportOptions()
    inst_files = expand_paths(instance_paths, "google_2019 instance_events")
    coll_files = expand_paths(collection_paths, "google_2019 collection_events")
    rows = StageRows(describe("google_2019", coll_files + inst_files))
    window = Window.of(opts)
    colls: dict[int, _Collection] = {}
    for path in coll_files:
        for where, rec in iter_json_lines(path, COLLECTION_KEYS):
            cid = _int(rec, "collection_id", where)
            assert cid is not None
            kind, t = _kind(rec, where), _time(rec, where)
            c = colls.setdefault(cid, _Collection(where))
            ctype = _int(rec, "collection_type", where, required=False)
            if ctype is not None:
                c.ctype = ctype
            after = rec.get("start_after_collection_ids")
            if after is not None:
                if not isinstance(after, list):
                    raise DataError(f"{where}: field start_after_collection_ids {after!r}; expected a list of ids")
                for a in after:
                    pid = _int({"start_after_collection_ids": a}, "start_after_collection_ids", where)
                    assert pid is not None
                    c.after.add(pid)
            if kind == SUBMIT and _int(rec, "type", where) == 0:
                c.submit_us = min(c.submit_us, t)
            elif kind in (FINISH, ENDED) and t >= c.end_us:
                c.end_us, c.end_kind = t, kind
    candidates: dict[int, str | None] = {cid: _reason(c, window, opts) for cid, c in colls.items()}
    keep_set = {cid for cid, r in candidates.items() if r is None}
    cols: dict[str, list[float]] = {k: [] for k in ("job", "index", "time", "kind", "ncu")}
    for path in inst_files:
        for where, rec in iter_json_lines(path, INSTANCE_KEYS):
            cid = _int(rec, "collection_id", where)
            kind, t = _kind(rec, where), _time(rec, where)
            idx = _int(rec, "instance_index", where)
            assert cid is not None and idx is not None
            if cid not in keep_set:
                continue
            req = rec.get("resource_request")
            ncu = math.nan
            if req is not None:
                if not isinstance(req, dict):
                    raise DataError(f"{where}: field resource_request {req!r}; expected an object with cpus, memory")
                cpus = req.get("cpus")
                if cpus is not None:
                    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not cpus >= 0:
                        raise DataError(f"{where}: field resource_request.cpus {cpus!r}; expected a number >= 0")
                    ncu = float(cpus)
            for key, value in (("job", cid), ("index", idx), ("time", t), ("kind", kind), ("ncu", ncu)):
                cols[key].append(value)
    runs = last_runs(
        np.asarray(cols["job"], np.int64),
        np.asarray(cols["index"], np.int64),
        np.asarray(cols["time"], np.float64),
        np.asarray(cols["kind"], np.int64),
        np.asarray(cols["ncu"], np.float64),
    )
    for n in runs.outside.values():
        rows.skip("tasks running at the trace's start or end (instances, not replayed)", n)
    specs: dict[int, list[tuple[str, StageSpec]]] = {}
    for job, g in runs.runs.groupby("job", sort=False):
        cid = int(job)  # type: ignore[arg-type]
        done = g if opts.replay_failed else g[g["finished"]]
        ok = done[done["ncu"] > 0]
        if not ok.empty:
            if len(done) < len(g):
                rows.skip("tasks of replayed jobs that did not finish (instances, not replayed)", len(g) - len(done))
            if len(ok) < len(done):
                rows.skip("tasks with no CPU request (instances, not replayed)", len(done) - len(ok))
        if not ok.empty:
            specs[cid] = [(f"{cid}{s.suffix}", s) for s in stages_of(ok, opts.google_cpus_per_unit, opts.duration_stat)]
    for lost in keep_set - set(specs):
        candidates[lost] = "no task finished with a CPU request"
    _join(colls, candidates, specs, rows, opts)
    return rows.build(ORIGIN_UTC, shift_s=opts.start_s)


def _reason(c: _Collection, window: Window, opts: JobImportOptions) -> str | None:
    if c.ctype == 1:
        return "alloc set (a reservation, not work)"
    if c.ctype is None:
        return "collection type unknown"
    if not math.isfinite(c.submit_us):
        return "no SUBMIT event"
    if c.submit_us <= 0:
        return "submitted before the trace began"
    if c.end_kind is None or c.end_us >= 2.0**62:
        return "did not end within the trace"
    if c.end_kind != FINISH and not opts.replay_failed:
        return "ended without finishing (replay_failed is off)"
    return window.outside(c.submit_us / 1e6 - OFFSET_S)


def _join(
    colls: dict[int, _Collection],
    reasons: dict[int, str | None],
    specs: dict[int, list[tuple[str, StageSpec]]],
    rows: StageRows,
    opts: JobImportOptions,
) -> None:
    """Skips jobs whose start-after parents are not replayed, then emits connected jobs as one job each."""
    dropped = 0
    changed = True
    while changed:
        changed = False
        for cid, c in colls.items():
            if reasons[cid] is not None:
                continue
            for p in c.after:
                if p in colls and reasons[p] is not None:
                    reasons[cid] = "depends on a collection that is not replayed"
                    changed = True
                    break
    for reason in reasons.values():
        if reason is not None:
            rows.skip(reason)
    parent: dict[int, int] = {cid: cid for cid, r in reasons.items() if r is None}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for cid in parent:
        for p in colls[cid].after:
            if p in parent:
                a, b = find(cid), find(p)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            elif p not in colls:
                dropped += 1
    if dropped:
        rows.skip("start-after dependencies on collections not in the trace (already met; dropped)", dropped)
    groups: dict[int, list[int]] = {}
    for cid in parent:
        groups.setdefault(find(cid), []).append(cid)
    for members in groups.values():
        members.sort(key=lambda m: (colls[m].submit_us, m))
        head = members[0]
        submit_s = colls[head].submit_us / 1e6 - OFFSET_S
        stage_parents: dict[str, list[str]] = {}
        at: dict[str, str] = {}
        for m in members:
            ps = [sid for p in sorted(colls[m].after) if p in parent for sid, _ in specs[p]]
            for sid, _ in specs[m]:
                stage_parents[sid] = ps
                at[sid] = colls[m].where
        check_dag(str(head), stage_parents, at)
        home = home_of("", opts, colls[head].where)
        for m in members:
            for sid, spec in specs[m]:
                if spec.zero_runs:
                    rows.adjust("task runs of 0 µs replayed as 0.5 µs", spec.zero_runs)
                rows.add(
                    colls[m].where,
                    job=str(head),
                    stage=sid,
                    submit_s=submit_s,
                    tasks=spec.tasks,
                    duration_s=spec.duration_s,
                    cpus=spec.cpus,
                    parents=" ".join(stage_parents[sid]),
                    home=home,
                )
