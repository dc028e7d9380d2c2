"""Shared pieces of the stage-level batch policies (PCAPS, CAP, the CASPER batch analogue).

* :class:`Room`: the free CPUs and GPUs of every region, counted in thousandths as the engine counts them,
  taken as a policy hands out tasks, so that what it decides in one epoch fits.
* :func:`urgent_rows` and :func:`settle_deadlines`: the deadline guard. A stage whose waiting tasks must
  start now for its job to finish by its deadline (with room for every task) runs regardless of carbon.
  The engine wakes a policy at every hour boundary, every completion of a group of tasks and, for a job
  with nothing running, at the job's latest start; so a stage may wait only if one of those wake-ups is
  sure to come before the stage's own latest start, ``deadline - path_s`` (its remaining critical path).
  After a decision, the earliest sure wake-up is the next hour boundary or the end of the shortest stage
  that runs (every running stage's longest group ends within its ``remaining_s``), and, for a job with
  nothing running, also the job's latest start. A stage is urgent when its latest start comes before that.
  The decision changes the wake-ups (starting some of a job's tasks removes the engine's wake-up at the
  job's latest start), so the check is made on the decision itself and repeated until no stage is left
  due (:func:`settle_deadlines`). By induction over the wake-ups, a policy that starts urgent stages
  whenever there is room never misses a deadline that the job's critical path allows
  (``tests/test_stage_policies.py`` checks it on random DAGs). The critical path assumes a slot for every
  task: a stage wider than the free cluster runs in waves and may end late once forced. PCAPS and the CASPER
  analogue rarely meet this, as they keep some work running or plan it against capacity; CAP, whose quota
  can hold a job back entirely, does (eight 1 h tasks on four CPUs, deadline 4 h, dirty hours first: it
  starts them at 3 h and ends at 5 h).
* :func:`job_time_left_s`: what a whole job still needs when its tasks run in waves (Graham's bound), for
  policies that hold whole jobs back until their latest start (CarbonClipper's compulsory phase; Let's Wait
  Awhile, GAIA and CarbonScaler, which also plan with it), with :func:`due` deciding, as the guard does,
  whether that start comes before the next sure wake-up (:func:`must_run`); :class:`WaveTimes` keeps the
  count of each job's tasks that run at once per region.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from carbonsim.core.jobs import (
    URGENCY_SLACK_S,
    Decision,
    JobContext,
    JobInfo,
    JobView,
    Run,
    RunnableStages,
    must_start,
    resources,
)
from carbonsim.core.signals import SECONDS_PER_HOUR


class Room:
    """Free capacity per region (thousandths of a CPU or GPU), reduced as tasks are handed out.

    Args:
        view: The epoch's view (its free CPUs and GPUs).
    """

    def __init__(self, view: JobView) -> None:
        self.cpu = [round(c * resources.UNIT) for c in view.free_cpus]
        self.gpu = [[round(g * resources.UNIT) for g in row] for row in view.free_gpus]

    def fit(self, region: int, cpus: float, gpus: float, gpu_type: int) -> tuple[int, int]:
        """How many tasks of this shape fit in ``region`` now, and on which GPU type (the engine's rule)."""
        n, _, t = resources.tasks_that_fit(
            self.cpu[region], self.gpu[region], _milli(cpus), _milli(gpus), int(gpu_type), 1
        )
        return n, t

    def take(self, region: int, cpus: float, gpus: float, gpu_type: int, tasks: int) -> int:
        """Takes up to ``tasks`` tasks of this shape in ``region``; returns how many fitted."""
        if tasks <= 0:
            return 0
        n, t = self.fit(region, cpus, gpus, gpu_type)
        n = min(n, tasks)
        if n > 0:
            self.cpu[region] -= _milli(cpus) * n
            if gpus > 0 and t >= 0:
                self.gpu[region][t] -= _milli(gpus) * n
        return n


def _milli(x: float) -> int:
    return round(float(x) * resources.UNIT)


def job_region(job: JobInfo) -> int:
    """Where a job runs: the region it runs (or ran) in, else its home."""
    return job.region if job.region >= 0 else job.home


def row_regions(st: RunnableStages) -> np.ndarray:
    """Where each runnable stage's job runs: the region it runs (or ran) in, else its home (int64)."""
    return np.where(st.region >= 0, st.region, st.home).astype(np.int64)


def job_starts(st: RunnableStages) -> np.ndarray:
    """First row of each job's run of rows (a job's runnable stages are contiguous, jobs in arrival order)."""
    if not len(st):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], st.job[1:] != st.job[:-1]]))


def per_job(values: np.ndarray, starts: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """``reduce`` of ``values`` over each job's rows, repeated on each of its rows."""
    if not starts.size:
        return values.copy()
    counts = np.diff(np.append(starts, values.size))
    return np.repeat(reduce.reduceat(values, starts), counts)


def next_wakeup_s(view: JobView, active: np.ndarray | None = None) -> float:
    """The latest time by which the engine surely calls the policy again (see the module docstring).

    Args:
        view: The epoch's view.
        active: Rows of ``view.stages`` that run tasks after the decision (default: those running now).
    """
    now = view.now_s
    bound = (math.floor(now / SECONDS_PER_HOUR) + 1.0) * SECONDS_PER_HOUR
    st = view.stages
    running = st.running > 0 if active is None else active
    if running.any():
        bound = min(bound, now + float(st.remaining_s[running].min()))
    return bound


def urgent_rows(view: JobView, allow: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``view.stages`` with waiting tasks that must start now (see the module docstring).

    Args:
        view: The epoch's view.
        allow: Tasks each row would run at once after the decision (running ones included); default: the
            tasks running now. A decision changes the wake-ups: starting a job's first tasks removes the
            engine's wake-up at its latest start, and each group started ends with a wake-up.

    Returns:
        bool array over the rows: those with tasks not allowed to run that must start now.
    """
    st = view.stages
    if not len(st):
        return np.zeros(0, dtype=bool)
    now = view.now_s
    if allow is None:
        active = st.running > 0
        waiting = st.waiting > 0
    else:
        active = allow > 0
        waiting = allow < st.running + st.waiting
    bound = next_wakeup_s(view, active)
    starts = job_starts(st)
    # A job's remaining critical path is the longest path among its runnable stages (JobInfo.remaining_s);
    # the engine wakes at the latest start of a job with nothing running, if still ahead.
    job_latest = st.deadline_s - per_job(st.path_s, starts, np.maximum)
    idle = ~per_job(active, starts, np.logical_or) & (job_latest > now)
    wake = np.where(idle, np.minimum(bound, job_latest), bound)
    return np.asarray(waiting & due(st.deadline_s - st.path_s, now, wake), dtype=bool)


def due(latest_s: np.ndarray | float, now_s: float, wake_s: np.ndarray | float) -> np.ndarray:
    """Whether work whose latest start is ``latest_s`` must start now.

    It must when its latest start is now (within :data:`URGENCY_SLACK_S`, as :func:`must_start` says of a
    job) or comes before ``wake_s``, the time by which the engine surely calls the policy again.

    Args:
        latest_s: Latest start(s) in s.
        now_s: Current time in s.
        wake_s: Next sure wake-up(s) in s.

    Returns:
        bool array of the broadcast shape (0-d for scalars).
    """
    latest = np.asarray(latest_s, dtype=np.float64)
    return np.asarray((latest <= now_s + URGENCY_SLACK_S) | (latest < np.asarray(wake_s) - URGENCY_SLACK_S), dtype=bool)


def empty_slots(context: JobContext, cpus: float, gpus: float, gpu_type: int) -> tuple[int, ...]:
    """How many tasks of one shape run at once on each region's empty cluster (the engine's rule).

    Args:
        context: The run's static facts (capacities).
        cpus: CPUs per task.
        gpus: GPUs per task.
        gpu_type: Run GPU type index of the task (-1: any type, or none).

    Returns:
        One count per region (0 where a task does not fit).
    """
    out = []
    for r, capacity in enumerate(context.capacity_cpus):
        free_gpu = [g * resources.UNIT for g in context.capacity_gpus[r]]
        n, _, _ = resources.tasks_that_fit(
            round(capacity * resources.UNIT), free_gpu, _milli(cpus), _milli(gpus), int(gpu_type), 1
        )
        out.append(int(n))
    return tuple(out)


def job_time_left_s(job: JobInfo, slots: int) -> float:
    """Time a job's remaining work needs when at most ``slots`` of its tasks run at once, in s.

    The remaining critical path ``L`` (``job.remaining_s``) assumes a slot for every task. When the job has
    more unfinished tasks than ``slots`` (a stage wider than the cluster runs in waves), this is Graham's
    bound on any list schedule of the job alone on ``slots`` identical slots, ``L + (W - L) / slots``,
    with ``W`` the work left (``job.work_s``; running tasks counted whole, so it errs late-safe): R. L.
    Graham, "Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math. 17(2), 1969. The engine
    starts a job's runnable tasks as long as they fit, a list schedule, so a job given its cluster from
    this long before its deadline finishes in time (exactly so for tasks of one shape; ``slots`` should
    be the fewest of any of its stages' tasks that fit). A job of one task left, or with a slot for every
    task, needs ``L``.

    Args:
        job: The job.
        slots: Tasks of the job that run at once (0: none fits; the time is then infinite).
    """
    rest = job.remaining_s
    if job.tasks - job.tasks_done <= max(1, slots):
        return rest
    if slots <= 0:
        return math.inf
    return rest + max(0.0, job.work_s - rest) / slots


class WaveTimes:
    """The time each job still needs in each region when its tasks run in waves (:func:`job_time_left_s`).

    A job's slots in a region are the fewest tasks of any of its runnable stages that fit at once on the
    region's empty cluster (:func:`empty_slots`, counted once per task shape). They are counted when a job
    is first asked about and again when its runnable stages change. A job with one task left needs its
    remaining critical path, and the view's stages are then not read.

    Args:
        context: The run's static facts (capacities).
    """

    def __init__(self, context: JobContext) -> None:
        self.context = context
        self._shape: dict[tuple[float, float, int], tuple[int, ...]] = {}
        self._jobs: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # id: (runnable stages, slots)

    def slots(self, job: JobInfo, view: JobView) -> tuple[int, ...]:
        """Tasks of ``job`` that run at once on each region's empty cluster (indexed by region)."""
        known = self._jobs.get(job.id)
        if known is not None and known[0] == job.runnable:
            return known[1]
        st = view.stages
        starts = job_starts(st)
        k = int(np.searchsorted(st.job[starts], job.id))
        end = int(starts[k + 1]) if k + 1 < starts.size else len(st)
        slots: tuple[int, ...] | None = None
        for i in range(int(starts[k]), end):
            key = (float(st.cpus_per_task[i]), float(st.gpus_per_task[i]), int(st.gpu_type[i]))
            shape = self._shape.get(key)
            if shape is None:
                shape = self._shape[key] = empty_slots(self.context, *key)
            slots = shape if slots is None else tuple(map(min, slots, shape))
        self._jobs[job.id] = (job.runnable, slots or ())
        return slots or ()

    def time_left_s(self, job: JobInfo, view: JobView) -> list[float]:
        """Time the job's remaining work needs in each region (indexed by region), in s."""
        if job.tasks - job.tasks_done <= 1:
            return [job.remaining_s] * len(self.context.capacity_cpus)
        return [job_time_left_s(job, n) for n in self.slots(job, view)]

    def time_left_in_s(self, job: JobInfo, view: JobView, region: int, scale: int = 1) -> float:
        """Time the job's remaining work needs in ``region`` at progress rate 1, in s.

        With ``scale`` > 1 (elastic tasks on ``scale`` copies of their allocation), fewer tasks run at once:
        the slots at scale 1 over ``scale`` (exact for CPU tasks; the scale-1 count when not even one task
        fits at ``scale``). Divide by the speed-up at ``scale`` for the time at that scale.
        """
        if job.tasks - job.tasks_done <= 1:
            return job.remaining_s
        slots = self.slots(job, view)[region]
        if scale > 1 and slots >= scale:
            slots //= scale
        return job_time_left_s(job, slots)

    def keep(self, active: set[int]) -> None:
        """Forgets the jobs not in ``active`` (ids of the jobs still active)."""
        for gone in [j for j in self._jobs if j not in active]:
            del self._jobs[gone]


def must_run(job: JobInfo, now_s: float, need_s: float, top_rate: float, rate: float = 1.0) -> bool:
    """Whether a job that needs ``need_s`` more (at progress ``rate``) must run from now on to be in time.

    :func:`must_start` when the job needs no more than its remaining critical path at that rate (the engine
    then wakes the policy at its latest start, should it hold the job back). A job that needs more (its
    tasks run in waves: :func:`job_time_left_s`) must also run when its latest start, ``deadline -
    need_s``, comes before the next sure call (:func:`due`): the next hour boundary, or an earlier latest
    start of the job by its critical path, where the engine wakes a job with nothing running (at rate 1
    and at ``top_rate``).

    Args:
        job: The job.
        now_s: Current time in s.
        need_s: Time its remaining work needs at ``rate``, in s.
        top_rate: Progress rate at the largest scale (``context.speedup[-1]``).
        rate: Progress rate it would run at.
    """
    if must_start(job, now_s, rate):
        return True
    if need_s <= job.remaining_s / rate:
        return False
    wake = (math.floor(now_s / SECONDS_PER_HOUR) + 1.0) * SECONDS_PER_HOUR
    for latest in (job.deadline_s - job.remaining_s, job.deadline_s - job.remaining_s / top_rate):
        if now_s < latest < wake:
            wake = latest
    return bool(due(job.deadline_s - need_s, now_s, wake))


def settle_deadlines(
    view: JobView,
    allow: np.ndarray,
    total: np.ndarray,
    on_force: Callable[[int, int], object] | None = None,
) -> None:
    """Raises ``allow`` to every task on the rows a decision leaves due (:func:`urgent_rows`), until none is.

    Forcing a row can make others due (its job no longer gets a wake-up at its latest start), so this
    repeats until stable (at most once per row).

    Args:
        view: The epoch's view.
        allow: Tasks each row may run at once (updated in place).
        total: Unfinished tasks of each row.
        on_force: Called with (row, tasks added) for each forced row (capacity or quota accounting).
    """
    while True:
        due = np.flatnonzero(urgent_rows(view, allow) & (allow < total))
        if not due.size:
            return
        if on_force is None:
            allow[due] = total[due]
            continue
        for i in due.tolist():
            on_force(i, int(total[i] - allow[i]))
            allow[i] = total[i]


def context_gpu_w(context: JobContext, gpu_type: int) -> float:
    """Busy power of one GPU of run type ``gpu_type`` (the mean over types for any type), in W."""
    if not context.gpu_busy_w:
        return 0.0
    if gpu_type >= 0:
        return float(context.gpu_busy_w[gpu_type])
    return float(np.mean(context.gpu_busy_w))


def stage_decisions(
    st: RunnableStages, region: np.ndarray, allow: np.ndarray, total: np.ndarray
) -> dict[Any, Decision]:
    """Decisions from the tasks each runnable stage may run at once.

    A job key where every runnable task of the job may run (the same decision a job-level policy gives),
    else a stage key capped at ``allow`` for each stage with ``allow > 0``.

    Args:
        st: The view's runnable stages.
        region: Region of each row's job.
        allow: Tasks each row may run at once (running ones included).
        total: Unfinished tasks of each row (running + waiting).
    """
    out: dict[Any, Decision] = {}
    if not len(st):
        return out
    starts = job_starts(st)
    whole = per_job(allow >= total, starts, np.logical_and)
    first = np.zeros(len(st), dtype=bool)
    first[starts] = True
    rows = np.flatnonzero(whole & first)
    out.update(zip(_ints(st.job[rows]), _ints(region[rows]), strict=True))
    rows = np.flatnonzero(~whole & (allow > 0))
    for j, k, r, n in zip(
        _ints(st.job[rows]), _ints(st.stage[rows]), _ints(region[rows]), _ints(allow[rows]), strict=True
    ):
        out[(j, k)] = Run(r, tasks=n)
    return out


def _ints(values: np.ndarray) -> list[int]:
    """``[int(v) for v in values]``, in one conversion."""
    out: list[int] = values.astype(np.int64, copy=False).tolist()
    return out
