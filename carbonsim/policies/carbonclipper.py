"""CarbonClipper: threshold-based spatiotemporal scheduling of a job across regions, with a deadline.

Lechowicz, Christianson, Sun, Bashir, Hajiesmaili, Wierman, Shenoy, "CarbonClipper: Optimal Algorithms for
Carbon-Aware Spatiotemporal Workload Management", arXiv 2408.07831 (2024; v2, 2025, calls the problem SOAD
and the algorithms PCM and ST-CLIP). Each job is one instance of *spatiotemporal online allocation with
deadline constraints*: a unit of work, done at the points of a metric space (the regions, on or off),
where each step reveals the service cost of every point (the intensity) and moving costs the distance.

The robust algorithm (pseudo-cost minimisation, PCM) keeps the fraction ``w`` of the job done and, at each
step, picks the allocation ``x`` minimising

    f_t(x) + d(x_prev, x) - integral_w^(w + c(x)) psi(u) du,     psi(w) = U - tau + (U / eta - U + D + tau) e^(w / eta)

where ``c(x)`` is the work ``x`` does in the step, ``L`` and ``U`` bound the service cost, ``D`` bounds the
movement cost, ``tau`` is the cost of switching a job off and on, and ``eta``, the competitive ratio, is

    eta = 1 / (1 - 2D/U + W0(((2D/U + L/U - 1) e^(2D/U)) / e))

(W0 is Lambert's W). ``psi`` falls from ``U / eta + D`` at ``w = 0``: the algorithm runs a job only where
the current cost is below the pseudo-cost of the work it still needs. When the steps left before the
deadline are no more than the work left (the *compulsory phase*), the job runs at the cheapest point.

With ``epsilon`` set, the learning-augmented ST-CLIP (CarbonClipper proper) also follows *advice*, a plan
predicted for the job, within a consistency budget: an allocation is allowed only if the cost so far, plus
this step's cost, plus moving to where the advice is, plus the least the rest can cost (``L`` per unit, and
``U`` per unit by which the job lags the advice), stays within ``(1 + epsilon)`` times the advice's cost so
far plus ``L`` per unit it has left. If no allocation keeps the budget, the job does what the advice does.

carbonsim's instance, per job (arbitrary units cancel, so costs are in g per kWh of job energy):

* service cost of region ``r`` now: its intensity x PUE (the job's energy per unit work is the same
  everywhere); ``L``, ``U``: the lowest and highest forecast of that over the regions and the job's
  window (at most 48 h ahead), taken when the job is first seen; both include the current values;
* movement cost: the network energy of the job's state (``batch.migration_gb_per_cpu`` and
  ``migration_gb_per_gpu``, ``network_kwh_per_gb``) at the mean intensity of the two regions, plus the
  energy of the restore time at the destination, divided by the job's energy (its runnable tasks' power,
  CPUs and GPUs, the latter at the mean busy power of the run's GPU types, over its critical path);
  ``D`` is the largest at ``U``. The points of a job's instance are its home and the regions whose move
  from home costs less than ``U / 2`` (PCM needs ``2D < U``; a dearer move never pays): a short job on
  few CPUs is usually worth moving nowhere, and then PCM is online min-search in time at home;
* ``tau = 0``: suspending and resuming cost nothing in the simulator;
* a step is the rest of the current hour (the signals are hourly); ``c`` is the share of the job that
  runs in it;
* the work left, for the compulsory phase, is the time the job still needs at the most it can run at
  once: its remaining critical path, or, for a DAG with more tasks left than fit at once in the cluster
  (a stage wider than the cluster runs in waves), Graham's list-scheduling bound on it
  (:func:`~carbonsim.policies.stages.job_time_left_s`). PCM's compulsory phase begins when the steps left
  are just enough for the work left at the job's full rate, and runs the job to its end; measuring a
  DAG's work by its critical path alone assumed a CPU for every task, and so began too late for every
  TPC-H job of the seed study;
* advice (``epsilon`` set): the plan a forecast suggests when the job is first seen: for each region, its
  cheapest forecast hours covering the job, plus moving there from home; the region whose plan is
  cheapest. Its cost is then counted at the true intensities as time passes.

Deviations: the job is not divisible within a step (a simulated job runs on all its CPUs or none), so the
minimisation is over "off" and "on in region r" for a whole step (PCM's objective is convex in the share
of a step, and the threshold is coarse at hourly steps); the compulsory phase starts at the exact latest
moment (the simulator's epochs), not at whole steps, when the engine wakes the policy then (it does at a
job's latest start by its critical path), and otherwise at the last call before it (the engine surely
calls at every hour; the deadline guard's rule, :func:`~carbonsim.policies.stages.due`); a
non-interruptible job cannot be paused or moved once started, so it starts where and when the whole job's
forecast cost plus the move is below the mean of ``psi`` over the job, or at its latest start, in its
current region. Jobs that do not fit in a region's free CPUs are not placed there, except in the
compulsory phase (the engine then runs as many tasks as fit). A DAG whose runnable tasks need more CPUs than
the cluster has fits where the whole cluster is free (its full rate there), and its unit of work is its
length at that rate (Graham's bound, above, when first seen): the share ``c`` of a step, the fraction
``w`` done and the advice are counted in it. (Counted by its critical path, with every runnable task
needing a free CPU, a TPC-H job of the seed study never fitted and ran only in its compulsory phase.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from carbonsim._schema import ConfigError
from carbonsim.config import BatchPolicyConfig
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import JobContext, JobInfo, JobView
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.policies.batch import Slots
from carbonsim.policies.registry import register_batch
from carbonsim.policies.stages import WaveTimes, context_gpu_w, due


def clipper_eta(low: float, high: float, diameter: float) -> float:
    """The robust competitive ratio ``eta`` for costs in ``[low, high]`` and movement up to ``diameter``.

    Returns 1 when there is nothing to gain (``low >= high``). Raises ValueError when ``2 D >= U``: moving
    may then cost more than any step, and the threshold is undefined.
    """
    if high <= 0 or low >= high:
        return 1.0
    ratio = 2.0 * diameter / high
    if ratio >= 1.0:
        raise ValueError(f"movement bound D={diameter:.4g} is at least half the cost bound U={high:.4g}")
    w = lambertw((ratio + low / high - 1.0) * math.exp(ratio) / math.e).real
    return float(1.0 / (1.0 - ratio + w))


@dataclass(frozen=True)
class Threshold:
    """PCM's threshold ``psi`` for one job (``tau = 0``).

    Attributes:
        low: Lower bound ``L`` of the service cost.
        high: Upper bound ``U`` of the service cost.
        diameter: Upper bound ``D`` of the movement cost.
        eta: Competitive ratio.
    """

    low: float
    high: float
    diameter: float
    eta: float

    @staticmethod
    def make(low: float, high: float, diameter: float) -> Threshold:
        """The threshold for the bounds (see :func:`clipper_eta`)."""
        return Threshold(low, high, diameter, clipper_eta(low, high, diameter))

    def psi(self, w: float) -> float:
        """``psi(w) = U + (U / eta - U + D) e^(w / eta)``."""
        return self.high + (self.high / self.eta - self.high + self.diameter) * math.exp(w / self.eta)

    def integral(self, w0: float, w1: float) -> float:
        """``integral_w0^w1 psi(u) du``."""
        k = self.high / self.eta - self.high + self.diameter
        return self.high * (w1 - w0) + k * self.eta * (math.exp(w1 / self.eta) - math.exp(w0 / self.eta))


@dataclass(frozen=True)
class CarbonClipperConfig(BatchPolicyConfig):
    """Parameters of CarbonClipper.

    Attributes:
        name: ``carbonclipper``.
        epsilon: Consistency slack of the advice (ST-CLIP): the cost stays within ``1 + epsilon`` of the
            advice's, in the accounting above. Null for the robust algorithm (PCM) without advice. The
            default, 1, trusts the forecast to within a factor of two.
    """

    epsilon: float | None = 1.0

    def __post_init__(self) -> None:
        if self.epsilon is not None and not (math.isfinite(self.epsilon) and self.epsilon >= 0):
            raise ConfigError(f"epsilon: expected a number >= 0 or null, got {self.epsilon!r}")


@dataclass
class _JobState:
    """What CarbonClipper keeps per job."""

    threshold: Threshold
    location: int
    points: list[int]  # regions it may run in
    extra_s: float = 0.0  # restore time added by moves so far
    cost: float = 0.0  # cost so far (service + movement), per unit of work
    advice: list[tuple[float, float]] | None = None  # running intervals of the advice
    advice_region: int = -1
    advice_cost: float = 0.0  # the advice's cost so far at the true intensities
    advice_done: float = 0.0  # the advice's share of the work done so far
    advice_until_s: float = 0.0  # time up to which the advice has been accounted
    compulsory: bool = False  # in its compulsory phase (it stays there until done)
    length_s: float = 0.0  # the job's length at full rate where it was first seen (its unit of work)


@register_batch("carbonclipper", CarbonClipperConfig)
class CarbonClipper:
    """CarbonClipper (see the module docstring)."""

    def __init__(self, cfg: CarbonClipperConfig) -> None:
        self.cfg = cfg
        self.state: dict[int, _JobState] = {}

    def reset(self, context: JobContext) -> None:
        """Keeps the regions' PUE and clears the per-job state."""
        self.context = context
        self.pue = np.array(context.pue)
        self.regions = [r for r, c in enumerate(context.capacity_cpus) if c > 0]
        self.state = {}
        self._last_effective: np.ndarray | None = None
        self.waves = WaveTimes(context)

    # Costs per unit of work, in g per kWh of the job's energy before PUE.

    def job_w(self, job: JobInfo) -> float:
        """Power of the job's runnable tasks before PUE, in W (GPUs at the mean busy power of the run's types)."""
        watts = job.cpus * self.context.cpu_busy_w
        if job.gpus:
            watts += job.gpus * context_gpu_w(self.context, -1)
        return watts

    def job_kwh(self, job: JobInfo) -> float:
        """The job's energy before PUE, in kWh (its runnable tasks' power over its critical path)."""
        return self.job_w(job) * job.duration_s / 3.6e6

    def move_cost(self, job: JobInfo, a: int, b: int, intensity: np.ndarray) -> float:
        """Movement cost from region ``a`` to ``b`` at per-region intensities ``intensity`` (0 if a == b)."""
        if a == b:
            return 0.0
        ctx = self.context
        network = ctx.migration_kwh(job.cpus, job.gpus) * (intensity[a] + intensity[b]) / 2.0
        restore = self.job_w(job) * ctx.migration_s(job.cpus, job.gpus) / 3.6e6 * intensity[b] * self.pue[b]
        return float((network + restore) / self.job_kwh(job))

    def full_rate_cpus(self, job: JobInfo, region: int) -> float:
        """CPUs the job holds at its full rate in ``region``.

        All its runnable tasks' CPUs, or, for a DAG whose runnable tasks need more than the cluster has (they
        run in waves), the whole cluster.
        """
        if job.tasks - job.tasks_done <= 1:
            return job.cpus
        return min(job.cpus, float(self.context.capacity_cpus[region]))

    def time_left_s(self, job: JobInfo, view: JobView) -> list[float]:
        """Time the job's remaining work needs in each region (indexed by region), in s.

        Its remaining critical path, or, when it has more tasks left than fit at once in a region's cluster,
        Graham's bound (:func:`~carbonsim.policies.stages.job_time_left_s`) with the fewest tasks of any of
        its runnable stages that fit there (:class:`~carbonsim.policies.stages.WaveTimes`). Counted again
        when its runnable stages change.
        """
        return self.waves.time_left_s(job, view)

    def first_seen(self, job: JobInfo, view: JobView) -> _JobState:
        """Bounds, threshold and (with ``epsilon``) advice of a job seen for the first time."""
        now = view.now_s
        hours = max(1, min(MAX_HORIZON_H, math.ceil((job.deadline_s - now) / SECONDS_PER_HOUR)))
        current = np.array(view.intensity_gco2_per_kwh)
        here = job.region if job.region >= 0 else job.home
        slots = {
            r: Slots(view.forecast_gco2_per_kwh(r, hours) * self.pue[r], now, job.deadline_s) for r in self.regions
        }

        def bounds(points: list[int]) -> tuple[float, float]:
            eff = [current[r] * self.pue[r] for r in points]
            low = min(min(eff), *(float(slots[r].intensity.min(initial=math.inf)) for r in points))
            high = max(max(eff), *(float(slots[r].intensity.max(initial=0.0)) for r in points))
            return low, high

        # Regions the job could ever gain by moving to: moving there costs less than half the highest
        # service cost (beyond that PCM's threshold is undefined, and the move can never pay).
        _, high = bounds(self.regions)
        ceiling = np.full(current.size, high / self.pue.max())
        points = [r for r in self.regions if r == here or 2.0 * self.move_cost(job, here, r, ceiling) < high]
        low, high = bounds(points)
        ceiling = np.full(current.size, high / self.pue.max())
        diameter = max(self.move_cost(job, a, b, ceiling) for a in points for b in points)
        state = _JobState(Threshold.make(low, high, diameter), here, points, advice_until_s=now)
        state.length_s = self.time_left_s(job, view)[here]
        if self.cfg.epsilon is not None:
            best = math.inf
            for r in points:
                plan, cost = cheapest_hours(slots[r], state.length_s)
                cost += self.move_cost(job, here, r, current)
                if cost < best:
                    best, state.advice, state.advice_region = cost, plan, r
        return state

    def schedule(self, view: JobView) -> Mapping[int, int]:
        """One PCM / ST-CLIP step for every active job (see the module docstring)."""
        now = view.now_s
        current = np.array(view.intensity_gco2_per_kwh)
        effective = current * self.pue
        step_end = (math.floor(now / SECONDS_PER_HOUR) + 1.0) * SECONDS_PER_HOUR
        free = list(view.free_cpus)
        out: dict[int, int] = {}
        active = {job.id for job in view.active}
        for gone in [j for j in self.state if j not in active]:
            del self.state[gone]
        self.waves.keep(active)
        for job in view.active:
            state = self.state.get(job.id)
            if state is None:
                state = self.state[job.id] = self.first_seen(job, view)
            if job.region >= 0 and job.region != state.location:  # the engine moved it as asked
                state.extra_s += self.context.migration_s(job.cpus, job.gpus)
                state.location = job.region
            self._advance_advice(job, state, now)
            if job.running:
                free[job.region] += self.full_rate_cpus(job, job.region)
            region = self._decide(job, state, view, current, effective, step_end, free)
            if region is not None:
                out[job.id] = region
                free[region] -= self.full_rate_cpus(job, region)
        self._last_effective = effective
        return out

    def _decide(
        self,
        job: JobInfo,
        state: _JobState,
        view: JobView,
        current: np.ndarray,
        effective: np.ndarray,
        step_end: float,
        free: list[float],
    ) -> int | None:
        now, here = view.now_s, state.location
        if job.running and not job.interruptible:
            return job.region
        fits = [r for r in state.points if free[r] >= self.full_rate_cpus(job, r)]
        mig_s = self.context.migration_s(job.cpus, job.gpus)
        need = self.time_left_s(job, view)
        # Regions where the job can still finish by its deadline (a move adds the restore time).
        reachable = [r for r in fits if r == here or now + need[r] + mig_s <= job.deadline_s]
        # Compulsory phase: the cheapest point that can still finish in time, until the job is done. It
        # begins at the job's latest start, or at the last call before it: the engine surely calls at the next
        # hour and, for a job with nothing running, at deadline - remaining critical path (the latest start
        # itself when the job needs no more than that; earlier for a DAG whose stages run in waves). The
        # stage guard's rule. Once in it, a DAG's last wave does not wait again for its latest start, where
        # any other job holding CPUs would make it late.
        wake = step_end
        if now < job.deadline_s - job.remaining_s < wake:
            wake = job.deadline_s - job.remaining_s
        if state.compulsory or due(job.deadline_s - need[here], now, wake):
            state.compulsory = True
            return min(reachable or [here], key=lambda r: effective[r] + self.move_cost(job, here, r, current))
        total = state.length_s + state.extra_s
        done = min(1.0, max(0.0, 1.0 - need[here] / total))
        th = state.threshold
        if not job.interruptible:
            gain = th.integral(done, 1.0)
            best, choice = 0.0, None
            for r in reachable:
                rest = need[r] + (mig_s if r != here else 0.0)
                hours = max(1, min(MAX_HORIZON_H, math.ceil(rest / SECONDS_PER_HOUR) + 1))
                slots = Slots(view.forecast_gco2_per_kwh(r, hours) * self.pue[r], now, math.inf)
                pseudo = slots.mean_intensity(now, rest) * (1.0 - done) + self.move_cost(job, here, r, current) - gain
                if pseudo < best:
                    best, choice = pseudo, r
            return choice
        share = min((step_end - now) / total, 1.0 - done)
        gain = th.integral(done, done + share)
        options: list[tuple[float, int | None, float]] = [(0.0, None, 0.0)]  # (pseudo-cost, region, cost)
        for r in reachable:
            cost = effective[r] * share + self.move_cost(job, here, r, current)
            options.append((cost - gain, r, cost))
        if self.cfg.epsilon is not None and state.advice is not None:
            kept = self._consistent(job, state, options, done, share, step_end, current, self.cfg.epsilon)
            options = kept or [self._advice_step(state, now)]
        _, choice, cost = min(options, key=lambda o: o[0])
        if choice is not None:
            state.cost += cost
        return choice

    def _advice_step(self, state: _JobState, now: float) -> tuple[float, int | None, float]:
        """The option the advice takes now (on in its region inside its intervals, else off)."""
        assert state.advice is not None
        on = any(a <= now < b for a, b in state.advice)
        return (0.0, state.advice_region if on else None, 0.0)

    def _consistent(
        self,
        job: JobInfo,
        state: _JobState,
        options: list[tuple[float, int | None, float]],
        done: float,
        share: float,
        step_end: float,
        current: np.ndarray,
        epsilon: float,
    ) -> list[tuple[float, int | None, float]]:
        """The options that keep ST-CLIP's consistency budget over this step."""
        assert state.advice is not None
        th, ra = state.threshold, state.advice_region
        step = sum(max(0.0, min(b, step_end) - max(a, state.advice_until_s)) for a, b in state.advice)
        advice_done = min(1.0, state.advice_done + step / state.length_s)
        advice_cost = state.advice_cost + step / state.length_s * float(current[ra] * self.pue[ra])
        budget = (1.0 + epsilon) * (advice_cost + (1.0 - advice_done) * th.low)
        keep = []
        for option in options:
            _, r, cost = option
            after = done + (share if r is not None else 0.0)
            to_advice = self.move_cost(job, state.location if r is None else r, ra, current)
            rest = (1.0 - after) * th.low + max(0.0, advice_done - after) * (th.high - th.low)
            if state.cost + cost + to_advice + rest <= budget:
                keep.append(option)
        return keep

    def _advance_advice(self, job: JobInfo, state: _JobState, now: float) -> None:
        """Counts the advice's work and cost up to ``now`` (at the intensities of the last epoch)."""
        if state.advice is None or now <= state.advice_until_s:
            return
        ran = sum(max(0.0, min(b, now) - max(a, state.advice_until_s)) for a, b in state.advice)
        if ran > 0 and self._last_effective is not None:
            ra = state.advice_region
            if state.advice_done == 0.0:
                state.advice_cost += self.move_cost(job, job.home, ra, self._last_effective / self.pue)
            state.advice_cost += ran / state.length_s * float(self._last_effective[ra])
            state.advice_done = min(1.0, state.advice_done + ran / state.length_s)
        state.advice_until_s = now


def cheapest_hours(slots: Slots, need_s: float) -> tuple[list[tuple[float, float]], float]:
    """The cheapest forecast slots covering ``need_s`` of running, as sorted intervals, and their mean cost.

    Slots are taken in increasing cost (ties: earlier first); the last one only as far as needed. When the
    forecast covers less than ``need_s``, every slot is taken and the rest runs right after the last.
    """
    order = np.lexsort((slots.start_s, slots.intensity))
    left, cost = need_s, 0.0
    out: list[tuple[float, float]] = []
    for k in order:
        if left <= 0:
            break
        a, b = float(slots.start_s[k]), float(slots.end_s[k])
        take = min(b - a, left)
        out.append((a, a + take))
        cost += take * float(slots.intensity[k])
        left -= take
    if left > 0:
        end = slots.known_until_s if slots.end_s.size else 0.0
        out.append((end, end + left))
        cost += left * float(slots.intensity[-1] if slots.intensity.size else 0.0)
    return sorted(out), cost / need_s if need_s > 0 else 0.0
