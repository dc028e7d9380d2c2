"""Batch-job policies: carbon-agnostic, Let's Wait Awhile and the GAIA start-time policies.

The temporal policies here keep every job in its home region and plan, once per job when it is first
seen, *when* it runs, from the intensity forecast of the home region (the scenario's forecaster: never the
true future unless ``forecast.kind: perfect``). Plans live on the hourly grid of the signals: a job may
start at its arrival or at an hour boundary, and the forecast reaches 48 h ahead (the part of a job's
window beyond it is not known and not planned on). A plan is a list of running intervals; the job runs
while the current time is inside one of them. When a plan cannot be followed (the cluster was full, so
work is left after the last planned interval) or the deadline is near (remaining work >= time left), the
job runs at once: the policies below never give up a deadline to save carbon.

A job's work, for its plan and its latest start, is the time it needs at the most it can run at once in
its home region: its remaining critical path, or, for a DAG with more tasks left than fit at once in the
home cluster (a stage wider than the cluster runs in waves), Graham's list-scheduling bound on it
(:func:`~carbonsim.policies.stages.job_time_left_s`, as CarbonClipper's compulsory phase uses it). The
critical path alone assumes a CPU for every task: a TPC-H job of the seed study planned with it started
too late and ran for hours past its deadline. Such a job must run when that latest start comes before
the next call the engine surely makes (:func:`~carbonsim.policies.stages.must_run`). Jobs of one task
are planned exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import BatchPolicyConfig
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import JobContext, JobInfo, JobView
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.policies.registry import register_batch
from carbonsim.policies.stages import WaveTimes, must_run

Interval = tuple[float, float]


class Slots:
    """The forecast of one region cut into the intervals a job may use, from now to a time limit.

    Slot ``k`` is ``[max(now, 3600 (h + k)), 3600 (h + k + 1))`` with ``h`` the current hour, clipped to
    ``limit_s``, and carries the forecast intensity of that hour.
    """

    def __init__(self, forecast: np.ndarray, now_s: float, limit_s: float) -> None:
        h0 = math.floor(now_s / SECONDS_PER_HOUR)
        starts = np.maximum(now_s, (h0 + np.arange(forecast.size)) * SECONDS_PER_HOUR)
        ends = np.minimum(limit_s, (h0 + 1 + np.arange(forecast.size)) * SECONDS_PER_HOUR)
        keep = ends > starts
        self.start_s = starts[keep]
        self.end_s = ends[keep]
        self.intensity = np.asarray(forecast[keep], dtype=np.float64)
        self._cumulative = np.concatenate([[0.0], np.cumsum(self.intensity * (self.end_s - self.start_s))])

    @property
    def known_until_s(self) -> float:
        """End of the forecast coverage (or of the limit)."""
        return float(self.end_s[-1]) if self.end_s.size else -math.inf

    def mean_intensity(self, start_s: float, duration_s: float) -> float:
        """Mean forecast intensity over ``[start_s, start_s + duration_s)``, over its forecast-covered part."""
        end = min(start_s + duration_s, self.known_until_s)
        if end <= start_s:
            return math.inf
        return (self._integral(end) - self._integral(start_s)) / (end - start_s)

    def _integral(self, t_s: float) -> float:
        k = int(np.searchsorted(self.end_s, t_s, side="left"))
        if k >= self.intensity.size:
            return float(self._cumulative[-1])
        inside = max(0.0, t_s - float(self.start_s[k]))
        return float(self._cumulative[k] + self.intensity[k] * inside)


def start_candidates(now_s: float, latest_start_s: float, known_until_s: float) -> np.ndarray:
    """Possible start times: now and every hour boundary up to the latest start and the forecast's end."""
    first = math.floor(now_s / SECONDS_PER_HOUR) + 1
    last = min(latest_start_s, known_until_s - 1e-9)
    hours = np.arange(first, math.floor(last / SECONDS_PER_HOUR) + 1) * SECONDS_PER_HOUR
    return np.concatenate([[now_s], hours[hours <= last]])


def home_window(job: JobInfo, view: JobView, need_s: float) -> tuple[Slots, float]:
    """The forecast slots of the job's home region up to its deadline, and its latest start.

    Args:
        job: The job.
        view: The epoch's view.
        need_s: Time the job's remaining work needs, in s (its latest start is ``deadline - need_s``).
    """
    forecast = view.forecast_gco2_per_kwh(job.home, MAX_HORIZON_H)
    return Slots(forecast, view.now_s, job.deadline_s), job.deadline_s - need_s


def lowest_window_start(slots: Slots, now_s: float, latest_s: float, length_s: float) -> float:
    """The possible start with the lowest forecast mean intensity over ``length_s`` (ties: the earliest)."""
    starts = start_candidates(now_s, latest_s, slots.known_until_s)
    return float(starts[int(np.argmin([slots.mean_intensity(s, length_s) for s in starts]))])


class PlannedBatchPolicy:
    """Base of policies that plan each job's running intervals once, when they first see it."""

    def __init__(self, cfg: BatchPolicyConfig) -> None:
        self.cfg = cfg
        self.plans: dict[int, list[Interval]] = {}

    def reset(self, context: JobContext) -> None:
        """Clears the plans."""
        self.context = context
        self.plans = {}
        self.waves = WaveTimes(context)

    def need_s(self, job: JobInfo, view: JobView) -> float:
        """Time the job's remaining work needs in its region (or home), in s (see the module docstring)."""
        return self.waves.time_left_in_s(job, view, job.region if job.region >= 0 else job.home)

    def plan(self, job: JobInfo, view: JobView) -> list[Interval]:
        """Running intervals of a job, planned when it is first seen."""
        raise NotImplementedError

    def schedule(self, view: JobView) -> Mapping[int, int]:
        """Runs each job inside its planned intervals, at once when its plan is spent or its deadline near."""
        out: dict[int, int] = {}
        now = view.now_s
        top = float(self.context.speedup[-1])
        self.waves.keep({job.id for job in view.active})
        for job in view.active:
            plan = self.plans.get(job.id)
            if plan is None:
                plan = self.plans[job.id] = self.plan(job, view)
            region = job.region if job.region >= 0 else job.home
            must = must_run(job, now, self.need_s(job, view), top) or not plan or now >= plan[-1][1]
            if must or (job.running and not job.interruptible) or any(a <= now < b for a, b in plan):
                out[job.id] = region
        return out


@register_batch("carbon_agnostic")
class CarbonAgnostic:
    """Runs every job on arrival in its home region (the baseline of the temporal-shifting studies)."""

    def __init__(self, cfg: BatchPolicyConfig) -> None:
        self.cfg = cfg

    def reset(self, context: JobContext) -> None:
        """Nothing to prepare."""

    def schedule(self, view: JobView) -> Mapping[int, int]:
        """Every active job, in the region it started in or its home."""
        return {job.id: job.region if job.region >= 0 else job.home for job in view.active}


@dataclass(frozen=True)
class LetsWaitAwhileConfig(BatchPolicyConfig):
    """Parameters of Let's Wait Awhile.

    Attributes:
        name: ``lets_wait_awhile``.
    """


@register_batch("lets_wait_awhile", LetsWaitAwhileConfig)
class LetsWaitAwhile(PlannedBatchPolicy):
    """Let's Wait Awhile: the lowest forecast window or the lowest forecast slots before the deadline.

    Wiesner et al., "Let's Wait Awhile: How Temporal Workload Shifting Can Reduce Carbon Emissions in the
    Cloud", Middleware 2021. Rule: a non-interruptible job starts at the time, among its possible
    starts before ``deadline - duration``, whose forecast mean intensity over the job's duration is
    lowest (ties: the earliest). An interruptible job runs in the lowest-intensity forecast slots
    between now and its deadline, as many as its duration needs (ties: the earlier slot). Deviations:
    slots are the hours of the signal (the paper used 30-minute steps), only the 48 forecast hours
    are planned on, and a DAG's duration is the time its waves take (see the module docstring).
    """

    def plan(self, job: JobInfo, view: JobView) -> list[Interval]:
        """Lowest-mean window (non-interruptible) or lowest slots (interruptible)."""
        need = self.need_s(job, view)
        slots, latest = home_window(job, view, need)
        if latest <= view.now_s or not slots.intensity.size:
            return []
        if not job.interruptible:
            s = lowest_window_start(slots, view.now_s, latest, need)
            return [(s, s + need)]
        order = np.lexsort((slots.start_s, slots.intensity))
        chosen: list[Interval] = []
        for k in order:
            if need <= 0:
                break
            chosen.append((float(slots.start_s[k]), float(slots.end_s[k])))
            need -= float(slots.end_s[k] - slots.start_s[k])
        return sorted(chosen)


@dataclass(frozen=True)
class GaiaConfig(BatchPolicyConfig):
    """Parameters of the GAIA start-time policies.

    Attributes:
        name: ``gaia_lowest_slot``, ``gaia_lowest_window`` or ``gaia_carbon_time``.
        job_length: ``exact``: the policy knows each job's duration; ``mean_past``: it plans with the mean
            duration of the jobs that arrived before (GAIA's setting, where lengths are unknown at
            submission; the first job is planned with its own length).
    """

    job_length: str = "exact"

    def __post_init__(self) -> None:
        if self.job_length not in ("exact", "mean_past"):
            raise ConfigError(f"job_length: expected exact or mean_past, got {self.job_length!r}")


class GaiaPolicy(PlannedBatchPolicy):
    """Shared part of the GAIA start-time policies.

    Hanafy et al., "Going Green for Less Green: Optimizing the Cost of Reducing Cloud Carbon Emissions",
    ASPLOS 2024 (rules as in the authors' simulator, umassos/GAIA): one start time per job, between
    arrival and the latest start (``deadline - duration``, i.e. the waiting window), chosen by
    :meth:`pick`; the job then runs without suspension. The start candidates are the arrival and each
    following hour boundary, as in GAIA's hourly search. A DAG's duration is the time its waves take
    (see the module docstring); with ``job_length: mean_past``, the mean of the past jobs' such times.
    """

    def __init__(self, cfg: GaiaConfig) -> None:
        super().__init__(cfg)
        self.length_mode = cfg.job_length
        self._seen_duration_s = 0.0
        self._seen = 0

    def reset(self, context: JobContext) -> None:
        """Clears the plans and the running mean of job lengths."""
        super().reset(context)
        self._seen_duration_s = 0.0
        self._seen = 0

    def plan(self, job: JobInfo, view: JobView) -> list[Interval]:
        """Starts at the candidate :meth:`pick` chooses and runs for the job's (estimated) length."""
        need = self.need_s(job, view)
        length = need
        if self.length_mode == "mean_past" and self._seen:
            length = self._seen_duration_s / self._seen
        # A job's length for the running mean: its critical path plus what running in waves adds.
        seen_s = job.duration_s + (need - job.remaining_s)
        if math.isfinite(seen_s):
            self._seen_duration_s += seen_s
            self._seen += 1
        # The waiting window is the job's (its true remaining work), whatever the length estimate.
        slots, latest = home_window(job, view, need)
        if latest <= view.now_s or not slots.intensity.size:
            return []
        starts = start_candidates(view.now_s, latest, slots.known_until_s)
        s = float(starts[self.pick(starts, slots, length, view.now_s)])
        return [(s, s + need)]

    def pick(self, starts: np.ndarray, slots: Slots, length_s: float, now_s: float) -> int:
        """Index of the chosen start among ``starts``."""
        raise NotImplementedError


@register_batch("gaia_lowest_slot", GaiaConfig)
class GaiaLowestSlot(GaiaPolicy):
    """GAIA Lowest-Slot: start in the hour of lowest forecast intensity within the waiting window.

    The job's length is ignored (ties: the earliest).
    """

    def pick(self, starts: np.ndarray, slots: Slots, length_s: float, now_s: float) -> int:
        """The start in the lowest-intensity hour."""
        k = np.searchsorted(slots.end_s, starts, side="right")
        return int(np.argmin(slots.intensity[np.minimum(k, slots.intensity.size - 1)]))


@register_batch("gaia_lowest_window", GaiaConfig)
class GaiaLowestWindow(GaiaPolicy):
    """GAIA Lowest-Window: start where the forecast mean intensity over the job's length is lowest.

    The length is the exact or estimated one (``job_length``); ties: the earliest.
    """

    def pick(self, starts: np.ndarray, slots: Slots, length_s: float, now_s: float) -> int:
        """The start with the lowest window mean."""
        return int(np.argmin([slots.mean_intensity(s, length_s) for s in starts]))


@register_batch("gaia_carbon_time", GaiaConfig)
class GaiaCarbonTime(GaiaPolicy):
    """GAIA Carbon-Time: start where the carbon saved per unit of completion time is largest.

    ``max_s (C(now) - C(s)) / (s - now + length)`` with ``C(s)`` the forecast emissions of a run of the
    job's (exact or estimated) length starting at ``s`` (ties: the earliest; starting now scores 0).
    """

    def pick(self, starts: np.ndarray, slots: Slots, length_s: float, now_s: float) -> int:
        """The start with the best carbon saving per unit of completion time."""
        carbon = np.array([slots.mean_intensity(s, length_s) * length_s for s in starts])
        score = (carbon[0] - carbon) / (starts - now_s + length_s)
        return int(np.argmax(score))
