"""What the Google 2011 and 2019 importers share: instance life cycles from scheduler events, and stages.

Both traces record, per task (instance), events such as SUBMIT, SCHEDULE (starts running), FINISH (ended
normally), EVICT, FAIL, KILL and LOST (ended otherwise), with timestamps in microseconds; a task that ended
abnormally is often resubmitted and runs again. carbonsim replays each task's *last* run (its last SCHEDULE
to the end event after it) with the CPU request in effect then; the work of earlier, evicted or failed runs
is not replayed. Timestamp 0 means "before the trace", 2^63 - 1 "after it": a run with either end outside the
trace has no known length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Normalised event kinds.
SUBMIT, SCHEDULE, FINISH, ENDED, IGNORED = 0, 1, 2, 3, 4
#: Microseconds from which a timestamp means "after the end of the trace" (the traces write 2^63 - 1).
AFTER_US = 2.0**62
#: Both traces start at timestamp 600 s (their first 600 s are reserved for events before the trace).
OFFSET_S = 600.0
#: Half a microsecond, the run time given to a task that started and ended in the same microsecond.
ZERO_RUN_S = 0.5e-6


@dataclass(frozen=True)
class Runs:
    """The last run of every task that has one.

    Attributes:
        runs: One row per task: ``job`` (int64), ``index``, ``start_us``, ``end_us``, ``finished`` (bool:
            ended with FINISH), ``ncu`` (normalised CPU request, NaN if never given).
        never_ran: Tasks with events but no run (never scheduled).
        outside: Tasks whose last run started before the trace or did not end within it.
    """

    runs: pd.DataFrame
    never_ran: dict[int, int]
    outside: dict[int, int]


def last_runs(job: np.ndarray, index: np.ndarray, time_us: np.ndarray, kind: np.ndarray, ncu: np.ndarray) -> Runs:
    """The last run of each task from its events (arrays of equal length, in the order read).

    Args:
        job: Job (collection) id per event.
        index: Task index within the job.
        time_us: Timestamp, microseconds.
        kind: Normalised kind (``SUBMIT`` for submissions and updates, ``SCHEDULE``, ``FINISH``, ``ENDED``,
            ``IGNORED``).
        ncu: Normalised CPU request carried by the event, NaN if none.

    Returns:
        The runs, and per job the counts of tasks without a usable run.
    """
    order = np.lexsort((np.arange(len(job)), time_us, index, job))
    job, index, time_us, kind, ncu = job[order], index[order], time_us[order], kind[order], ncu[order]
    out_job, out_index, out_start, out_end, out_fin, out_ncu = [], [], [], [], [], []
    never: dict[int, int] = {}
    outside: dict[int, int] = {}
    n = len(job)
    i = 0
    while i < n:
        j = i
        req = math.nan
        start = math.nan
        run: tuple[float, float, bool, float] | None = None
        run_req = math.nan
        while j < n and job[j] == job[i] and index[j] == index[i]:
            k = kind[j]
            if k == SUBMIT:
                if not math.isnan(ncu[j]):
                    req = float(ncu[j])
            elif k == SCHEDULE:
                start = float(time_us[j])
                run_req = req
            elif k in (FINISH, ENDED) and not math.isnan(start):
                run = (start, float(time_us[j]), k == FINISH, run_req)
                start = math.nan
            j += 1
        jid = int(job[i])
        if run is None:
            if not math.isnan(start):
                outside[jid] = outside.get(jid, 0) + 1  # still running at the end of the trace
            else:
                never[jid] = never.get(jid, 0) + 1
        elif run[0] <= 0 or run[1] >= AFTER_US:
            outside[jid] = outside.get(jid, 0) + 1
        else:
            out_job.append(jid)
            out_index.append(int(index[i]))
            out_start.append(run[0])
            out_end.append(run[1])
            out_fin.append(run[2])
            out_ncu.append(run[3])
        i = j
    runs = pd.DataFrame(
        {
            "job": np.asarray(out_job, dtype=np.int64),
            "index": np.asarray(out_index, dtype=np.int64),
            "start_us": np.asarray(out_start, dtype=np.float64),
            "end_us": np.asarray(out_end, dtype=np.float64),
            "finished": np.asarray(out_fin, dtype=bool),
            "ncu": np.asarray(out_ncu, dtype=np.float64),
        }
    )
    return Runs(runs, never, outside)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a Google job: tasks with the same CPU request."""

    suffix: str
    tasks: int
    duration_s: float
    cpus: float
    zero_runs: int


def stages_of(runs: pd.DataFrame, cpus_per_unit: float, stat: str) -> list[StageSpec]:
    """Groups one job's runs by CPU request into stages, in increasing request order.

    Args:
        runs: The job's rows of :attr:`Runs.runs` to replay (all with a CPU request > 0).
        cpus_per_unit: CPU cores per normalised unit.
        stat: ``mean`` or ``max`` of the grouped run times.
    """
    out = []
    groups = list(runs.groupby("ncu", sort=True))
    for k, (_ncu, g) in enumerate(groups):
        dur = (g["end_us"] - g["start_us"]).to_numpy(dtype=np.float64) / 1e6
        zero = int((dur == 0).sum())
        dur = np.where(dur == 0, ZERO_RUN_S, dur)
        value = float(dur.mean() if stat == "mean" else dur.max())
        cpus = float(g["ncu"].iloc[0]) * cpus_per_unit
        out.append(StageSpec("" if len(groups) == 1 else f"/{k}", len(g), value, cpus, zero))
    return out
