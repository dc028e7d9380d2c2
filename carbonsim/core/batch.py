"""Batch jobs in the simulation: per-region CPU clusters, a batch policy, suspend and resume.

The engine is a SimPy process in the same environment as the inference requests. It wakes at every *epoch*:
a job arrival, a job completion, every hour boundary while jobs are active (the signals change hourly),
and the last moment each waiting job can start and still meet its deadline. At each epoch it asks the
batch policy which active jobs should run, and where (:meth:`BatchPolicy.schedule`), then:

* suspends running interruptible jobs the policy no longer lists, and stops those it lists in another
  region (a non-interruptible job may not be suspended or moved once started: policy errors);
* starts listed waiting jobs in arrival order where their CPUs fit in the region's free capacity; a job
  that does not fit waits in the queue (first fit in arrival order, so a small job may pass a large one);
* runs every job on ``scale`` copies of its CPU allocation (1 unless the policy scales it, up to
  ``batch.max_scale``): its remaining work (seconds on one allocation) falls by ``speedup[scale]`` per
  second, and its completion is the next epoch it sets; a rescale of a running job is a stop and restart
  at the new scale (interruptible jobs only), at the largest scale that fits if the asked one does not.

A job that starts away from where it is (its home region before its first start, else the region it last
ran in) *migrates*: its state, ``migration_gb_per_cpu`` x CPUs, crosses the network, which costs
``network_kwh_per_gb`` per GB (charged at the mean intensity and price of the two regions at that moment),
and the transfer time at ``migration_gbps`` is added to its remaining work in the destination.

A job needing more CPUs than any region's cluster has can never run: it fails on arrival. Every job is, at
the end, completed, failed or in flight (never silently lost). Energy: a running job draws
``cpus x scale x cpu_busy_w x PUE``; emissions and cost integrate that power over the hourly signals exactly
(:func:`job_account`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import simpy

from carbonsim.core.forecast import Forecaster, ForecastReader
from carbonsim.core.jobs import Jobs
from carbonsim.core.signals import SECONDS_PER_HOUR, HourlySignal

WAITING, RUNNING, COMPLETED, FAILED = 0, 1, 2, 3
JOB_STATUS_NAMES = ("in_flight", "in_flight", "completed", "failed")
#: Relative remaining work below which a job counts as finished (floating-point slack of event times).
DONE_TOLERANCE = 1e-9


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
        speedup: Progress rate of a job on 0, 1, ..., ``max_scale`` copies of its allocation (elastic
            scaling; ``(0.0, 1.0)`` when jobs do not scale).
        migration_gb_per_cpu: State moved per CPU when a job changes region, in GB.
        network_kwh_per_gb: Network energy per GB moved, in kWh.
        migration_gbps: Transfer rate of a migration in Gbit/s.
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

    def migration_s(self, cpus: int) -> float:
        """Transfer time of a job's state on ``cpus`` CPUs, in s (added to its remaining work)."""
        return self.migration_gb_per_cpu * cpus * 8.0 / self.migration_gbps

    def migration_kwh(self, cpus: int) -> float:
        """Network energy of moving a job's state on ``cpus`` CPUs, in kWh."""
        return self.migration_gb_per_cpu * cpus * self.network_kwh_per_gb

    @property
    def max_scale(self) -> int:
        """Largest allocation multiple a job may run on."""
        return len(self.speedup) - 1


@dataclass(frozen=True)
class JobInfo:
    """What a policy may know about an active (arrived, unfinished) job.

    Attributes:
        id: Job index (stable for the run).
        arrival_s: Arrival time in s.
        duration_s: Running time it needs in total, in s.
        remaining_s: Running time still needed on one allocation, in s.
        cpus: CPUs it runs on.
        deadline_s: Time by which it should be complete, in s.
        interruptible: Whether it may be suspended.
        home: Region it was submitted to.
        region: Region it runs (or ran) in once started, else -1.
        running: Whether it is running now.
        scale: Copies of its allocation it runs on now (0 when not running).
    """

    id: int
    arrival_s: float
    duration_s: float
    remaining_s: float
    cpus: int
    deadline_s: float
    interruptible: bool
    home: int
    region: int
    running: bool
    scale: int = 0


#: Floating-point slack (s) of :func:`must_start`: deadlines computed as arrival + duration round.
URGENCY_SLACK_S = 1e-6


def must_start(job: JobInfo, now_s: float, rate: float = 1.0) -> bool:
    """Whether ``job`` must run from ``now_s`` on (at progress ``rate``) to finish by its deadline."""
    return job.deadline_s - now_s <= job.remaining_s / rate + URGENCY_SLACK_S


@dataclass(frozen=True)
class JobView(ForecastReader):
    """The state a batch policy sees at an epoch.

    Attributes:
        now_s: Current time in s.
        active: Arrived, unfinished jobs in arrival order.
        free_cpus: Unused CPUs per region now.
        intensity_gco2_per_kwh: Intensity per region now.
        price_usd_per_kwh: Electricity price per region now.
        carbon_forecast: Intensity forecaster (:meth:`forecast_gco2_per_kwh`).
        price_forecast: Price forecaster (:meth:`forecast_price_usd_per_kwh`).
    """

    now_s: float
    active: tuple[JobInfo, ...]
    free_cpus: tuple[int, ...]
    intensity_gco2_per_kwh: tuple[float, ...]
    price_usd_per_kwh: tuple[float, ...]
    carbon_forecast: Forecaster
    price_forecast: Forecaster


@runtime_checkable
class BatchPolicy(Protocol):
    """A scheduler of deferrable batch jobs (when and where each job runs)."""

    def reset(self, context: JobContext) -> None:
        """Receives the scenario's static facts and the policy's random stream."""

    def schedule(self, view: JobView) -> Mapping[int, int | tuple[int, int]]:
        """Returns job id -> region, or (region, scale), for every active job that should run from now on.

        Jobs left out wait (a running interruptible job left out is suspended). Running jobs must keep
        their region; non-interruptible running jobs must stay listed at their scale. ``scale`` (default
        1) is the number of copies of the job's CPU allocation, up to ``context.max_scale``; only
        interruptible jobs may change it while running.
        """
        ...


@dataclass(frozen=True)
class JobRecords:
    """Per-job outcome and the running segments (for energy accounting).

    Attributes:
        status: ``COMPLETED``, ``FAILED``, or ``WAITING``/``RUNNING`` (in flight) at the end, per job.
        region: Region each job ran in (-1 if it never started).
        start_s: First start in s (NaN if never started).
        end_s: Completion time in s (NaN if not completed).
        remaining_s: Work left at the end in s.
        suspensions: Times each job was suspended.
        seg_job: Job of each running segment.
        seg_region: Region of each segment.
        seg_start_s: Segment starts in s.
        seg_end_s: Segment ends in s.
        seg_scale: Allocation copies of each segment.
        migrations: Times each job changed region (including a first start away from home).
        mig_job: Job of each migration.
        mig_from: Region it left.
        mig_to: Region it moved to.
        mig_time_s: When it moved, in s.
        mig_kwh: Network energy of each migration, in kWh.
    """

    status: np.ndarray
    region: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    remaining_s: np.ndarray
    suspensions: np.ndarray
    seg_job: np.ndarray
    seg_region: np.ndarray
    seg_start_s: np.ndarray
    seg_end_s: np.ndarray
    seg_scale: np.ndarray
    migrations: np.ndarray
    mig_job: np.ndarray
    mig_from: np.ndarray
    mig_to: np.ndarray
    mig_time_s: np.ndarray
    mig_kwh: np.ndarray


class BatchEngine:
    """Runs the jobs of one simulation under a batch policy (see the module docstring).

    Args:
        env: The simulation's environment.
        jobs: The jobs.
        policy: The batch policy.
        context: Static facts for the policy.
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
        self.env = env
        self.jobs = jobs
        self.policy = policy
        self.context = context
        self.carbon = carbon
        self.price = price
        self.carbon_forecast = carbon_forecast
        self.price_forecast = price_forecast
        self.on_done = on_done
        self.status = np.full(n, WAITING, dtype=np.int8)
        self.region = np.full(n, -1, dtype=np.int16)
        self.start_s = np.full(n, np.nan)
        self.end_s = np.full(n, np.nan)
        self.remaining_s = np.array(jobs.duration_s, dtype=np.float64)
        self.suspensions = np.zeros(n, dtype=np.int32)
        self.scale = np.zeros(n, dtype=np.int16)
        self.free = list(context.capacity_cpus)
        self.active: dict[int, None] = {}  # insertion-ordered: arrival order
        self.running_since: dict[int, float] = {}
        self.segments: list[tuple[int, int, float, float, int]] = []
        self.moves: list[tuple[int, int, int, float, float]] = []  # job, from, to, time s, network kWh
        self.finished = n == 0
        self._max_capacity = max(context.capacity_cpus, default=0)
        self._epochs = 0
        self._last = float(env.now)  # time up to which running jobs have progressed

    @property
    def epochs(self) -> int:
        """Policy calls so far."""
        return self._epochs

    def process(self) -> Generator[simpy.events.Event, Any, None]:
        """The SimPy process: epochs until every job has completed or failed."""
        jobs = self.jobs
        n = len(jobs)
        nxt = 0  # next job to arrive
        while True:
            now = float(self.env.now)
            self._advance(self._last, now)
            self._last = now
            while nxt < n and jobs.arrival_s[nxt] <= now:
                if jobs.cpus[nxt] > self._max_capacity:
                    self.status[nxt] = FAILED
                else:
                    self.active[nxt] = None
                nxt += 1
            if self.active:
                self._decide(now)
            if not self.active and nxt >= n:
                self.finished = True
                self.on_done()
                return
            candidates = []
            if nxt < n:
                candidates.append(float(jobs.arrival_s[nxt]))
            if self.active:
                candidates.append((math.floor(now / SECONDS_PER_HOUR) + 1.0) * SECONDS_PER_HOUR)
            for j in self.running_since:
                candidates.append(now + float(self.remaining_s[j]) / self.context.speedup[self.scale[j]])
            # The last moments a waiting job can start and still meet its deadline (on one allocation and
            # at full scale): policies get a decision point there, not only at the next hour boundary.
            top = self.context.speedup[-1]
            for j in self.active:
                if j not in self.running_since:
                    rest = float(self.remaining_s[j])
                    for latest in (jobs.deadline_s[j] - rest, jobs.deadline_s[j] - rest / top):
                        if latest > now:
                            candidates.append(float(latest))
            yield self.env.timeout(max(0.0, min(candidates) - now))

    def _advance(self, last: float, now: float) -> None:
        """Progresses running jobs from ``last`` to ``now`` and completes those that are done."""
        if now <= last:
            return
        for j in list(self.running_since):
            self.remaining_s[j] -= (now - last) * self.context.speedup[self.scale[j]]
            if self.remaining_s[j] <= DONE_TOLERANCE * self.jobs.duration_s[j]:
                self.remaining_s[j] = 0.0
                self._stop(j, now)
                self.status[j] = COMPLETED
                self.end_s[j] = now
                del self.active[j]

    def _stop(self, j: int, now: float) -> None:
        since = self.running_since.pop(j)
        r = int(self.region[j])
        scale = int(self.scale[j])
        if now > since:
            self.segments.append((j, r, since, now, scale))
        self.free[r] += int(self.jobs.cpus[j]) * scale
        self.scale[j] = 0

    def _start(self, j: int, r: int, scale: int, now: float) -> None:
        cpus = int(self.jobs.cpus[j])
        here = int(self.region[j]) if self.region[j] >= 0 else int(self.jobs.home[j])
        if r != here:
            self.moves.append((j, here, r, now, self.context.migration_kwh(cpus)))
            self.remaining_s[j] += self.context.migration_s(cpus)
        self.free[r] -= cpus * scale
        self.region[j] = r
        self.scale[j] = scale
        self.running_since[j] = now
        if math.isnan(self.start_s[j]):
            self.start_s[j] = now

    def _view(self, now: float) -> JobView:
        jobs = self.jobs
        active = tuple(
            JobInfo(
                id=j,
                arrival_s=float(jobs.arrival_s[j]),
                duration_s=float(jobs.duration_s[j]),
                remaining_s=float(self.remaining_s[j]),
                cpus=int(jobs.cpus[j]),
                deadline_s=float(jobs.deadline_s[j]),
                interruptible=bool(jobs.interruptible[j]),
                home=int(jobs.home[j]),
                region=int(self.region[j]),
                running=j in self.running_since,
                scale=int(self.scale[j]),
            )
            for j in self.active
        )
        return JobView(
            now_s=now,
            active=active,
            free_cpus=tuple(self.free),
            intensity_gco2_per_kwh=self.carbon.all_at(now),
            price_usd_per_kwh=self.price.all_at(now),
            carbon_forecast=self.carbon_forecast,
            price_forecast=self.price_forecast,
        )

    def _decide(self, now: float) -> None:
        name = type(self.policy).__name__
        raw = self.policy.schedule(self._view(now))
        self._epochs += 1
        n_regions = len(self.free)
        wanted: dict[int, tuple[int, int]] = {}
        for j, value in raw.items():
            r, scale = value if isinstance(value, tuple) else (value, 1)
            if j not in self.active:
                raise ValueError(f"batch policy {name} scheduled job {j!r}, which is not active at {now:.1f} s")
            if not (isinstance(r, int | np.integer) and 0 <= r < n_regions and self.context.capacity_cpus[r] > 0):
                raise ValueError(
                    f"batch policy {name} put job {j} in region {r!r}; expected the index of a region with a "
                    f"batch cluster ({[i for i, c in enumerate(self.context.capacity_cpus) if c > 0]})"
                )
            if not (isinstance(scale, int | np.integer) and 1 <= scale <= self.context.max_scale):
                raise ValueError(
                    f"batch policy {name} gave job {j} scale {scale!r}; expected 1..{self.context.max_scale}"
                )
            wanted[j] = (int(r), int(scale))
        for j in list(self.running_since):
            if j in wanted and wanted[j] == (self.region[j], self.scale[j]):
                continue
            if not self.jobs.interruptible[j]:
                what = "suspended" if j not in wanted else "moved" if wanted[j][0] != self.region[j] else "rescaled"
                raise ValueError(f"batch policy {name} {what} job {j}, which is not interruptible")
            self._stop(j, now)
            if j not in wanted:
                self.suspensions[j] += 1
        for j in self.active:
            if j in self.running_since or j not in wanted:
                continue
            r, scale = wanted[j]
            # A job that does not fit at the scale asked for runs at the largest scale that fits.
            fits = min(scale, self.free[r] // int(self.jobs.cpus[j]))
            if fits >= 1:
                self._start(j, r, fits, now)

    def records(self, end_s: float) -> JobRecords:
        """The outcome at simulated time ``end_s`` (running jobs are cut there and stay in flight)."""
        self._advance(self._last, end_s)
        self._last = end_s
        status = self.status.copy()
        for j in self.running_since:
            status[j] = RUNNING
        running = ((j, int(self.region[j]), s, end_s, int(self.scale[j])) for j, s in self.running_since.items())
        seg = np.array([*self.segments, *running], dtype=np.float64).reshape(-1, 5)
        moves = np.array(self.moves, dtype=np.float64).reshape(-1, 5)
        mig_job = moves[:, 0].astype(np.int64)
        return JobRecords(
            status=status,
            region=self.region.copy(),
            start_s=self.start_s.copy(),
            end_s=self.end_s.copy(),
            remaining_s=self.remaining_s.copy(),
            suspensions=self.suspensions.copy(),
            seg_job=seg[:, 0].astype(np.int64),
            seg_region=seg[:, 1].astype(np.int64),
            seg_start_s=seg[:, 2],
            seg_end_s=seg[:, 3],
            seg_scale=seg[:, 4].astype(np.int64),
            migrations=np.bincount(mig_job, minlength=len(self.jobs)).astype(np.int32),
            mig_job=mig_job,
            mig_from=moves[:, 1].astype(np.int64),
            mig_to=moves[:, 2].astype(np.int64),
            mig_time_s=moves[:, 3],
            mig_kwh=moves[:, 4],
        )


def job_account(
    jobs: Jobs,
    records: JobRecords,
    carbon: HourlySignal,
    price: HourlySignal,
    pue: np.ndarray,
    cpu_busy_w: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy (kWh), emissions (g) and electricity cost (USD) per job, exact over hourly signals.

    Running energy includes the PUE of the region; migrations add their network energy, at the mean
    intensity and price of the two regions at the moment of the move.
    """
    n = len(jobs)
    power_w = jobs.cpus[records.seg_job] * records.seg_scale * cpu_busy_w * pue[records.seg_region]
    energy_j = power_w * (records.seg_end_s - records.seg_start_s)
    carbon_g = power_w * carbon.integral(records.seg_region, records.seg_start_s, records.seg_end_s) / 3.6e6
    cost_usd = power_w * price.integral(records.seg_region, records.seg_start_s, records.seg_end_s) / 3.6e6
    idx = np.concatenate([records.seg_job, records.mig_job])
    kwh = records.mig_kwh
    moved = [
        (sig.values_at(records.mig_from, records.mig_time_s) + sig.values_at(records.mig_to, records.mig_time_s)) / 2
        for sig in (carbon, price)
    ]
    out = []
    for run, mig in ((energy_j / 3.6e6, kwh), (carbon_g, kwh * moved[0]), (cost_usd, kwh * moved[1])):
        out.append(np.bincount(idx, weights=np.concatenate([run, mig]), minlength=n))
    return out[0], out[1], out[2]
