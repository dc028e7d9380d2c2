"""The jobs of a run: a columnar job table and the columnar table of their stages, drawn before the run.

A job arrives at ``arrival_s`` in its home region, should finish by ``deadline_s`` and, if
``interruptible``, may be suspended and moved (its running tasks keep their progress). Its work is a DAG of
*stages*; a stage is a set of ``tasks`` identical tasks, each running ``task_duration_s`` on
``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs of one type, and may start once all its parents have
finished. An independent job (the GAIA traces) is the case of one stage of one task: :class:`Jobs` built
from ``duration_s`` and ``cpus`` alone holds exactly that, and the engine runs it with the same code as
any DAG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from carbonsim.core.jobs import dag

#: ``gpu_type`` of a stage whose tasks take GPUs of any type (or none, when ``gpus_per_task`` is 0).
ANY_GPU = -1


@dataclass(frozen=True)
class Stages:
    """Columnar stage table, job after job, each job's stages in a topological order.

    Attributes:
        job: Job index of each stage (non-decreasing).
        tasks: Parallel tasks of the stage (>= 1).
        task_duration_s: Run time of one task on one allocation, in s (> 0).
        cpus_per_task: CPUs one task holds (>= 0).
        gpus_per_task: GPUs one task holds (>= 0; a task needs CPUs or GPUs or both).
        gpu_type: Index into ``gpu_types`` of the GPUs a task needs, or ``ANY_GPU``.
        parent_ptr: Row pointers of the parents (``len + 1``).
        parent_idx: Parent stage indices (global; always earlier stages of the same job).
        gpu_types: GPU type names (catalog names such as ``A100``).
        names: Stage ids from the trace (for outputs), or None.

    Derived once (not arguments): ``child_ptr``/``child_idx`` (children in CSR form), ``path_s`` (longest
    path from the stage's start to its job's end, each stage taking one task's duration), ``tail_s``
    (``path_s`` minus the stage's own duration: the work that must follow it), ``descendants`` (distinct
    stages depending on it), ``descendant_work_s`` (their tasks x task durations, in s) and ``first``
    (index of the first stage of its job).
    """

    job: np.ndarray
    tasks: np.ndarray
    task_duration_s: np.ndarray
    cpus_per_task: np.ndarray
    gpus_per_task: np.ndarray
    gpu_type: np.ndarray
    parent_ptr: np.ndarray
    parent_idx: np.ndarray
    gpu_types: tuple[str, ...] = ()
    names: tuple[str, ...] | None = None
    child_ptr: np.ndarray = field(init=False, repr=False)
    child_idx: np.ndarray = field(init=False, repr=False)
    path_s: np.ndarray = field(init=False, repr=False)
    tail_s: np.ndarray = field(init=False, repr=False)
    descendants: np.ndarray = field(init=False, repr=False)
    descendant_work_s: np.ndarray = field(init=False, repr=False)
    first: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        cols: dict[str, np.ndarray] = {
            "job": np.asarray(self.job, dtype=np.int64),
            "tasks": np.asarray(self.tasks, dtype=np.int64),
            "task_duration_s": np.asarray(self.task_duration_s, dtype=np.float64),
            "cpus_per_task": np.asarray(self.cpus_per_task, dtype=np.float64),
            "gpus_per_task": np.asarray(self.gpus_per_task, dtype=np.float64),
            "gpu_type": np.asarray(self.gpu_type, dtype=np.int16),
            "parent_ptr": np.asarray(self.parent_ptr, dtype=np.int64),
            "parent_idx": np.asarray(self.parent_idx, dtype=np.int64),
        }
        m = cols["job"].size
        for name, value in cols.items():
            expected = m + 1 if name == "parent_ptr" else m
            if name != "parent_idx" and value.shape != (expected,):
                raise ValueError(f"stages: {name} has shape {value.shape}, expected ({expected},)")
            object.__setattr__(self, name, value)
        if self.names is not None and len(self.names) != m:
            raise ValueError(f"stages: {len(self.names)} names for {m} stages")
        if m:
            if np.any(self.tasks < 1):
                raise ValueError("stages: every stage needs at least one task")
            if not np.all(self.task_duration_s > 0) or not np.all(np.isfinite(self.task_duration_s)):
                raise ValueError("stages: task durations must be finite and > 0 s")
            if np.any(self.cpus_per_task < 0) or np.any(self.gpus_per_task < 0):
                raise ValueError("stages: CPUs and GPUs per task must be >= 0")
            if np.any((self.cpus_per_task <= 0) & (self.gpus_per_task <= 0)):
                raise ValueError("stages: every task needs CPUs or GPUs")
            if np.any((self.gpu_type < ANY_GPU) | (self.gpu_type >= len(self.gpu_types))):
                raise ValueError(f"stages: gpu_type must index {self.gpu_types} or be {ANY_GPU} (any)")
        dag.check_precedence(self.job, self.parent_ptr, self.parent_idx)
        child_ptr, child_idx = dag.children(self.parent_ptr, self.parent_idx)
        path = dag.critical_paths(self.task_duration_s, child_ptr, child_idx)
        n = int(self.job[-1]) + 1 if m else 0
        first = dag.job_ptr(self.job, n)[self.job]
        object.__setattr__(self, "child_ptr", child_ptr)
        object.__setattr__(self, "child_idx", child_idx)
        object.__setattr__(self, "path_s", path)
        object.__setattr__(self, "tail_s", path - self.task_duration_s)
        count, work = dag.descendants(child_ptr, child_idx, first, self.tasks * self.task_duration_s)
        object.__setattr__(self, "descendants", count)
        object.__setattr__(self, "descendant_work_s", work)
        object.__setattr__(self, "first", first)

    def __len__(self) -> int:
        return int(self.job.size)

    @staticmethod
    def single(duration_s: np.ndarray, cpus: np.ndarray) -> Stages:
        """One stage of one CPU task per job (independent jobs)."""
        n = np.asarray(duration_s).size
        return Stages(
            job=np.arange(n, dtype=np.int64),
            tasks=np.ones(n, dtype=np.int64),
            task_duration_s=duration_s,
            cpus_per_task=cpus,
            gpus_per_task=np.zeros(n),
            gpu_type=np.full(n, ANY_GPU, dtype=np.int16),
            parent_ptr=np.zeros(n + 1, dtype=np.int64),
            parent_idx=np.zeros(0, dtype=np.int64),
        )


@dataclass(frozen=True)
class Jobs:
    """Columnar job table, ordered by arrival, with its stages.

    Built from ``duration_s`` and ``cpus`` alone (``stages=None``), every job is one stage of one CPU task;
    :meth:`from_stages` builds jobs with DAGs and GPUs and fills ``duration_s`` and ``cpus`` from them.

    Attributes:
        arrival_s: Arrival times in s (non-decreasing).
        duration_s: The job's critical path: its length in s with room for every task (for a one-task job,
            its running time at full allocation).
        cpus: CPUs of the job's widest stage (tasks x CPUs per task; a one-task job's CPUs).
        deadline_s: Time by which it should be complete, in s.
        interruptible: Whether its running tasks may be suspended and moved.
        home: Index of the region it is submitted to.
        dropped_from_trace: Jobs of the trace window left out by ``max_jobs``.
        stages: The stage table (built as one task per job when None).
        trace_id: Job ids from the trace (for outputs), or None.
        trace_notes: What the importer of a user's trace did not replay (``skipped: <reason>``) or replayed
            with a documented change (``adjusted: <reason>``), with counts; reported in the run summary.
    """

    arrival_s: np.ndarray
    duration_s: np.ndarray
    cpus: np.ndarray
    deadline_s: np.ndarray
    interruptible: np.ndarray
    home: np.ndarray
    dropped_from_trace: int = 0
    stages: Stages = None  # type: ignore[assignment]  # filled in __post_init__
    trace_id: tuple[str, ...] | None = None
    trace_notes: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        n = np.asarray(self.arrival_s).size
        for name in ("arrival_s", "duration_s", "cpus", "deadline_s", "interruptible", "home"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise ValueError(f"jobs: {name} has shape {np.shape(getattr(self, name))}, expected ({n},)")
        if self.stages is None:
            object.__setattr__(self, "stages", Stages.single(np.asarray(self.duration_s), np.asarray(self.cpus)))
        st = self.stages
        if len(st) and (int(st.job[0]) != 0 or int(st.job[-1]) != n - 1 or np.any(np.diff(st.job) > 1)):
            raise ValueError(f"jobs: the stage table must cover jobs 0..{n - 1}, each with at least one stage")
        if n and not len(st):
            raise ValueError(f"jobs: {n} jobs but no stages")
        if self.trace_id is not None and len(self.trace_id) != n:
            raise ValueError(f"jobs: {len(self.trace_id)} trace ids for {n} jobs")

    def __len__(self) -> int:
        return int(np.asarray(self.arrival_s).size)

    @property
    def stage_ptr(self) -> np.ndarray:
        """Row pointers of each job's stages in :attr:`stages` (``len + 1``)."""
        return dag.job_ptr(self.stages.job, len(self))

    @property
    def one_task_each(self) -> bool:
        """Whether every job is one stage of one task (CPUs, GPUs or both)."""
        return len(self.stages) == len(self) and bool(np.all(self.stages.tasks == 1))

    @property
    def independent(self) -> bool:
        """Whether every job is one stage of one CPU task (the GAIA case)."""
        st = self.stages
        return len(st) == len(self) and bool(np.all(st.tasks == 1)) and not bool(np.any(st.gpus_per_task > 0))

    def tasks_per_job(self) -> np.ndarray:
        """Tasks of each job (int64)."""
        return np.bincount(self.stages.job, weights=self.stages.tasks, minlength=len(self)).astype(np.int64)

    def stages_per_job(self) -> np.ndarray:
        """Stages of each job (int64)."""
        return np.bincount(self.stages.job, minlength=len(self)).astype(np.int64)

    @staticmethod
    def from_stages(
        arrival_s: np.ndarray,
        deadline_s: np.ndarray,
        interruptible: np.ndarray,
        home: np.ndarray,
        stages: Stages,
        dropped_from_trace: int = 0,
        trace_id: tuple[str, ...] | None = None,
        trace_notes: tuple[tuple[str, int], ...] = (),
    ) -> Jobs:
        """Jobs with the given stage table; ``duration_s`` and ``cpus`` are derived from it."""
        n = np.asarray(arrival_s).size
        ptr = dag.job_ptr(stages.job, n)
        duration = critical_path_s(stages, n)
        width = stages.tasks * stages.cpus_per_task
        cpus = np.maximum.reduceat(width, ptr[:-1]) if n else np.zeros(0)
        if np.array_equal(cpus, np.round(cpus)):
            cpus = cpus.astype(np.int64)
        return Jobs(
            arrival_s=np.asarray(arrival_s, dtype=np.float64),
            duration_s=duration,
            cpus=cpus,
            deadline_s=np.asarray(deadline_s, dtype=np.float64),
            interruptible=np.asarray(interruptible, dtype=bool),
            home=np.asarray(home, dtype=np.int8),
            dropped_from_trace=dropped_from_trace,
            stages=stages,
            trace_id=trace_id,
            trace_notes=trace_notes,
        )

    @staticmethod
    def empty() -> Jobs:
        """A table with no jobs."""
        z = np.zeros(0)
        return Jobs(z, z, np.zeros(0, np.int64), z, np.zeros(0, bool), np.zeros(0, np.int8))


def critical_path_s(stages: Stages, n_jobs: int) -> np.ndarray:
    """Each job's critical path in s: the longest path of its DAG, each stage taking one task's duration."""
    if not n_jobs:
        return np.zeros(0)
    return np.asarray(np.maximum.reduceat(stages.path_s, dag.job_ptr(stages.job, n_jobs)[:-1]), dtype=np.float64)


def speedups(max_scale: int, parallel_fraction: float) -> tuple[float, ...]:
    """Progress rate on 0..``max_scale`` allocations (Amdahl: ``1 / ((1 - p) + p / k)``; 0 on none)."""
    p = parallel_fraction
    return (0.0, *(1.0 / ((1.0 - p) + p / k) for k in range(1, max_scale + 1)))
