"""Generated job streams (``scenario.batch.generator``): TPC-H DAG jobs and a synthetic GPU-training mix.

Both draw from the run's ``jobs`` random stream and return a :class:`~carbonsim.data.job_trace.JobTrace`,
which :func:`carbonsim.jobs_build.build_jobs` then turns into the run's jobs like any other trace (its
deadline rule, interruptible share and home regions, drawn afterwards from the same stream).

* **Arrivals** (:func:`arrival_times`): ``initial_jobs`` at t = 0, then exponential (``poisson``) or constant
  (``fixed``) gaps of mean ``mean_interarrival_s``, ``jobs`` jobs in all or, with ``jobs: 0``, until the end
  of the arrival window: the job stream of the Decima and PCAPS simulators (Mao et al., SIGCOMM 2019;
  Lechowicz et al., SIGCOMM 2025), which stream TPC-H jobs into one cluster.
* **TPC-H** (:func:`tpch_stream`): each job is a query and an input size drawn uniformly from the configured
  ones (Decima draws both uniformly), with the stages, task counts and task durations of
  :func:`carbonsim.data.tpch.load_tpch_stages`; every task holds ``executor_cpus`` CPUs (one executor, one
  task slot).
* **GPU training** (:func:`gpu_training_stream`): each job is one task holding ``g`` GPUs of one type and
  ``g x cpus_per_gpu`` CPUs (a gang-scheduled training job: all its GPUs start and stop together), ``g`` and
  the type drawn by their shares, and a run time resampled from the job durations of a GAIA trace (the PAI
  ones hold the run times of Alibaba PAI's 2020 GPU cluster), capped at ``max_duration_h``.
* **Load** (:func:`mean_interarrival_for_load`): with ``target_load`` > 0 the mean gap is the expected work
  of one job over ``target_load`` times the batch capacity of every region (CPU-seconds over CPUs for
  TPC-H, GPU-seconds over GPUs for the training mix), so that the offered load is that share of the capacity.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from carbonsim._schema import ConfigError
from carbonsim.data.errors import DataError
from carbonsim.data.job_trace import STAGE_COLUMNS, JobTrace, validate_stages
from carbonsim.data.tpch import TPCH_QUERIES, TPCH_SIZES_GB, load_tpch_stages
from carbonsim.data.workloads import load_gaia_jobs
from carbonsim.jobs_config import JobGeneratorConfig

#: Arrivals are drawn in chunks of this many gaps when the stream runs until the end of the window.
_CHUNK = 1024


def expected_work_per_job(cfg: JobGeneratorConfig, templates: pd.DataFrame | None = None) -> float:
    """Expected work of one generated job: CPU-seconds for ``tpch``, GPU-seconds for ``gpu_training``.

    TPC-H: the mean, over the (size, query) pairs drawn (uniformly and independently, so every pair alike),
    of the sum over the job's stages of tasks x task duration x ``executor_cpus``. Training mix: the mean
    GPU count by ``gpus_per_job_shares`` times the mean run time of the trace's jobs (scaled by
    ``duration_scale``, capped at ``max_duration_h``), since both are drawn independently.
    """
    if cfg.kind == "tpch":
        if templates is None:
            templates = load_tpch_stages(duration_executors=cfg.duration_executors)
        queries = set(cfg.queries or TPCH_QUERIES)
        sizes = set(cfg.sizes_gb or TPCH_SIZES_GB)
        t = templates[templates["query"].isin(queries) & templates["size_gb"].isin(sizes)]
        work = (t["tasks"] * t["task_duration_s"]).groupby([t["size_gb"], t["query"]]).sum()
        return float(work.mean()) * cfg.duration_scale * cfg.executor_cpus
    if cfg.kind == "gpu_training":
        run_s = load_gaia_jobs(cfg.duration_trace)["duration_s"].to_numpy(dtype=np.float64) * cfg.duration_scale
        if cfg.max_duration_h:
            run_s = np.minimum(run_s, cfg.max_duration_h * 3600.0)
        gpus = float(np.dot(cfg.gpus_per_job, cfg.gpus_per_job_shares))
        return gpus * float(run_s.mean())
    raise ValueError(f"generator.kind: {cfg.kind!r} is not a generated stream")


def mean_interarrival_for_load(
    cfg: JobGeneratorConfig, capacity: float, templates: pd.DataFrame | None = None
) -> float:
    """Mean gap (s) at which jobs offer ``cfg.target_load`` of ``capacity`` (CPUs for TPC-H, GPUs for training).

    Raises:
        ConfigError: if ``capacity`` is not positive (no batch CPUs, or no batch GPUs for the training mix).
    """
    unit = "CPUs" if cfg.kind == "tpch" else "GPUs"
    if not capacity > 0:
        raise ConfigError(
            f"scenario.batch.generator.target_load: expected regions with batch {unit} to load, got {capacity:g}"
        )
    return expected_work_per_job(cfg, templates) / (cfg.target_load * capacity)


def arrival_times(cfg: JobGeneratorConfig, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of the stream in s (non-decreasing; see the module docstring)."""

    def gaps(n: int) -> np.ndarray:
        if cfg.arrival == "fixed":
            return np.full(n, cfg.mean_interarrival_s)
        return rng.exponential(cfg.mean_interarrival_s, n)

    initial = np.zeros(cfg.initial_jobs)
    if cfg.jobs:
        return np.concatenate([initial, np.cumsum(gaps(cfg.jobs - cfg.initial_jobs))])
    times: list[np.ndarray] = [initial]
    last = 0.0
    while last < horizon_s:
        chunk = last + np.cumsum(gaps(_CHUNK))
        times.append(chunk[chunk < horizon_s])
        last = float(chunk[-1])
    return np.concatenate(times)


def _frame(columns: dict[str, object], n: int) -> pd.DataFrame:
    frame = pd.DataFrame({c: columns[c] for c in STAGE_COLUMNS})
    assert len(frame) == n
    return frame


def tpch_stream(
    cfg: JobGeneratorConfig, horizon_s: float, rng: np.random.Generator, templates: pd.DataFrame | None = None
) -> JobTrace:
    """A stream of TPC-H DAG jobs (see the module docstring).

    ``templates`` replaces the shipped DAGs (:func:`carbonsim.data.tpch.load_tpch_stages` of other files).
    """
    if templates is None:
        templates = load_tpch_stages(duration_executors=cfg.duration_executors)
    queries = np.array(cfg.queries or TPCH_QUERIES)
    sizes = np.array(cfg.sizes_gb or TPCH_SIZES_GB)
    arrival = arrival_times(cfg, horizon_s, rng)
    n = arrival.size
    query = queries[rng.integers(queries.size, size=n)]
    size = sizes[rng.integers(sizes.size, size=n)]
    key = pd.MultiIndex.from_arrays([templates["size_gb"], templates["query"]])
    starts = pd.Series(np.arange(len(templates)), index=key).groupby(level=[0, 1]).first()
    counts = pd.Series(1, index=key).groupby(level=[0, 1]).sum()
    pick = pd.MultiIndex.from_arrays([size, query])
    absent = sorted({(int(s), int(q)) for s, q in pick} - set(starts.index))
    if absent:
        raise DataError(
            f"TPC-H DAGs: no stages for (size GB, query) {absent[:5]}; generator.queries and generator.sizes_gb "
            "must name DAGs of the TPC-H files"
        )
    first = starts.reindex(pick).to_numpy()
    length = counts.reindex(pick).to_numpy()
    job = np.repeat(np.arange(n), length)
    rows = np.repeat(first - np.concatenate([[0], np.cumsum(length)[:-1]]), length) + np.arange(int(length.sum()))
    t = templates.iloc[rows]
    names = np.array([f"{i}:q{q}-{s}g" for i, (q, s) in enumerate(zip(query.tolist(), size.tolist(), strict=True))])
    m = rows.size
    stages = _frame(
        {
            "job": names[job].astype(object),
            "stage": t["stage"].astype(str).to_numpy(dtype=object),
            "submit_s": arrival[job],
            "tasks": t["tasks"].to_numpy(dtype=np.int64),
            "task_duration_s": t["task_duration_s"].to_numpy(dtype=np.float64) * cfg.duration_scale,
            "cpus_per_task": np.full(m, cfg.executor_cpus),
            "gpus_per_task": np.zeros(m),
            "gpu_type": np.full(m, "", dtype=object),
            "parents": t["parents"].to_numpy(dtype=object),
            "home": np.full(m, "", dtype=object),
            "deadline_s": np.full(m, np.nan),
            "interruptible": np.full(m, np.nan),
        },
        m,
    )
    source = "TPC-H job stream (traces/workloads/tpch_*.csv.gz)"
    return JobTrace(validate_stages(stages, source), source)


def gpu_training_stream(cfg: JobGeneratorConfig, horizon_s: float, rng: np.random.Generator) -> JobTrace:
    """A stream of one-task GPU training jobs (see the module docstring)."""
    durations = load_gaia_jobs(cfg.duration_trace)["duration_s"].to_numpy(dtype=np.float64)
    arrival = arrival_times(cfg, horizon_s, rng)
    n = arrival.size
    run_s = durations[rng.integers(durations.size, size=n)] * cfg.duration_scale
    if cfg.max_duration_h:
        run_s = np.minimum(run_s, cfg.max_duration_h * 3600.0)
    gpus = np.array(cfg.gpus_per_job, dtype=np.float64)[_choose(cfg.gpus_per_job_shares, n, rng)]
    types = np.array(list(cfg.gpu_types), dtype=object)[_choose(tuple(cfg.gpu_types.values()), n, rng)]
    stages = _frame(
        {
            "job": np.array([f"{i}:gpu{int(g)}" for i, g in enumerate(gpus.tolist())], dtype=object),
            "stage": np.full(n, "0", dtype=object),
            "submit_s": arrival,
            "tasks": np.ones(n, dtype=np.int64),
            "task_duration_s": run_s,
            "cpus_per_task": gpus * cfg.cpus_per_gpu,
            "gpus_per_task": gpus,
            "gpu_type": types,
            "parents": np.full(n, "", dtype=object),
            "home": np.full(n, "", dtype=object),
            "deadline_s": np.full(n, np.nan),
            "interruptible": np.full(n, np.nan),
        },
        n,
    )
    source = f"GPU training stream (durations of GAIA trace {cfg.duration_trace})"
    return JobTrace(validate_stages(stages, source), source)


def _choose(shares: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn by ``shares`` (one uniform draw each)."""
    cumulative = np.cumsum(shares)
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, rng.random(n), side="right")


def generated_trace(
    cfg: JobGeneratorConfig, horizon_s: float, rng: np.random.Generator, capacity: float = 0.0
) -> JobTrace:
    """The stream ``cfg.kind`` names.

    ``capacity``: the batch CPUs (TPC-H) or GPUs (training mix) of every region together; with
    ``target_load`` > 0 it sets the mean inter-arrival time (:func:`mean_interarrival_for_load`).
    """
    if cfg.target_load > 0:
        cfg = dataclasses.replace(cfg, mean_interarrival_s=mean_interarrival_for_load(cfg, capacity))
    if cfg.kind == "tpch":
        return tpch_stream(cfg, horizon_s, rng)
    if cfg.kind == "gpu_training":
        return gpu_training_stream(cfg, horizon_s, rng)
    raise ValueError(f"generator.kind: {cfg.kind!r} is not a generated stream")
