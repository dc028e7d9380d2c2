"""What a batch policy sees and decides: the context, the view of an epoch, the decisions, the Protocol.

A policy decides per *job* or per *stage*. The keys of :meth:`BatchPolicy.schedule`'s mapping are

* a job id ``j``: run the job's runnable stages (those whose parents have all finished), or
* a pair ``(j, k)``: run stage ``k`` of job ``j`` (``k`` counts the job's stages in topological order, as in
  :attr:`JobView.stages`); a stage key overrides the job key for that stage.

and each value is a region index, a ``(region, scale)`` pair, or a :class:`Run`. A job runs in one region at
a time: every decision for a job names the same region. ``scale`` is the number of copies of a task's
allocation it runs on (elastic scaling, Amdahl speed-up; 1 unless ``context.max_scale`` > 1); ``tasks``
caps the tasks running at once (a job key: over all the job's stages, like Decima's per-job parallelism
limit; a stage key: of that stage). Runnable tasks not covered by a decision wait; running tasks of an
interruptible job that a decision no longer covers (or that exceed a cap) are suspended, keeping their
progress.

The view is cheap when nothing is read: :attr:`JobView.active` (one :class:`JobInfo` per active job) and
:attr:`JobView.stages` (columns over every runnable stage, :class:`RunnableStages`) are built on first
access, and only during the call (a view kept past it raises).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from carbonsim.core.forecast import Forecaster, ForecastReader

if TYPE_CHECKING:
    from carbonsim.core.jobs.accrual import Accrual


@dataclass(frozen=True)
class JobContext:
    """Static facts a batch policy receives once before the run.

    Attributes:
        region_names: Region names; a decision is an index into this tuple.
        capacity_cpus: CPUs of each region's batch cluster.
        pue: PUE of each region.
        cpu_busy_w: Power of one busy CPU in W.
        horizon_s: End of the arrival window in s.
        rng: The policy's own random stream.
        speedup: Progress rate of a task on 0, 1, ..., ``max_scale`` copies of its allocation (elastic
            scaling; ``(0.0, 1.0)`` when tasks do not scale).
        migration_gb_per_cpu: State moved per CPU when a job changes region, in GB.
        network_kwh_per_gb: Network energy per GB moved, in kWh.
        migration_gbps: Transfer rate of a migration in Gbit/s.
        gpu_types: GPU types of the run's batch clusters (catalog names); a stage's ``gpu_type`` indexes it.
        capacity_gpus: GPUs of each region's batch cluster, per type.
        gpu_busy_w: Power of one busy GPU of each type in W.
        migration_gb_per_gpu: State moved per GPU when a job changes region, in GB.
    """

    region_names: tuple[str, ...]
    capacity_cpus: tuple[int, ...]
    pue: tuple[float, ...]
    cpu_busy_w: float
    horizon_s: float
    rng: np.random.Generator
    speedup: tuple[float, ...] = (0.0, 1.0)
    migration_gb_per_cpu: float = 0.0
    network_kwh_per_gb: float = 0.0
    migration_gbps: float = 1.0
    gpu_types: tuple[str, ...] = ()
    capacity_gpus: tuple[tuple[int, ...], ...] = ()
    gpu_busy_w: tuple[float, ...] = ()
    migration_gb_per_gpu: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.region_names)
        if not self.capacity_gpus:
            object.__setattr__(self, "capacity_gpus", tuple(tuple(0 for _ in self.gpu_types) for _ in range(n)))
        if len(self.capacity_gpus) != n or any(len(row) != len(self.gpu_types) for row in self.capacity_gpus):
            raise ValueError(f"capacity_gpus: expected {n} rows of {len(self.gpu_types)} GPU counts")
        if len(self.gpu_busy_w) != len(self.gpu_types):
            raise ValueError(f"gpu_busy_w: expected one power per GPU type {self.gpu_types}")

    def state_gb(self, cpus: float, gpus: float = 0.0) -> float:
        """State a job carries when it moves with tasks on ``cpus`` CPUs and ``gpus`` GPUs, in GB."""
        gb = self.migration_gb_per_cpu * cpus
        if gpus:
            gb += self.migration_gb_per_gpu * gpus
        return gb

    def migration_s(self, cpus: float, gpus: float = 0.0) -> float:
        """Transfer time of a job's state, in s (added to the remaining work of the tasks that move)."""
        return self.state_gb(cpus, gpus) * 8.0 / self.migration_gbps

    def migration_kwh(self, cpus: float, gpus: float = 0.0) -> float:
        """Network energy of moving a job's state, in kWh."""
        return self.state_gb(cpus, gpus) * self.network_kwh_per_gb

    @property
    def max_scale(self) -> int:
        """Largest allocation multiple a task may run on."""
        return len(self.speedup) - 1


@dataclass(frozen=True)
class JobInfo:
    """What a policy may know about an active (arrived, unfinished) job.

    For a job of one task the times are its own; for a DAG they are its critical path: ``duration_s`` with
    room for every task, ``remaining_s`` from now (the longest chain of remaining task time through its
    unfinished stages, on one allocation). ``cpus`` and ``gpus`` are what its unfinished runnable tasks
    hold when they all run at scale 1.

    Attributes:
        id: Job index (stable for the run).
        arrival_s: Arrival time in s.
        duration_s: Critical path of the whole job in s.
        remaining_s: Critical path of the work left, in s on one allocation.
        cpus: CPUs of its unfinished runnable tasks.
        deadline_s: Time by which it should be complete, in s.
        interruptible: Whether its running tasks may be suspended and moved.
        home: Region it was submitted to.
        region: Region it runs (or ran) in once started, else -1.
        running: Whether any of its tasks runs now.
        scale: Allocation copies its running tasks run on (the largest; 0 when none runs).
        stages: Stages of the job.
        tasks: Tasks of the job.
        tasks_done: Tasks completed.
        tasks_running: Tasks running now.
        gpus: GPUs of its unfinished runnable tasks.
        runnable: Its runnable stages (``k`` of the ``(j, k)`` keys), in topological order.
        work_s: Its work left: the tasks x task durations of its tasks not yet completed, in s on one
            allocation (running tasks counted whole).
    """

    id: int
    arrival_s: float
    duration_s: float
    remaining_s: float
    cpus: float
    deadline_s: float
    interruptible: bool
    home: int
    region: int
    running: bool
    scale: int = 0
    stages: int = 1
    tasks: int = 1
    tasks_done: int = 0
    tasks_running: int = 0
    gpus: float = 0.0
    runnable: tuple[int, ...] = (0,)
    work_s: float = 0.0


#: Floating-point slack (s) of :func:`must_start`: deadlines computed as arrival + duration round.
URGENCY_SLACK_S = 1e-6


def must_start(job: JobInfo, now_s: float, rate: float = 1.0) -> bool:
    """Whether ``job`` must run from ``now_s`` on (at progress ``rate``) to finish by its deadline."""
    return job.deadline_s - now_s <= job.remaining_s / rate + URGENCY_SLACK_S


@dataclass(frozen=True)
class RunnableStages:
    """Columns over the runnable stages of every active job, jobs in arrival order (one row per stage).

    Attributes:
        job: Job id.
        stage: Stage within its job (``k`` of the ``(j, k)`` keys).
        tasks: Tasks of the stage.
        waiting: Tasks that may start now (never started or suspended).
        running: Tasks running now.
        done: Tasks completed.
        task_duration_s: Run time of one task on one allocation, in s.
        remaining_s: Longest remaining task time of the stage, in s (``task_duration_s`` while a task has
            not started).
        path_s: Remaining critical path through the stage to its job's end, in s (``remaining_s`` plus the
            longest chain of its descendants).
        descendants: Stages depending on it, directly or not.
        descendant_work_s: Their work, tasks x task durations in s.
        job_work_s: Its job's work left (``JobInfo.work_s``), in s.
        cpus_per_task: CPUs per task.
        gpus_per_task: GPUs per task.
        gpu_type: Index into ``context.gpu_types`` (-1: any type or none).
        arrival_s: Its job's arrival in s.
        deadline_s: Its job's deadline in s.
        region: Region its job runs (or ran) in, -1 before it starts.
        home: Its job's home region.
        interruptible: Whether its job is interruptible.
    """

    job: np.ndarray
    stage: np.ndarray
    tasks: np.ndarray
    waiting: np.ndarray
    running: np.ndarray
    done: np.ndarray
    task_duration_s: np.ndarray
    remaining_s: np.ndarray
    path_s: np.ndarray
    descendants: np.ndarray
    descendant_work_s: np.ndarray
    job_work_s: np.ndarray
    cpus_per_task: np.ndarray
    gpus_per_task: np.ndarray
    gpu_type: np.ndarray
    arrival_s: np.ndarray
    deadline_s: np.ndarray
    region: np.ndarray
    home: np.ndarray
    interruptible: np.ndarray

    def __len__(self) -> int:
        return int(self.job.size)

    def padded(self, size: int) -> dict[str, np.ndarray]:
        """Every column padded (or cut) to ``size`` rows, plus ``mask`` (True on real rows).

        The fixed-size form a learned scheduler's observation space declares (Gymnasium's masked arrays):
        padding rows are zeros and masked out.
        """
        n = min(len(self), size)
        out: dict[str, np.ndarray] = {}
        for f in fields(self):
            col = getattr(self, f.name)
            pad = np.zeros(size, dtype=col.dtype)
            pad[:n] = col[:n]
            out[f.name] = pad
        mask = np.zeros(size, dtype=bool)
        mask[:n] = True
        out["mask"] = mask
        return out


class JobView(ForecastReader):
    """The state a batch policy sees at an epoch (valid only during :meth:`BatchPolicy.schedule`).

    Attributes:
        now_s: Current time in s.
        free_cpus: Unused CPUs per region now.
        free_gpus: Unused GPUs per region and type now.
        intensity_gco2_per_kwh: Intensity per region now.
        price_usd_per_kwh: Electricity price per region now.
        carbon_forecast: Intensity forecaster (:meth:`forecast_gco2_per_kwh`).
        price_forecast: Price forecaster (:meth:`forecast_price_usd_per_kwh`).
    """

    def __init__(
        self,
        now_s: float,
        free_cpus: tuple[float, ...],
        free_gpus: tuple[tuple[float, ...], ...],
        intensity_gco2_per_kwh: tuple[float, ...],
        price_usd_per_kwh: tuple[float, ...],
        carbon_forecast: Forecaster,
        price_forecast: Forecaster,
        jobs: Callable[[], tuple[JobInfo, ...]],
        stages: Callable[[], RunnableStages],
        accrual: Callable[[], Accrual] | None = None,
    ) -> None:
        self.now_s = now_s
        self.free_cpus = free_cpus
        self.free_gpus = free_gpus
        self.intensity_gco2_per_kwh = intensity_gco2_per_kwh
        self.price_usd_per_kwh = price_usd_per_kwh
        self.carbon_forecast = carbon_forecast
        self.price_forecast = price_forecast
        self._jobs = jobs
        self._stages = stages
        self._accrual = accrual

    @cached_property
    def accrual(self) -> Accrual:
        """What the run's jobs have accrued so far (read-only telemetry, valid for the whole run).

        The engine makes it when a policy first asks (:class:`~carbonsim.core.jobs.accrual.Accrual`).

        Raises:
            RuntimeError: a view made without one (outside a batch engine).
        """
        if self._accrual is None:
            raise RuntimeError("this view has no accrual (it was not made by a batch engine)")
        return self._accrual()

    @cached_property
    def active(self) -> tuple[JobInfo, ...]:
        """Arrived, unfinished jobs in arrival order."""
        return self._jobs()

    @cached_property
    def stages(self) -> RunnableStages:
        """Runnable stages of the active jobs (jobs in arrival order, stages in topological order)."""
        return self._stages()


@dataclass(frozen=True)
class Run:
    """A decision: run in ``region``, on ``scale`` copies of each task's allocation, at most ``tasks`` at once.

    Attributes:
        region: Region index (a region with a batch cluster).
        scale: Allocation copies per task (1..``context.max_scale``).
        tasks: Cap on the tasks running at once (None: as many as fit).
    """

    region: int
    scale: int = 1
    tasks: int | None = None


#: A decision value: a region, a (region, scale) pair, or a :class:`Run`.
Decision = int | tuple[int, int] | Run
#: A decision key: a job id or a (job id, stage within the job) pair.
DecisionKey = int | tuple[int, int]


@runtime_checkable
class BatchPolicy(Protocol):
    """A scheduler of deferrable batch jobs (when and where each job, or each stage, runs)."""

    def reset(self, context: JobContext) -> None:
        """Receives the scenario's static facts and the policy's random stream."""

    def schedule(self, view: JobView) -> Mapping[Any, Decision]:
        """Returns a decision for every job (or stage) that should run from now on (see the module docstring).

        Work left out waits (running tasks of an interruptible job left out are suspended). Running tasks
        must keep their region; those of non-interruptible jobs must stay covered at their scale.
        """
        ...
