"""Batch jobs in the simulation: DAGs of stages on per-region CPU and GPU clusters under a batch policy.

The engine is a SimPy process in the same environment as the inference requests. It wakes at every *epoch*:
a job arrival, the completion of a group of tasks, every hour boundary while jobs are active (the signals
change hourly), and the last moment each job with nothing running can start and still meet its deadline.
At each epoch it asks the batch policy what should run, and where (:meth:`BatchPolicy.schedule`, keyed by
job or by stage, see :mod:`carbonsim.core.jobs.policy`), then:

* suspends the running tasks of interruptible jobs that the decisions no longer cover (or that exceed a
  ``tasks`` cap), and stops those asked to run in another region or at another scale (a non-interruptible
  job's running tasks may not be suspended, moved or rescaled: policy errors);
* starts tasks of the covered runnable stages, jobs in arrival order and each job's stages in topological
  order, where they fit in the region's free capacity: suspended tasks first (they keep their progress),
  then new ones, as many as fit and as the caps allow (first fit, so a small job may pass a large one);
* runs every task on ``scale`` copies of its allocation (1 unless the policy scales it, up to
  ``batch.max_scale``): its remaining work (seconds on one allocation) falls by ``speedup[scale]`` per
  second. If not even one task fits at the scale asked for, one task starts at the largest scale that fits.

**Stages and tasks.** A stage may start only when all its parents have finished. Its tasks are identical,
so the engine keeps them in aggregate: counts of tasks not started, done and running, and *groups* of tasks
that started together (one group per start, so a stage runs in waves when the cluster is smaller than it);
a group's completion is an epoch. A stage completes with its last task; a job with its last stage.

**Regions and migration.** A job's tasks run in one region at a time (its intermediate data stay
together). A job that starts tasks away from where it is (its home region before its first start, else
the region it last ran in) *migrates*: its state, ``migration_gb_per_cpu`` x CPUs + ``migration_gb_per_gpu``
x GPUs of the tasks it starts there, crosses the network, which costs ``network_kwh_per_gb`` per GB
(charged at the mean intensity and price of the two regions at that moment), and the transfer time at
``migration_gbps`` is added to the remaining work of each of those tasks (the restore holds their
resources and draws their power). Suspended tasks keep their progress (a checkpoint), as a suspended
one-task job always has.

**Failures.** A job fails on arrival, with a named reason (:data:`FAILURE_REASONS`), when some task needs
more CPUs or GPUs than any one region's cluster has, needs GPUs of a type no region has, or its critical
path is longer than the time from its arrival to its deadline. Every job and every task is, at the end,
completed, failed or in flight (never silently lost). Energy: a running task draws ``scale x (cpus x
cpu_busy_w + gpus x gpu_busy_w[type]) x PUE``; emissions and cost integrate that power over the hourly
signals exactly (:func:`carbonsim.core.jobs.records.job_account`).

An independent job is a job of one stage of one task: everything above reduces to running, suspending,
moving and scaling that job.

**Decisions from outside.** A policy whose ``schedule`` raises :class:`~carbonsim.core.policy.AwaitDecision`
(the Gymnasium environment ``carbonsim/Shifting-v0``) pauses the engine at that epoch (:attr:`awaiting`);
:meth:`resume` wakes it at the same simulated time and the engine calls ``schedule`` again on the same
state, which now returns the decision. Nothing of the engine's state changes in between.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from carbonsim.core.forecast import Forecaster
from carbonsim.core.jobs import resources
from carbonsim.core.jobs.accrual import Accrual
from carbonsim.core.jobs.model import ANY_GPU, Jobs
from carbonsim.core.jobs.policy import BatchPolicy, JobContext, JobInfo, JobView, Run, RunnableStages
from carbonsim.core.jobs.records import COMPLETED, FAILED, RUNNING, WAITING, JobRecords
from carbonsim.core.policy import AwaitDecision
from carbonsim.core.signals import SECONDS_PER_HOUR, HourlySignal

#: Relative remaining work below which a task counts as finished (floating-point slack of event times).
DONE_TOLERANCE = 1e-9
#: Relative slack of the arrival check of deadlines against critical paths.
_PATH_SLACK = 1e-9


class _Group:
    """Tasks of one stage that started together and run (or wait, suspended) together."""

    __slots__ = ("count", "gpu", "job", "region", "remaining_s", "scale", "since_s", "stage")

    def __init__(self, job: int, stage: int, count: int, remaining_s: float) -> None:
        self.job = job
        self.stage = stage
        self.count = count
        self.remaining_s = remaining_s  # work left per task, in s on one allocation
        self.scale = 0
        self.since_s = 0.0
        self.region = -1
        self.gpu = ANY_GPU


#: A parsed decision: (region, scale, cap on running tasks or None).
_Dec = tuple[int, int, int | None]


class BatchEngine:
    """Runs the jobs of one simulation under a batch policy (see the module docstring).

    Args:
        env: The simulation's environment.
        jobs: The jobs.
        policy: The batch policy.
        context: Static facts for the policy (capacities, power, migration).
        carbon: Intensity signal (for the view).
        price: Price signal (for the view).
        carbon_forecast: Intensity forecaster.
        price_forecast: Price forecaster.
        on_done: Called once when every job has completed or failed.
    """

    def __init__(
        self,
        env: simpy.Environment,
        jobs: Jobs,
        policy: BatchPolicy,
        context: JobContext,
        carbon: HourlySignal,
        price: HourlySignal,
        carbon_forecast: Forecaster,
        price_forecast: Forecaster,
        on_done: Callable[[], None],
    ) -> None:
        n = len(jobs)
        st = jobs.stages
        m = len(st)
        self.env = env
        self.jobs = jobs
        self.policy = policy
        self.context = context
        self.carbon = carbon
        self.price = price
        self.carbon_forecast = carbon_forecast
        self.price_forecast = price_forecast
        self.on_done = on_done
        # Static columns as Python lists: read one element at a time in the hot path.
        self._arrival: list[float] = np.asarray(jobs.arrival_s, dtype=np.float64).tolist()
        self._deadline: list[float] = np.asarray(jobs.deadline_s, dtype=np.float64).tolist()
        self._path: list[float] = np.asarray(jobs.duration_s, dtype=np.float64).tolist()
        self._interruptible: list[bool] = np.asarray(jobs.interruptible, dtype=bool).tolist()
        self._home: list[int] = np.asarray(jobs.home, dtype=np.int64).tolist()
        ptr = jobs.stage_ptr
        self._first: list[int] = ptr.tolist()
        self._n_tasks: list[int] = jobs.tasks_per_job().tolist()
        self._dur: list[float] = st.task_duration_s.tolist()
        self._tail: list[float] = st.tail_s.tolist()
        self._tasks: list[int] = st.tasks.tolist()
        self._cpus: list[float] = st.cpus_per_task.tolist()
        self._gpus: list[float] = st.gpus_per_task.tolist()
        self._desc: list[int] = st.descendants.tolist()
        self._desc_work: list[float] = st.descendant_work_s.tolist()
        stage_work = st.tasks * st.task_duration_s
        self._job_work: list[float] = np.bincount(st.job, weights=stage_work, minlength=n).tolist()
        self._child_ptr: list[int] = st.child_ptr.tolist()
        self._child_idx: list[int] = st.child_idx.tolist()
        cpu_m = np.rint(st.cpus_per_task * resources.UNIT).astype(np.int64)
        gpu_m = np.rint(st.gpus_per_task * resources.UNIT).astype(np.int64)
        gtype = resources.map_gpu_types(st, context.gpu_types)
        self._cpu_m: list[int] = cpu_m.tolist()
        self._gpu_m: list[int] = gpu_m.tolist()
        self._gtype: list[int] = gtype.tolist()
        self.failure = _failures(jobs, cpu_m, gpu_m, gtype, context)
        # The same static columns as arrays, for the vectorised construction of ``view.stages``.
        self._static: dict[str, np.ndarray] = {
            "first": np.asarray(ptr, dtype=np.int64),
            "tasks": np.asarray(st.tasks, dtype=np.int64),
            "dur": np.asarray(st.task_duration_s, dtype=np.float64),
            "tail": np.asarray(st.tail_s, dtype=np.float64),
            "desc": np.asarray(st.descendants, dtype=np.int64),
            "desc_work": np.asarray(st.descendant_work_s, dtype=np.float64),
            "cpus": np.asarray(st.cpus_per_task, dtype=np.float64),
            "gpus": np.asarray(st.gpus_per_task, dtype=np.float64),
            "gtype": np.asarray(gtype, dtype=np.int64),
            "arrival": np.asarray(jobs.arrival_s, dtype=np.float64),
            "deadline": np.asarray(jobs.deadline_s, dtype=np.float64),
            "home": np.asarray(jobs.home, dtype=np.int16),
            "interruptible": np.asarray(jobs.interruptible, dtype=bool),
        }
        # Dynamic state.
        self.status = np.full(n, WAITING, dtype=np.int8)
        self.region = np.full(n, -1, dtype=np.int16)
        self.start_s = np.full(n, np.nan)
        self.end_s = np.full(n, np.nan)
        self.suspensions = np.zeros(n, dtype=np.int32)
        self.stage_start_s = np.full(m, np.nan)
        self.stage_end_s = np.full(m, np.nan)
        self._parents_left: list[int] = np.diff(st.parent_ptr).tolist()
        self._unstarted = list(self._tasks)
        self._done = [0] * m
        self._running_tasks = [0] * m
        self._stages_left: list[int] = jobs.stages_per_job().tolist()
        self._job_running = [0] * n
        self._tasks_done = [0] * n
        self._runnable: dict[int, list[int]] = {}  # active job -> its runnable stages, in order
        self._run_groups: dict[int, list[_Group]] = {}  # stage -> its running groups, in start order
        self._paused: dict[int, list[_Group]] = {}  # stage -> its suspended groups
        self._running: dict[_Group, None] = {}  # every running group, in start order
        self._running_jobs: dict[int, None] = {}  # jobs with running tasks, in the order they started
        self.free_cpu = [round(c * resources.UNIT) for c in context.capacity_cpus]
        self.free_gpu = [[int(g) * resources.UNIT for g in row] for row in context.capacity_gpus]
        self.active: dict[int, None] = {}  # insertion-ordered: arrival order
        self.segments: list[tuple[int, int, int, float, float, int, int, int]] = []
        self.moves: list[tuple[int, int, int, float, float]] = []  # job, from, to, time s, network kWh
        self.finished = n == 0
        self._epochs = 0
        self.decision_cpu_ns = 0  # CPU time of this process in the policy's schedule calls (all epochs)
        self._view_epoch = -1  # epoch whose view may be read (-1: none)
        self._last = float(env.now)  # time up to which running tasks have progressed
        #: True while the engine waits for a decision from outside (:class:`AwaitDecision`).
        self.awaiting = False
        self._wake: simpy.Event | None = None
        self._accrual: Accrual | None = None

    @property
    def epochs(self) -> int:
        """Policy calls so far."""
        return self._epochs

    @property
    def accrual(self) -> Accrual:
        """The run's account so far (made when first asked for: a run that never asks pays nothing)."""
        if self._accrual is None:
            self._accrual = Accrual(self)
        return self._accrual

    def process(self) -> Generator[simpy.events.Event, Any, None]:
        """The SimPy process: epochs until every job has completed or failed."""
        n = len(self.jobs)
        arrival = self._arrival
        nxt = 0  # next job to arrive
        while True:
            now = float(self.env.now)
            self._advance(self._last, now)
            self._last = now
            while nxt < n and arrival[nxt] <= now:
                if self.failure[nxt]:
                    self.status[nxt] = FAILED
                else:
                    self.active[nxt] = None
                    first = self._first[nxt]
                    self._runnable[nxt] = [s for s in range(first, self._first[nxt + 1]) if self._parents_left[s] == 0]
                nxt += 1
            if self.active:
                while not self._decide(now):
                    # The decision comes from outside: wait (at this instant) until resume() is called.
                    self.awaiting = True
                    self._wake = self.env.event()
                    yield self._wake
            if not self.active and nxt >= n:
                self.finished = True
                self.on_done()
                return
            candidates = []
            if nxt < n:
                candidates.append(arrival[nxt])
            if self.active:
                candidates.append((math.floor(now / SECONDS_PER_HOUR) + 1.0) * SECONDS_PER_HOUR)
            speedup = self.context.speedup
            for g in self._running:
                candidates.append(now + g.remaining_s / speedup[g.scale])
            # The last moments a job with nothing running can start and still meet its deadline (on one
            # allocation and at full scale): policies get a decision point there, not only at the next hour.
            top = speedup[-1]
            for j in self.active:
                if not self._job_running[j]:
                    rest = self._remaining(j)
                    for latest in (self._deadline[j] - rest, self._deadline[j] - rest / top):
                        if latest > now:
                            candidates.append(latest)
            yield self.env.timeout(max(0.0, min(candidates) - now))

    # Progress and completion.

    def _advance(self, last: float, now: float) -> None:
        """Progresses running tasks from ``last`` to ``now`` and completes the groups that are done."""
        speedup = self.context.speedup
        dur = self._dur
        step = now - last if now > last else 0.0
        for g in list(self._running):
            if step:
                g.remaining_s -= step * speedup[g.scale]
            # Done within the relative tolerance, or so little left that its completion time rounds to now
            # (late in a long run, short tasks would otherwise wake the engine at the same instant forever).
            if g.remaining_s <= DONE_TOLERANCE * dur[g.stage] or now + g.remaining_s / speedup[g.scale] <= now:
                g.remaining_s = 0.0
                self._stop(g, now)
                self._complete(g, now)

    def _complete(self, g: _Group, now: float) -> None:
        s, j = g.stage, g.job
        self._done[s] += g.count
        self._tasks_done[j] += g.count
        self._job_work[j] -= g.count * self._dur[s]
        if self._done[s] < self._tasks[s]:
            return
        self.stage_end_s[s] = now
        runnable = self._runnable[j]
        runnable.remove(s)
        self._stages_left[j] -= 1
        for c in self._child_idx[self._child_ptr[s] : self._child_ptr[s + 1]]:
            self._parents_left[c] -= 1
            if self._parents_left[c] == 0:
                bisect.insort(runnable, c)
        if not self._stages_left[j]:
            self.status[j] = COMPLETED
            self.end_s[j] = now
            del self.active[j]
            del self._runnable[j]

    def _stop(self, g: _Group, now: float) -> None:
        """Takes a running group off its resources and closes its segment."""
        del self._running[g]
        s, j, r = g.stage, g.job, g.region
        groups = self._run_groups[s]
        groups.remove(g)
        if not groups:
            del self._run_groups[s]
        if now > g.since_s:
            self.segments.append((j, s, r, g.since_s, now, g.count, g.scale, g.gpu))
        self.free_cpu[r] += self._cpu_m[s] * g.scale * g.count
        if g.gpu >= 0:
            self.free_gpu[r][g.gpu] += self._gpu_m[s] * g.scale * g.count
        self._running_tasks[s] -= g.count
        self._job_running[j] -= g.count
        if not self._job_running[j]:
            del self._running_jobs[j]

    def _pause(self, g: _Group, now: float) -> None:
        """Suspends a running group: it keeps its progress and waits to resume."""
        self._stop(g, now)
        self._paused.setdefault(g.stage, []).append(g)

    def _start(self, g: _Group, r: int, scale: int, gpu: int, now: float) -> None:
        s, j = g.stage, g.job
        g.region, g.scale, g.gpu, g.since_s = r, scale, gpu, now
        self.free_cpu[r] -= self._cpu_m[s] * scale * g.count
        if gpu >= 0:
            self.free_gpu[r][gpu] -= self._gpu_m[s] * scale * g.count
        self._running[g] = None
        self._run_groups.setdefault(s, []).append(g)
        self._running_tasks[s] += g.count
        if not self._job_running[j]:
            self._running_jobs[j] = None
        self._job_running[j] += g.count
        if math.isnan(self.stage_start_s[s]):
            self.stage_start_s[s] = now

    # What policies see.

    def _stage_remaining(self, s: int) -> float:
        """Longest remaining task time of a stage in s (on one allocation)."""
        rest = self._dur[s] if self._unstarted[s] else 0.0
        for groups in (self._run_groups.get(s), self._paused.get(s)):
            if groups:
                for g in groups:
                    if g.remaining_s > rest:
                        rest = g.remaining_s
        return rest

    def _remaining(self, j: int) -> float:
        """Critical path of a job's remaining work in s (on one allocation)."""
        tail = self._tail
        return max(self._stage_remaining(s) + tail[s] for s in self._runnable[j])

    def _check_view(self, epoch: int) -> None:
        if epoch != self._view_epoch:
            raise RuntimeError("a batch view was read after the policy call it was made for")

    def _job_infos(self, epoch: int) -> tuple[JobInfo, ...]:
        self._check_view(epoch)
        out = []
        first = self._first
        for j in self.active:
            runnable = self._runnable[j]
            cpus = 0.0
            gpus = 0.0
            for s in runnable:
                left = self._tasks[s] - self._done[s]
                cpus += left * self._cpus[s]
                gpus += left * self._gpus[s]
            running = self._job_running[j]
            scale = 0
            if running:
                scale = max(g.scale for s in runnable for g in self._run_groups.get(s, ()))
            out.append(
                JobInfo(
                    id=j,
                    arrival_s=self._arrival[j],
                    duration_s=self._path[j],
                    remaining_s=self._remaining(j),
                    cpus=cpus,
                    deadline_s=self._deadline[j],
                    interruptible=self._interruptible[j],
                    home=self._home[j],
                    region=int(self.region[j]),
                    running=running > 0,
                    scale=scale,
                    stages=first[j + 1] - first[j],
                    tasks=self._n_tasks[j],
                    tasks_done=self._tasks_done[j],
                    tasks_running=running,
                    gpus=gpus,
                    runnable=tuple(s - first[j] for s in runnable),
                    work_s=max(self._job_work[j], 0.0),
                )
            )
        return tuple(out)

    def _runnable_stages(self, epoch: int) -> RunnableStages:
        self._check_view(epoch)
        # The dynamic columns are gathered row by row; the static ones are one fancy index each.
        jobs: list[int] = []
        stages: list[int] = []
        rest: list[float] = []
        waiting: list[int] = []
        running: list[int] = []
        done: list[int] = []
        job_work: list[float] = []
        unstarted, running_tasks, done_tasks, paused = self._unstarted, self._running_tasks, self._done, self._paused
        for j in self.active:
            runnable = self._runnable[j]
            jobs.extend([j] * len(runnable))
            job_work.extend([max(self._job_work[j], 0.0)] * len(runnable))
            for s in runnable:
                stages.append(s)
                rest.append(self._stage_remaining(s))
                groups = paused.get(s)
                waiting.append(unstarted[s] + (sum(g.count for g in groups) if groups else 0))
                running.append(running_tasks[s])
                done.append(done_tasks[s])
        st, job = self._static, np.array(jobs, dtype=np.int64)
        stage = np.array(stages, dtype=np.int64)
        remaining = np.array(rest, dtype=np.float64)
        gtype = st["gtype"][stage]
        return RunnableStages(
            job=job,
            stage=stage - st["first"][job],
            tasks=st["tasks"][stage],
            waiting=np.array(waiting, dtype=np.int64),
            running=np.array(running, dtype=np.int64),
            done=np.array(done, dtype=np.int64),
            task_duration_s=st["dur"][stage],
            remaining_s=remaining,
            path_s=remaining + st["tail"][stage],
            descendants=st["desc"][stage],
            descendant_work_s=st["desc_work"][stage],
            job_work_s=np.array(job_work, dtype=np.float64),
            cpus_per_task=st["cpus"][stage],
            gpus_per_task=st["gpus"][stage],
            gpu_type=np.where(gtype >= 0, gtype, -1).astype(np.int16),
            arrival_s=st["arrival"][job],
            deadline_s=st["deadline"][job],
            region=self.region[job].astype(np.int16),
            home=st["home"][job],
            interruptible=st["interruptible"][job],
        )

    def _view(self, now: float) -> JobView:
        epoch = self._view_epoch
        return JobView(
            now_s=now,
            free_cpus=tuple(c / resources.UNIT for c in self.free_cpu),
            free_gpus=tuple(tuple(g / resources.UNIT for g in row) for row in self.free_gpu),
            intensity_gco2_per_kwh=self.carbon.all_at(now),
            price_usd_per_kwh=self.price.all_at(now),
            carbon_forecast=self.carbon_forecast,
            price_forecast=self.price_forecast,
            jobs=lambda: self._job_infos(epoch),
            stages=lambda: self._runnable_stages(epoch),
            accrual=lambda: self.accrual,
        )

    # Decisions.

    def resume(self) -> None:
        """Wakes the engine paused by :class:`AwaitDecision` (the policy now has its decision)."""
        if not self.awaiting or self._wake is None:
            raise RuntimeError("resume() called while the batch engine awaits no decision")
        self.awaiting = False
        wake, self._wake = self._wake, None
        wake.succeed()

    def _decide(self, now: float) -> bool:
        """Asks the policy and applies its decisions; False if it awaits them from outside."""
        name = type(self.policy).__name__
        self._view_epoch = self._epochs
        t0 = time.process_time_ns()
        try:
            raw = self.policy.schedule(self._view(now))
        except AwaitDecision:
            return False
        finally:
            self._view_epoch = -1
            self.decision_cpu_ns += time.process_time_ns() - t0
        self._epochs += 1
        job_dec, stage_dec = self._parse(raw, name, now)
        self._preempt(job_dec, stage_dec, name, now)
        for j in self.active:
            if j in job_dec or j in stage_dec:
                self._place(j, job_dec.get(j), stage_dec.get(j), now)
        return True

    def live_segments(self, now: float) -> list[tuple[int, int, int, float, float, int, int, int]]:
        """The running groups as segments cut at ``now`` (rows like :attr:`segments`; nothing is changed)."""
        return [(g.job, g.stage, g.region, g.since_s, now, g.count, g.scale, g.gpu) for g in self._running]

    def _parse(self, raw: Any, name: str, now: float) -> tuple[dict[int, _Dec], dict[int, dict[int, _Dec]]]:
        """Validates the policy's mapping: per job, its job decision and its stage decisions (global stages)."""
        n_regions = len(self.free_cpu)
        capacity = self.context.capacity_cpus
        gpu_capacity = self.context.capacity_gpus
        max_scale = self.context.max_scale
        job_dec: dict[int, _Dec] = {}
        stage_dec: dict[int, dict[int, _Dec]] = {}
        for key, value in raw.items():
            if isinstance(value, Run):
                r, scale, cap = value.region, value.scale, value.tasks
            elif isinstance(value, tuple):
                (r, scale), cap = value, None
            else:
                r, scale, cap = value, 1, None
            if isinstance(key, tuple):
                j, k = key
                what = f"stage {k!r} of job {j!r}"
            else:
                j, k = key, None
                what = f"job {j!r}"
            if j not in self.active:
                raise ValueError(f"batch policy {name} scheduled job {j!r}, which is not active at {now:.1f} s")
            if not (
                isinstance(r, int | np.integer)
                and 0 <= r < n_regions
                and (capacity[r] > 0 or any(c > 0 for c in gpu_capacity[r]))
            ):
                with_cluster = [i for i in range(n_regions) if capacity[i] > 0 or any(c > 0 for c in gpu_capacity[i])]
                raise ValueError(
                    f"batch policy {name} put {what} in region {r!r}; expected the index of a region with a "
                    f"batch cluster ({with_cluster})"
                )
            if not (isinstance(scale, int | np.integer) and 1 <= scale <= max_scale):
                raise ValueError(f"batch policy {name} gave {what} scale {scale!r}; expected 1..{max_scale}")
            if cap is not None and not (isinstance(cap, int | np.integer) and cap >= 1):
                raise ValueError(f"batch policy {name} capped {what} at {cap!r} tasks; expected an integer >= 1")
            dec = (int(r), int(scale), None if cap is None else int(cap))
            if k is None:
                job_dec[j] = dec
                continue
            first = self._first[j]
            s = first + k if isinstance(k, int | np.integer) and 0 <= k < self._first[j + 1] - first else -1
            if s < 0 or s not in self._runnable[j]:
                raise ValueError(f"batch policy {name} scheduled {what}, which is not runnable at {now:.1f} s")
            stage_dec.setdefault(j, {})[s] = dec
        for j, stages in stage_dec.items():
            regions = {d[0] for d in stages.values()} | ({job_dec[j][0]} if j in job_dec else set())
            if len(regions) > 1:
                raise ValueError(
                    f"batch policy {name} put the stages of job {j} in regions {sorted(regions)}; a job runs in "
                    "one region at a time"
                )
        return job_dec, stage_dec

    def _preempt(self, job_dec: dict[int, _Dec], stage_dec: dict[int, dict[int, _Dec]], name: str, now: float) -> None:
        """Stops the running tasks the decisions no longer cover, move or rescale, or that exceed a cap."""
        for j in list(self._running_jobs):
            jd = job_dec.get(j)
            sd = stage_dec.get(j, {})
            suspended = False
            for s in list(self._runnable[j]):
                groups = self._run_groups.get(s)
                if not groups:
                    continue
                d = sd.get(s, jd)
                for g in list(groups):
                    if d is not None and (d[0], d[1]) == (g.region, g.scale):
                        continue
                    what = "suspended" if d is None else "moved" if d[0] != g.region else "rescaled"
                    if not self._interruptible[j]:
                        raise ValueError(f"batch policy {name} {what} job {j}, which is not interruptible")
                    self._pause(g, now)
                    suspended = suspended or d is None
                if d is not None and d[2] is not None:
                    suspended = self._cap(j, self._run_groups.get(s, []), d[2], name, now) or suspended
            if jd is not None and jd[2] is not None and j in self._running_jobs:
                groups = [g for s in self._runnable[j] for g in self._run_groups.get(s, ())]
                suspended = self._cap(j, groups, jd[2], name, now) or suspended
            if suspended:
                self.suspensions[j] += 1

    def _cap(self, j: int, groups: list[_Group], cap: int, name: str, now: float) -> bool:
        """Suspends the latest-started of ``groups`` until at most ``cap`` tasks run; whether any was."""
        excess = sum(g.count for g in groups) - cap
        if excess <= 0:
            return False
        if not self._interruptible[j]:
            raise ValueError(f"batch policy {name} suspended job {j}, which is not interruptible")
        for g in sorted(groups, key=lambda g: g.since_s, reverse=True):
            if excess <= 0:
                break
            if g.count > excess:  # split: the excess waits, the rest runs on
                self._stop(g, now)
                rest = _Group(j, g.stage, g.count - excess, g.remaining_s)
                g.count = excess
                self._paused.setdefault(g.stage, []).append(g)
                self._start(rest, g.region, g.scale, g.gpu, now)
                excess = 0
            else:
                excess -= g.count
                self._pause(g, now)
        return True

    def _place(self, j: int, jd: _Dec | None, sd: dict[int, _Dec] | None, now: float) -> None:
        """Starts the job's covered runnable tasks where they fit, then charges a migration if it moved."""
        here = int(self.region[j]) if self.region[j] >= 0 else self._home[j]
        job_room = math.inf if jd is None or jd[2] is None else jd[2] - self._job_running[j]
        placed: list[_Group] = []
        r = -1
        for s in list(self._runnable[j]):
            d = sd.get(s, jd) if sd else jd
            if d is None or job_room <= 0:
                continue
            paused = self._paused.get(s)
            if not self._unstarted[s] and not paused:
                continue
            r, scale, cap = d
            want = job_room if cap is None else min(job_room, cap - self._running_tasks[s])
            while want > 0 and (self._unstarted[s] or paused):
                fit, k, gpu = resources.tasks_that_fit(
                    self.free_cpu[r], self.free_gpu[r], self._cpu_m[s], self._gpu_m[s], self._gtype[s], scale
                )
                if fit <= 0:
                    break
                take = int(min(want, fit))
                if paused:
                    g = paused[0]
                    if g.count > take:
                        g.count -= take
                        g = _Group(j, s, take, g.remaining_s)
                    else:
                        paused.pop(0)
                        if not paused:
                            del self._paused[s]
                            paused = None
                        take = g.count
                else:
                    take = min(take, self._unstarted[s])
                    self._unstarted[s] -= take
                    g = _Group(j, s, take, self._dur[s])
                self._start(g, r, k, gpu, now)
                placed.append(g)
                want -= take
                job_room -= take
        if not placed:
            return
        if r != here:
            cpus = sum(g.count * self._cpus[g.stage] for g in placed)
            gpus = sum(g.count * self._gpus[g.stage] for g in placed)
            self.moves.append((j, here, r, now, self.context.migration_kwh(cpus, gpus)))
            extra = self.context.migration_s(cpus, gpus)
            for g in placed:
                g.remaining_s += extra
        self.region[j] = r
        if math.isnan(self.start_s[j]):
            self.start_s[j] = now

    # Outcome.

    def records(self, end_s: float) -> JobRecords:
        """The outcome at simulated time ``end_s`` (running tasks are cut there and stay in flight)."""
        self._advance(self._last, end_s)
        self._last = end_s
        n = len(self.jobs)
        status = self.status.copy()
        running_now = np.zeros(n, dtype=np.int64)
        for j in self._running_jobs:
            status[j] = RUNNING
            running_now[j] = self._job_running[j]
        live = ((g.job, g.stage, g.region, g.since_s, end_s, g.count, g.scale, g.gpu) for g in self._running)
        seg = [*self.segments, *(row for row in live if row[4] > row[3])]
        seg_i = np.array([(a, b, c, f, g, h) for a, b, c, _, _, f, g, h in seg], dtype=np.int64).reshape(-1, 6)
        seg_t = np.array([(d, e) for _, _, _, d, e, _, _, _ in seg], dtype=np.float64).reshape(-1, 2)
        moves = np.array(self.moves, dtype=np.float64).reshape(-1, 5)
        mig_job = moves[:, 0].astype(np.int64)
        remaining = np.array(self._path, dtype=np.float64)
        for j in range(n):
            if status[j] == COMPLETED:
                remaining[j] = 0.0
            elif j in self._runnable:
                remaining[j] = self._remaining(j)
        return JobRecords(
            status=status,
            region=self.region.copy(),
            start_s=self.start_s.copy(),
            end_s=self.end_s.copy(),
            remaining_s=remaining,
            suspensions=self.suspensions.copy(),
            seg_job=seg_i[:, 0],
            seg_region=seg_i[:, 2],
            seg_start_s=seg_t[:, 0],
            seg_end_s=seg_t[:, 1],
            seg_scale=seg_i[:, 4],
            migrations=np.bincount(mig_job, minlength=n).astype(np.int32),
            mig_job=mig_job,
            mig_from=moves[:, 1].astype(np.int64),
            mig_to=moves[:, 2].astype(np.int64),
            mig_time_s=moves[:, 3],
            mig_kwh=moves[:, 4],
            failure=self.failure.copy(),
            tasks_done=np.array(self._tasks_done, dtype=np.int64),
            tasks_running=running_now,
            stage_start_s=self.stage_start_s.copy(),
            stage_end_s=self.stage_end_s.copy(),
            stage_done=np.array(self._done, dtype=np.int64),
            seg_stage=seg_i[:, 1],
            seg_tasks=seg_i[:, 3],
            seg_gpu=seg_i[:, 5],
        )


def _failures(jobs: Jobs, cpu_m: np.ndarray, gpu_m: np.ndarray, gtype: np.ndarray, context: JobContext) -> np.ndarray:
    """Index into ``FAILURE_REASONS`` per job: 0, or why it cannot run at all (checked on arrival)."""
    n = len(jobs)
    out = np.zeros(n, dtype=np.int8)
    if not n:
        return out
    ptr = jobs.stage_ptr[:-1]
    fits = resources.fits_regions(cpu_m, gpu_m, gtype, context.capacity_cpus, context.capacity_gpus)
    job_fits = np.logical_and.reduceat(fits, ptr, axis=0).any(axis=1) if fits.shape[1] else np.zeros(n, bool)
    have_type = np.array(
        [any(row[t] > 0 for row in context.capacity_gpus) for t in range(len(context.gpu_types))], dtype=bool
    )
    any_gpu = bool(have_type.any())
    stage_type_nowhere = (gpu_m > 0) & (
        (gtype == resources.NOWHERE)
        | ((gtype == ANY_GPU) & (not any_gpu))
        | ((gtype >= 0) & ~np.append(have_type, False)[np.maximum(gtype, 0)])
    )
    type_nowhere = np.logical_or.reduceat(stage_type_nowhere, ptr)
    span_s = np.asarray(jobs.deadline_s, dtype=np.float64) - np.asarray(jobs.arrival_s, dtype=np.float64)
    too_long = np.asarray(jobs.duration_s, dtype=np.float64) > span_s + _PATH_SLACK * np.maximum(span_s, 1.0)
    out[too_long] = 3
    out[~job_fits] = 1
    out[type_nowhere] = 2
    return out
