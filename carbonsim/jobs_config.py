"""Configuration of generated job streams: TPC-H DAG jobs and a synthetic AI-training (GPU) mix.

Part of the scenario's batch section (``scenario.batch.generator``); frozen dataclasses validated like the
rest of :mod:`carbonsim.config`. The generators themselves are in :mod:`carbonsim.job_streams`; they draw
from the run's ``jobs`` random stream and return a :class:`~carbonsim.data.job_trace.JobTrace`, the form
every job source takes (GAIA traces through ``batch.trace``, users' traces through the importers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from carbonsim._schema import ConfigError

#: Kinds of generated streams ("" for none).
GENERATOR_KINDS = ("", "tpch", "gpu_training")
ARRIVAL_KINDS = ("poisson", "fixed")
#: The TPC-H input sizes and queries of the shipped DAGs (traces/workloads/tpch_*; docs/data/tpch.md).
TPCH_SIZES_GB = (2, 5, 10, 20, 50, 80, 100)
TPCH_QUERIES = tuple(range(1, 23))


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class JobGeneratorConfig:
    """A stream of generated jobs (instead of ``batch.trace``).

    Arrivals: ``initial_jobs`` jobs at t = 0, then one job after another with inter-arrival times that are
    exponential (``poisson``) or constant (``fixed``) with mean ``mean_interarrival_s``, until ``jobs``
    jobs in all (0: until the end of the arrival window). This is the stream of the Decima and PCAPS
    simulators (``num_init_dags``, ``num_stream_dags``, ``stream_interval``).

    Attributes:
        kind: ``tpch``: TPC-H query DAGs with measured task durations; ``gpu_training``: one-stage GPU
            jobs of the synthetic training mix (docs/model.md); empty for none.
        jobs: Jobs in the stream (0: as many as arrive in the run's window).
        initial_jobs: Of these, how many are there at t = 0.
        arrival: ``poisson`` or ``fixed`` inter-arrival times.
        mean_interarrival_s: Mean time between arrivals, in s.
        queries: TPC-H queries to draw from (uniformly; empty: all 22).
        sizes_gb: TPC-H input sizes to draw from (uniformly; empty: all seven).
        executor_cpus: CPUs per TPC-H task: an executor (one task slot) holds this many CPUs. The default,
            1, is Spark's default ``spark.executor.cores`` on YARN.
        duration_executors: Which measured task durations give a TPC-H stage its task duration: 0 (the
            default) averages every measured duration of the stage, as Decima's simulator does for its
            "rough duration"; N > 0 averages the first- and later-wave durations at the measured executor
            count closest to N (ties: the smaller).
        gpus_per_job: GPU counts a training job may hold (all on one task: a gang-scheduled job).
        gpus_per_job_shares: Probability of each count (summing to 1).
        gpu_types: GPU type (a catalog name, or "" for any type) -> share of jobs (summing to 1).
        cpus_per_gpu: Host CPUs a training job holds per GPU.
        duration_trace: GAIA trace whose job durations the training jobs resample (the PAI traces hold
            the run times of Alibaba PAI's 2020 GPU cluster).
        max_duration_h: Longer resampled durations are capped here (0: no cap).
        duration_scale: Factor on every generated task duration (1: as measured), e.g. to stretch seconds-long
            TPC-H queries over the hours in which grid intensity changes.
        target_load: Offered load as a share of the batch capacity (0: off, ``mean_interarrival_s`` holds).
            When > 0, the mean inter-arrival time becomes ``W / (target_load x C)``, where ``W`` is the
            expected work of one job and ``C`` the capacity of every region's batch cluster together: for
            ``tpch``, CPU-seconds (tasks x task duration x ``executor_cpus``, summed over the stages,
            averaged over the queries and sizes drawn) over the batch CPUs; for ``gpu_training``,
            GPU-seconds (the mean GPU count by its shares x the mean capped run time of the trace) over
            the batch GPUs (:func:`carbonsim.job_streams.mean_interarrival_for_load`). The load is the
            share of the capacity the arriving work would keep busy, whatever the policies do with it.
    """

    kind: str = ""
    jobs: int = 0
    initial_jobs: int = 0
    arrival: str = "poisson"
    mean_interarrival_s: float = 60.0
    queries: tuple[int, ...] = ()
    sizes_gb: tuple[int, ...] = ()
    executor_cpus: float = 1.0
    duration_executors: int = 0
    gpus_per_job: tuple[int, ...] = (1, 2, 4, 8)
    gpus_per_job_shares: tuple[float, ...] = (0.7, 0.1, 0.1, 0.1)
    gpu_types: dict[str, float] = field(default_factory=lambda: {"": 1.0})
    cpus_per_gpu: float = 16.0
    duration_trace: str = "pai_100k"
    max_duration_h: float = 0.0
    duration_scale: float = 1.0
    target_load: float = 0.0

    def __post_init__(self) -> None:
        _check(self.kind in GENERATOR_KINDS, "kind", self.kind, f"one of {', '.join(k for k in GENERATOR_KINDS if k)}")
        _check(self.jobs >= 0, "jobs", self.jobs, "a number of jobs >= 0 (0: until the end of the window)")
        _check(
            self.initial_jobs >= 0 and (not self.jobs or self.initial_jobs <= self.jobs),
            "initial_jobs",
            self.initial_jobs,
            "a number of jobs >= 0 and <= jobs",
        )
        _check(self.arrival in ARRIVAL_KINDS, "arrival", self.arrival, f"one of {', '.join(ARRIVAL_KINDS)}")
        _check(
            math.isfinite(self.mean_interarrival_s) and self.mean_interarrival_s > 0,
            "mean_interarrival_s",
            self.mean_interarrival_s,
            "a time > 0 s",
        )
        bad_q = [q for q in self.queries if q not in TPCH_QUERIES]
        _check(not bad_q, "queries", list(self.queries), "TPC-H query numbers 1..22")
        bad_s = [s for s in self.sizes_gb if s not in TPCH_SIZES_GB]
        _check(not bad_s, "sizes_gb", list(self.sizes_gb), f"sizes among {list(TPCH_SIZES_GB)}")
        _check(
            math.isfinite(self.executor_cpus) and self.executor_cpus > 0,
            "executor_cpus",
            self.executor_cpus,
            "CPUs > 0",
        )
        _check(self.duration_executors >= 0, "duration_executors", self.duration_executors, "0 or an executor count")
        _check(
            len(self.gpus_per_job) == len(self.gpus_per_job_shares) and len(self.gpus_per_job) > 0,
            "gpus_per_job_shares",
            list(self.gpus_per_job_shares),
            f"one share per GPU count {list(self.gpus_per_job)}",
        )
        _check(all(g >= 1 for g in self.gpus_per_job), "gpus_per_job", list(self.gpus_per_job), "counts >= 1")
        _shares("gpus_per_job_shares", list(self.gpus_per_job_shares))
        _check(bool(self.gpu_types), "gpu_types", self.gpu_types, "a share per GPU type")
        _shares("gpu_types", list(self.gpu_types.values()))
        _check(
            math.isfinite(self.cpus_per_gpu) and self.cpus_per_gpu >= 0, "cpus_per_gpu", self.cpus_per_gpu, "CPUs >= 0"
        )
        _check(
            math.isfinite(self.duration_scale) and self.duration_scale > 0,
            "duration_scale",
            self.duration_scale,
            "a factor > 0",
        )
        _check(
            math.isfinite(self.target_load) and 0 <= self.target_load <= 10,
            "target_load",
            self.target_load,
            "a share of the batch capacity in (0, 10] (0: off)",
        )
        _check(bool(self.duration_trace), "duration_trace", self.duration_trace, "a GAIA trace name")
        _check(
            math.isfinite(self.max_duration_h) and self.max_duration_h >= 0,
            "max_duration_h",
            self.max_duration_h,
            "hours >= 0 (0: no cap)",
        )


def _shares(name: str, shares: list[float]) -> None:
    _check(all(math.isfinite(s) and s >= 0 for s in shares), name, shares, "shares >= 0")
    _check(abs(sum(shares) - 1.0) <= 1e-6, name, shares, "shares summing to 1")
