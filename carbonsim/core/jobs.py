"""Deferrable batch jobs: the job table, drawn before the run like the requests.

A job arrives at ``arrival_s`` in its home region, needs ``duration_s`` seconds of running on ``cpus`` CPUs,
should finish by ``deadline_s`` and, if ``interruptible``, may be suspended and resumed (losing nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonsim.config import BatchConfig


@dataclass(frozen=True)
class Jobs:
    """Columnar job table, ordered by arrival.

    Attributes:
        arrival_s: Arrival times in s (non-decreasing).
        duration_s: Running time needed at full allocation, in s (> 0).
        cpus: CPUs a job runs on.
        deadline_s: Time by which it should be complete, in s.
        interruptible: Whether the job may be suspended and resumed.
        home: Index of the region it is submitted to.
        dropped_from_trace: Jobs of the trace window left out by ``max_jobs``.
    """

    arrival_s: np.ndarray
    duration_s: np.ndarray
    cpus: np.ndarray
    deadline_s: np.ndarray
    interruptible: np.ndarray
    home: np.ndarray
    dropped_from_trace: int = 0

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @staticmethod
    def empty() -> Jobs:
        """A table with no jobs."""
        z = np.zeros(0)
        return Jobs(z, z, np.zeros(0, np.int64), z, np.zeros(0, bool), np.zeros(0, np.int8))


def speedups(cfg: BatchConfig) -> tuple[float, ...]:
    """Progress rate on 0..``max_scale`` allocations (Amdahl: ``1 / ((1 - p) + p / k)``; 0 on none)."""
    p = cfg.parallel_fraction
    return (0.0, *(1.0 / ((1.0 - p) + p / k) for k in range(1, cfg.max_scale + 1)))


def deadlines(cfg: BatchConfig, arrival_s: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
    """Deadline of each job by the scenario's rule (``slack`` or ``window``), in s."""
    if cfg.deadline == "slack":
        return np.asarray(arrival_s + cfg.slack_factor * duration_s, dtype=np.float64)
    return np.asarray(arrival_s + duration_s + cfg.window_h * 3600.0, dtype=np.float64)


def make_jobs(
    cfg: BatchConfig,
    region_names: tuple[str, ...],
    arrival_s: np.ndarray,
    duration_s: np.ndarray,
    cpus: np.ndarray,
    horizon_s: float,
    rng: np.random.Generator,
) -> Jobs:
    """Builds the job table of a run from trace columns (times relative to the trace start).

    Keeps the jobs arriving in ``[trace_offset_h, trace_offset_h + horizon)`` (times shifted to start at
    0), at most ``max_jobs`` of them, and draws for each, in order, whether it is interruptible and its
    home region (one uniform draw each, so the draws of a job do not depend on later jobs).

    Args:
        cfg: The batch configuration.
        region_names: Region names in scenario order.
        arrival_s: Trace arrival times in s (non-decreasing).
        duration_s: Trace durations in s.
        cpus: Trace CPU counts.
        horizon_s: Arrival window of the run in s.
        rng: The ``jobs`` stream.

    Returns:
        The jobs.
    """
    t0 = cfg.trace_offset_h * 3600.0
    keep = (arrival_s >= t0) & (arrival_s < t0 + horizon_s)
    arrival = np.asarray(arrival_s[keep], dtype=np.float64) - t0
    duration = np.asarray(duration_s[keep], dtype=np.float64)
    n_cpus = np.asarray(cpus[keep], dtype=np.int64)
    dropped = 0
    if cfg.max_jobs and arrival.size > cfg.max_jobs:
        dropped = arrival.size - cfg.max_jobs
        arrival, duration, n_cpus = arrival[: cfg.max_jobs], duration[: cfg.max_jobs], n_cpus[: cfg.max_jobs]
    u = rng.random((arrival.size, 2))
    interruptible = u[:, 0] < cfg.interruptible_share
    homes = [region_names.index(name) for name in cfg.home_shares]
    cumulative = np.cumsum([cfg.home_shares[region_names[h]] for h in homes])
    cumulative[-1] = 1.0
    home = np.asarray(homes, dtype=np.int8)[np.searchsorted(cumulative, u[:, 1], side="right")]
    return Jobs(
        arrival_s=arrival,
        duration_s=duration,
        cpus=n_cpus,
        deadline_s=deadlines(cfg, arrival, duration),
        interruptible=interruptible,
        home=home,
        dropped_from_trace=dropped,
    )
