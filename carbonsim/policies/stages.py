"""Shared pieces of the stage-level batch policies (PCAPS, CAP, the CASPER batch analogue).

* :class:`Room`: the free CPUs and GPUs of every region, counted in thousandths as the engine counts them,
  taken as a policy hands out tasks, so that what it decides in one epoch fits.
* :func:`urgent_rows`: the deadline guard. A stage whose waiting tasks must start now for its job to finish
  by its deadline (with room for every task) runs regardless of carbon. The engine wakes a policy at every
  hour boundary, every completion of a group of tasks and, for a job with nothing running, at the job's
  latest start; so a stage may wait only if one of those wake-ups is sure to come before the stage's own
  latest start, ``deadline - path_s`` (its remaining critical path). For a job with something running the
  earliest sure wake-up is the next hour boundary or the end of the shortest-running stage, whichever is
  first (every running stage's longest group ends within its ``remaining_s``); for a job with nothing
  running it is also the job's latest start. A stage is urgent when its latest start comes before that.
  By induction over the wake-ups, a policy that starts urgent stages whenever there is room never misses a
  deadline that the job's critical path allows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from carbonsim.core.jobs import URGENCY_SLACK_S, Decision, JobContext, JobInfo, JobView, Run, resources
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


def next_wakeup_s(view: JobView) -> float:
    """The latest time by which the engine surely calls the policy again (see the module docstring)."""
    now = view.now_s
    bound = (math.floor(now / SECONDS_PER_HOUR) + 1.0) * SECONDS_PER_HOUR
    st = view.stages
    running = st.running > 0
    if running.any():
        bound = min(bound, now + float(st.remaining_s[running].min()))
    return bound


def urgent_rows(view: JobView, jobs: dict[int, JobInfo]) -> np.ndarray:
    """Rows of ``view.stages`` with waiting tasks that must start now (see the module docstring).

    Args:
        view: The epoch's view.
        jobs: The active jobs by id (``view.active``).

    Returns:
        bool array over the rows.
    """
    st = view.stages
    if not len(st):
        return np.zeros(0, dtype=bool)
    now = view.now_s
    bound = next_wakeup_s(view)
    wake = np.full(len(st), bound)
    idle = {j: job.deadline_s - job.remaining_s for j, job in jobs.items() if not job.running}
    if idle:
        # The engine wakes at the latest start of a job with nothing running (if still ahead).
        latest = np.array([idle.get(j, math.inf) for j in st.job.tolist()])
        ahead = latest > now
        wake[ahead] = np.minimum(bound, latest[ahead])
    latest_start = st.deadline_s - st.path_s
    # Due now (as must_start says of a job), or due before the next sure wake-up.
    due = (latest_start <= now + URGENCY_SLACK_S) | (latest_start < wake - URGENCY_SLACK_S)
    return (st.waiting > 0) & due

def context_gpu_w(context: JobContext, gpu_type: int) -> float:
    """Busy power of one GPU of run type ``gpu_type`` (the mean over types for any type), in W."""
    if not context.gpu_busy_w:
        return 0.0
    if gpu_type >= 0:
        return float(context.gpu_busy_w[gpu_type])
    return float(np.mean(context.gpu_busy_w))


def stage_decisions(
    keys: list[tuple[int, int]], region: np.ndarray, allow: np.ndarray, total: np.ndarray
) -> dict[Any, Decision]:
    """Decisions from the tasks each runnable stage may run at once.

    A job key where every runnable task of the job may run (the same decision a job-level policy gives),
    else a stage key capped at ``allow`` for each stage with ``allow > 0``.

    Args:
        keys: ``(job, stage)`` of each row of ``view.stages``.
        region: Region of each row's job.
        allow: Tasks each row may run at once (running ones included).
        total: Unfinished tasks of each row (running + waiting).
    """
    out: dict[Any, Decision] = {}
    by_job: dict[int, list[int]] = {}
    for i, (j, _) in enumerate(keys):
        by_job.setdefault(j, []).append(i)
    for j, rows in by_job.items():
        if all(allow[i] >= total[i] for i in rows):
            out[j] = int(region[rows[0]])
            continue
        for i in rows:
            if allow[i] > 0:
                out[keys[i]] = Run(int(region[i]), tasks=int(allow[i]))
    return out
