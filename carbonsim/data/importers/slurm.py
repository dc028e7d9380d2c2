"""Slurm accounting records: the output of ``sacct --parsable2`` (``-P``; ``-p`` is read too).

A header line names the fields the user chose with ``--format``, in any order, separated by ``|``. Required:
``JobID``, ``Submit``, ``State``, the run time as ``Start`` and ``End`` or ``ElapsedRaw`` or ``Elapsed``,
and the CPUs as ``AllocCPUS``, ``NCPUS``, ``ReqCPUS``, ``AllocTRES`` or ``ReqTRES``. Used when present:
``Partition`` (the pool ``options.homes`` maps to a region) and ``AllocTRES`` / ``ReqTRES`` for GPUs
(``gres/gpu=2`` and ``gres/gpu:a100=2``). Any other sacct field may be present and is ignored; a name that
is not a sacct field is an error (the list is Slurm 25.11's ``--helpformat`` plus older names).

Mapping: every job allocation row (``123``, array task ``123_4``; heterogeneous components ``123+0``,
``123+1`` become parallel stages of job ``123``) is one stage of one task holding all its CPUs and GPUs for
its run time (End - Start, else the elapsed time). Step rows (``123.batch``, ``123.extern``, ``123.0``) run
inside their job's allocation and are counted, not replayed. Times are the local time sacct printed
(``YYYY-MM-DDTHH:MM:SS``, or Unix seconds with ``SLURM_TIME_FORMAT=%s``), read in ``options.timezone``;
the origin is the earliest submission in the file. Only ``COMPLETED`` jobs succeeded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import (
    Chunk,
    GpuTypes,
    StageRows,
    Window,
    describe,
    expand_paths,
    home_of,
    iter_chunks,
    read_header_line,
)
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

SACCT_FIELDS = [
    "Account",
    "AdminComment",
    "AllocCPUS",
    "AllocNodes",
    "AllocTRES",
    "AssocID",
    "AveCPU",
    "AveCPUFreq",
    "AveDiskRead",
    "AveDiskWrite",
    "AvePages",
    "AveRSS",
    "AveVMSize",
    "BlockID",
    "Cluster",
    "Comment",
    "Constraints",
    "ConsumedEnergy",
    "ConsumedEnergyRaw",
    "Container",
    "CPUTime",
    "CPUTimeRAW",
    "DBIndex",
    "DerivedExitCode",
    "Elapsed",
    "ElapsedRaw",
    "Eligible",
    "End",
    "ExitCode",
    "Extra",
    "FailedNode",
    "Flags",
    "GID",
    "Group",
    "JobID",
    "JobIDRaw",
    "JobName",
    "Layout",
    "Licenses",
    "MaxDiskRead",
    "MaxDiskReadNode",
    "MaxDiskReadTask",
    "MaxDiskWrite",
    "MaxDiskWriteNode",
    "MaxDiskWriteTask",
    "MaxPages",
    "MaxPagesNode",
    "MaxPagesTask",
    "MaxRSS",
    "MaxRSSNode",
    "MaxRSSTask",
    "MaxVMSize",
    "MaxVMSizeNode",
    "MaxVMSizeTask",
    "McsLabel",
    "MinCPU",
    "MinCPUNode",
    "MinCPUTask",
    "NCPUS",
    "NNodes",
    "NodeList",
    "NTasks",
    "Partition",
    "Planned",
    "PlannedCPU",
    "PlannedCPURAW",
    "Priority",
    "QOS",
    "QOSRAW",
    "QOSREQ",
    "Reason",
    "ReqCPUFreq",
    "ReqCPUFreqGov",
    "ReqCPUFreqMax",
    "ReqCPUFreqMin",
    "ReqCPUS",
    "ReqMem",
    "ReqNodes",
    "ReqTRES",
    "ReqReservation",
    "Reservation",
    "ReservationId",
    "Restarts",
    "SegmentSize",
    "SLUID",
    "Start",
    "State",
    "StdErr",
    "StdIn",
    "StdOut",
    "Submit",
    "SubmitLine",
    "Suspended",
    "SystemComment",
    "SystemCPU",
    "Timelimit",
    "TimelimitRaw",
    "TotalCPU",
    "TRESUsageInAve",
    "TRESUsageInMax",
    "TRESUsageInMaxNode",
    "TRESUsageInMaxTask",
    "TRESUsageInMin",
    "TRESUsageInMinNode",
    "TRESUsageInMinTask",
    "TRESUsageInTot",
    "TRESUsageOutAve",
    "TRESUsageOutMax",
    "TRESUsageOutMaxNode",
    "TRESUsageOutMaxTask",
    "TRESUsageOutMin",
    "TRESUsageOutMinNode",
    "TRESUsageOutMinTask",
    "TRESUsageOutTot",
    "UID",
    "User",
    "UserCPU",
    "WCKey",
    "WCKeyID",
    "WorkDir",
    "AllocGRES",
    "ReqGRES",
    "Reserved",
    "ResvCPU",
    "ResvCPURAW",
]
"""Field names sacct prints in its header: Slurm 25.11 ``sacct --helpformat`` and names of older releases."""
_KNOWN = {f.lower(): f for f in SACCT_FIELDS}
SUCCEEDED = "COMPLETED"
ENDED = ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED", "DEADLINE", "BOOT_FAIL")
NOT_ENDED = ("PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "REVOKED")
#: Half the 1 s resolution of sacct times: the run time given to jobs that ran for 0 s.
ZERO_RUN_S = 0.5
_MISSING = ("", "Unknown", "None", "NONE")
_ELAPSED = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_JOB = re.compile(r"^(\d+(?:_(?:\d+|\[[\d,\-%]+\]))?)(?:\+(\d+))?$")
_STEP = re.compile(r"^\d+(?:_[\d\[\]\-,%]+)?(?:\+\d+)?\.")


def load_sacct(paths: PathLike | Sequence[PathLike], options: JobImportOptions | None = None) -> JobTrace:
    """Jobs of ``sacct --parsable2`` output (any field order; see the module docstring for the fields).

    Args:
        paths: The file(s) of sacct output, each with its header line.
        options: Time window (seconds after the earliest submission), ``homes`` (partition -> region),
            ``replay_failed`` (also FAILED, TIMEOUT, CANCELLED... jobs that ran), ``gpu_types`` and
            ``unknown_gpu`` for ``gres/gpu:<type>``, ``timezone`` of the printed times.

    Returns:
        The stage table (``origin_utc`` = the earliest submission); ``skipped`` counts jobs left out by
        reason and the step rows.

    Raises:
        DataError: naming file, line and field: an unknown or missing field, a row with too many or too few
            fields, a time, duration or count that cannot be read, an end before the start, an unknown
            state, a duplicate job id.
    """
    opts = options or JobImportOptions()
    files = expand_paths(paths, "sacct output")
    rows = StageRows(describe("slurm_sacct", files))
    gpus = GpuTypes(opts)
    records: list[dict[str, object]] = []
    seen: dict[tuple[str, str], str] = {}
    for path in files:
        for rec in _read(path, opts, rows):
            key = (str(rec["job"]), str(rec["stage"]))
            if key in seen:
                raise DataError(f"{rec['where']}: JobID {rec['jobid']} also on {seen[key]}")
            seen[key] = str(rec["where"])
            records.append(rec)
    submits = [float(r["submit"]) for r in records if not math.isnan(float(r["submit"]))]  # type: ignore[arg-type]
    origin_epoch = min(submits) if submits else 0.0
    window = Window.of(opts)
    by_job: dict[str, list[dict[str, object]]] = {}
    for rec in records:
        by_job.setdefault(str(rec["job"]), []).append(rec)
    for job, recs in by_job.items():
        reason = None
        stages = []
        for rec in recs:
            reason = _unreplayable(rec, opts)
            if reason is not None:
                break
            gpu_type = ""
            if rec["gpu_types"]:
                types: list[str] = rec["gpu_types"]  # type: ignore[assignment]
                if len(types) > 1:
                    reason = "GPUs of several types in one job"
                    break
                mapped = gpus(types[0], str(rec["where"]))
                if mapped is None:
                    reason = f"GPU type {types[0]!r} not in the hardware catalog"
                    break
                gpu_type = mapped
            stages.append((rec, gpu_type))
        if reason is None:
            submit = min(float(r["submit"]) for r in recs) - origin_epoch  # type: ignore[arg-type]
            reason = window.outside(submit)
        if reason is not None:
            rows.skip(reason)
            continue
        for rec, gpu_type in stages:
            run = float(rec["run_s"])  # type: ignore[arg-type]
            if run == 0:
                run = ZERO_RUN_S
                rows.adjust(f"jobs with a 0 s run time replayed as {ZERO_RUN_S} s (half the 1 s resolution)")
            rows.add(
                str(rec["where"]),
                job=job,
                stage=str(rec["stage"]),
                submit_s=submit,
                tasks=1,
                duration_s=run,
                cpus=float(rec["cpus"]),  # type: ignore[arg-type]
                gpus=float(rec["gpus"]),  # type: ignore[arg-type]
                gpu_type=gpu_type,
                home=home_of(str(rec["pool"]), opts, str(rec["where"])),
            )
    origin = pd.Timestamp(origin_epoch, unit="s", tz="UTC") if submits else None
    return rows.build(origin, shift_s=opts.start_s)


def _columns(path: object, header: list[str]) -> list[str]:
    names = header[:-1] if header and header[-1] == "" else header
    out = []
    for name in names:
        if name.lower() not in _KNOWN:
            raise DataError(
                f"{path}: line 1: field {name!r} is not a sacct field; expected names from sacct --helpformat"
            )
        out.append(_KNOWN[name.lower()])
    have = set(out)
    needs = {
        "JobID": ("JobID",),
        "Submit": ("Submit",),
        "State": ("State",),
        "a run time": ("Start", "ElapsedRaw", "Elapsed"),
        "CPUs": ("AllocCPUS", "NCPUS", "ReqCPUS", "AllocTRES", "ReqTRES"),
    }
    for what, alternatives in needs.items():
        if not have & set(alternatives):
            raise DataError(f"{path}: line 1: no field for {what}; expected one of {list(alternatives)}")
    if "Start" in have and "End" not in have and not have & {"ElapsedRaw", "Elapsed"}:
        raise DataError(f"{path}: line 1: Start without End; expected End, ElapsedRaw or Elapsed too")
    if len(have) != len(out):
        raise DataError(f"{path}: line 1: a field appears twice in {names}")
    return out


def _read(p: Path, opts: JobImportOptions, rows: StageRows) -> list[dict[str, object]]:
    raw = read_header_line(p, "|")
    cols = _columns(p, raw)
    names = cols + ([""] if raw and raw[-1] == "" else [])
    out: list[dict[str, object]] = []
    for chunk in iter_chunks(p, names, delimiter="|", header=(raw,), header_required=True):
        frame = chunk.frame
        jobid = chunk.text("JobID")
        is_step = np.array([bool(_STEP.match(j)) for j in jobid])
        if is_step.any():
            rows.skip("job step rows (run inside their job's allocation, which is replayed)", int(is_step.sum()))
        submit = _times(chunk, "Submit", opts)
        start = _times(chunk, "Start", opts) if "Start" in frame else None
        end = _times(chunk, "End", opts) if "End" in frame else None
        elapsed = _elapsed(chunk)
        for i in np.flatnonzero(~is_step):
            where = chunk.where(int(i))
            m = _JOB.match(jobid[i])
            if not m:
                raise DataError(f"{where}: field JobID {jobid[i]!r}; expected 123, 123_4, 123+0 or a step 123.batch")
            state = str(frame["State"].iloc[i]).strip().split(" ")[0].rstrip("+")
            if state not in (SUCCEEDED, *ENDED, *NOT_ENDED):
                raise DataError(f"{where}: field State {frame['State'].iloc[i]!r}; expected a sacct job state")
            run = math.nan
            if start is not None and end is not None and not (math.isnan(start[i]) or math.isnan(end[i])):
                run = end[i] - start[i]
                if run < 0:
                    raise DataError(f"{where}: End before Start (run time {run:g} s); expected End >= Start")
            elif not math.isnan(elapsed[i]):
                run = elapsed[i]
            cpus, gpus, gpu_types = _resources(chunk, int(i), where)
            out.append(
                {
                    "where": where,
                    "jobid": jobid[i],
                    "job": m.group(1),
                    "stage": m.group(2) or "0",
                    "state": state,
                    "submit": submit[i],
                    "started": start is None or not math.isnan(start[i]),
                    "run_s": run,
                    "cpus": cpus,
                    "gpus": gpus,
                    "gpu_types": gpu_types,
                    "pool": str(frame["Partition"].iloc[i]).strip() if "Partition" in frame else "",
                }
            )
    return out


def _times(chunk: Chunk, col: str, opts: JobImportOptions) -> np.ndarray:
    text = chunk.frame[col].astype(str).str.strip()
    missing = text.isin(_MISSING).to_numpy()
    epoch = text.str.fullmatch(r"\d+").to_numpy()
    out = np.full(len(text), np.nan)
    out[epoch] = text[epoch].astype(np.int64).to_numpy(dtype=np.float64)
    local = ~missing & ~epoch
    if local.any():
        parsed = pd.to_datetime(text[local], format="%Y-%m-%dT%H:%M:%S", errors="coerce")
        if (bad := np.flatnonzero(parsed.isna().to_numpy())).size:
            i = int(np.flatnonzero(local)[bad[0]])
            raise DataError(
                f"{chunk.where(i)}: field {col} {text.iloc[i]!r}; expected YYYY-MM-DDTHH:MM:SS or Unix seconds"
            )
        try:
            utc = parsed.dt.tz_localize(opts.timezone, ambiguous="NaT", nonexistent="NaT")
        except Exception as exc:  # pytz / zoneinfo raise several kinds for an unknown zone
            raise DataError(f"options.timezone {opts.timezone!r}: not a time zone ({exc})") from exc
        if (bad := np.flatnonzero(utc.isna().to_numpy())).size:
            i = int(np.flatnonzero(local)[bad[0]])
            raise DataError(
                f"{chunk.where(i)}: field {col} {text.iloc[i]!r} is ambiguous or skipped in {opts.timezone} (a "
                "daylight-saving change); run sacct with TZ=UTC"
            )
        out[local] = (utc.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    return out


def _elapsed(chunk: Chunk) -> np.ndarray:
    n = len(chunk.frame)
    if "ElapsedRaw" in chunk.frame:
        return chunk.number("ElapsedRaw", empty=math.nan, lo=0)
    out = np.full(n, np.nan)
    if "Elapsed" not in chunk.frame:
        return out
    for i, text in enumerate(chunk.text("Elapsed")):
        if text in _MISSING:
            continue
        m = _ELAPSED.match(text)
        if not m:
            raise DataError(f"{chunk.where(i)}: field Elapsed {text!r}; expected [DD-[HH:]]MM:SS")
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        out[i] = ((d * 24 + h) * 60 + mi) * 60 + s
    return out


def _resources(chunk: Chunk, i: int, where: str) -> tuple[float, float, list[str]]:
    frame = chunk.frame
    tres: dict[str, str] = {}
    for col in ("AllocTRES", "ReqTRES"):
        if col in frame and (text := str(frame[col].iloc[i]).strip()):
            for item in text.split(","):
                key, sep, value = item.partition("=")
                if not sep:
                    raise DataError(f"{where}: field {col} item {item!r}; expected name=value")
                tres[key.strip()] = value.strip()
            break
    cpus = math.nan
    for col in ("AllocCPUS", "NCPUS", "ReqCPUS"):
        if col in frame and (text := str(frame[col].iloc[i]).strip()) not in _MISSING:
            cpus = _count(text, col, where)
            if cpus > 0:
                break
    if not cpus > 0 and "cpu" in tres:
        cpus = _count(tres["cpu"], "TRES cpu", where)
    typed = {k.split(":", 1)[1]: _count(v, k, where) for k, v in tres.items() if k.startswith("gres/gpu:")}
    gpus = _count(tres["gres/gpu"], "gres/gpu", where) if "gres/gpu" in tres else float(sum(typed.values()))
    types = sorted(t for t, n in typed.items() if n > 0)
    return (cpus if cpus == cpus else 0.0), gpus, types


def _count(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise DataError(f"{where}: field {what} {text!r}; expected a whole number >= 0")
    return value


def _unreplayable(rec: dict[str, object], opts: JobImportOptions) -> str | None:
    state = str(rec["state"])
    if state in NOT_ENDED:
        return f"did not end: state {state}"
    if state in ENDED and not opts.replay_failed:
        return f"ended without success: state {state} (replay_failed is off)"
    if not rec["started"]:
        return "never started (Start Unknown)"
    run = float(rec["run_s"])  # type: ignore[arg-type]
    if math.isnan(run):
        return "run time unknown"
    if not float(rec["cpus"]) > 0 and not float(rec["gpus"]) > 0:  # type: ignore[arg-type]
        return "no CPUs or GPUs allocated"
    if math.isnan(float(rec["submit"])):  # type: ignore[arg-type]
        return "submission time unknown"
    return None
