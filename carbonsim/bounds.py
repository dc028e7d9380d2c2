"""Hindsight-optimal bounds, computed offline with a linear program (``scipy.optimize.linprog``, HiGHS).

They are **clairvoyant**: they know every arrival, every job's duration and the true intensity of every
hour. No policy can do better on the same instance, so a policy's reduction can be reported as a
fraction of the bound's.

Batch jobs (:func:`batch_bound`): the time-expanded fluid relaxation of the scheduling problem. With
``x[j, r, t]`` the seconds job ``j`` runs in region ``r`` during hour ``t``:

    minimise    sum_{j,r,t} cpus_j W PUE_r I_r(t) x[j, r, t] / 3.6e6                      (g CO2)
    subject to  sum_{r,t} x[j, r, t] = duration_j                                         (all work done)
                sum_r x[j, r, t] <= |hour t within [arrival_j, deadline_j]|               (no parallel copies)
                sum_j cpus_j x[j, r, t] <= capacity_r x 3600                              (CPU-seconds per hour)
                x >= 0

A job may be split across hours and regions at will (the relaxation of suspend/resume and of
non-interruptible runs), which is what makes this a lower bound on the emissions of every policy that
completes all jobs within their deadlines, for the same power model. With elastic scaling
(``batch.max_scale`` > 1), interruptible jobs get one column per allocation ``k``, each adding
``c(k) - c(k - 1)`` work per second for the full power of one allocation (the concave speed-up makes the
lower ``k`` columns fill first), so the bound covers scaling policies such as CarbonScaler too.

If some deadline cannot be met (capacity), the program lets the work of such jobs run after the deadline
up to the end of the signal, first minimising that late work (lexicographically), and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from carbonsim.core.arrivals import Requests
from carbonsim.core.jobs import Jobs, speedups
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.core.world import World


@dataclass(frozen=True)
class BatchBound:
    """The batch bound of one instance.

    Attributes:
        carbon_g: Minimum emissions of the jobs in g (clairvoyant).
        energy_kwh: Energy of that schedule in kWh (every schedule that completes the jobs has the same).
        late_s: Job-seconds that had to run after their deadline (0 when every deadline can be met).
        regions: ``any`` (jobs may run in any region with a cluster) or ``home`` (only in their home).
        variables: Size of the linear program.
        excluded: Jobs left out: those that fit no cluster (they fail under every policy) and those that
            cannot finish before the end of the signal even if run from arrival (in flight under every
            policy).
    """

    carbon_g: float
    energy_kwh: float
    late_s: float
    regions: str
    variables: int
    excluded: int


def batch_bound(world: World, jobs: Jobs, regions: str = "any") -> BatchBound:
    """Solves the batch-job bound of a run (see the module docstring).

    Args:
        world: The compiled scenario (true intensity, PUE, cluster capacities).
        jobs: The jobs of the run.
        regions: ``any``: a job may run in every region whose cluster fits it; ``home``: only at home.

    Returns:
        The bound.

    Raises:
        ValueError: for an unknown ``regions``, jobs with stages, several tasks or GPUs, or if the solver fails.
    """
    if regions not in ("any", "home"):
        raise ValueError(f"regions: expected any or home, got {regions!r}")
    if not jobs.independent:
        raise ValueError(
            "batch bound: it covers independent one-task CPU jobs; these jobs have stages, parallel tasks or GPUs "
            "(a bound with precedence is not implemented yet)"
        )
    scenario = world.scenario
    capacity = np.array([r.batch_cpus for r in scenario.regions], dtype=np.float64)
    pue = np.array([r.pue for r in scenario.regions])
    watts = scenario.batch.cpu_busy_w
    hours = world.carbon.hours
    end_s = hours * SECONDS_PER_HOUR
    if not len(jobs):
        return BatchBound(0.0, 0.0, 0.0, regions, 0, 0)
    fits = (jobs.cpus <= capacity.max()) & (jobs.arrival_s + jobs.duration_s <= end_s)
    idx = np.flatnonzero(fits)
    if not idx.size:
        return BatchBound(0.0, 0.0, 0.0, regions, 0, len(jobs))

    cols_job: list[np.ndarray] = []
    cols_region: list[np.ndarray] = []
    cols_hour: list[np.ndarray] = []
    cols_len: list[np.ndarray] = []
    cols_late: list[np.ndarray] = []
    cols_k: list[np.ndarray] = []
    # Work per second of the k-th allocation.
    marginal = np.diff(speedups(scenario.batch.max_scale, scenario.batch.parallel_fraction))
    for j in idx:
        a = float(jobs.arrival_s[j])
        d = min(float(jobs.deadline_s[j]), end_s)
        allowed = [int(jobs.home[j])] if regions == "home" else np.flatnonzero(capacity >= jobs.cpus[j]).tolist()
        if regions == "home" and capacity[allowed[0]] < jobs.cpus[j]:
            allowed = np.flatnonzero(capacity >= jobs.cpus[j]).tolist()
        h0 = int(a // SECONDS_PER_HOUR)
        t = np.arange(h0, hours)
        lo = np.maximum(a, t * SECONDS_PER_HOUR)
        hi = np.minimum(end_s, (t + 1) * SECONDS_PER_HOUR)
        in_window = np.maximum(0.0, np.minimum(d, hi) - lo)
        after = np.maximum(0.0, hi - np.maximum(lo, d))
        top = marginal.size if jobs.interruptible[j] else 1
        for part, flag in ((in_window, False), (after, True)):
            keep = part > 0
            for r in allowed:
                for alloc in range(1, top + 1):
                    cols_job.append(np.full(keep.sum(), j))
                    cols_region.append(np.full(keep.sum(), r))
                    cols_hour.append(t[keep])
                    cols_len.append(part[keep])
                    cols_late.append(np.full(keep.sum(), flag))
                    cols_k.append(np.full(keep.sum(), alloc))
    job = np.concatenate(cols_job)
    reg = np.concatenate(cols_region)
    hour = np.concatenate(cols_hour)
    length = np.concatenate(cols_len)
    is_late = np.concatenate(cols_late)
    k = np.concatenate(cols_k)
    work = marginal[k - 1]
    on_time = ~is_late
    # Usually every deadline can be met: try without the late columns first (half the program).
    res, late_s = _solve(
        world, jobs, idx, job[on_time], reg[on_time], hour[on_time], length[on_time], k[on_time], work[on_time], None
    )
    columns = on_time
    if res.status == 2:  # infeasible: some deadline cannot be met
        res, late_s = _solve(world, jobs, idx, job, reg, hour, length, k, work, is_late)
        columns = np.ones(job.size, dtype=bool)
    _check(res, "carbon")
    cpus = jobs.cpus[job[columns]].astype(np.float64)
    energy_kwh = float((cpus * watts * pue[reg[columns]] * res.x).sum() / 3.6e6)
    return BatchBound(float(res.fun), energy_kwh, late_s, regions, int(columns.sum()), int(len(jobs) - idx.size))


def _solve(
    world: World,
    jobs: Jobs,
    idx: np.ndarray,
    job: np.ndarray,
    reg: np.ndarray,
    hour: np.ndarray,
    length: np.ndarray,
    k: np.ndarray,
    work: np.ndarray,
    is_late: np.ndarray | None,
) -> tuple[Any, float]:
    """Builds and solves the program over the given columns; with late columns, lexicographically."""
    scenario = world.scenario
    capacity = np.array([r.batch_cpus for r in scenario.regions], dtype=np.float64)
    pue = np.array([r.pue for r in scenario.regions])
    hours = world.carbon.hours
    n = job.size
    cpus = jobs.cpus[job].astype(np.float64)
    cost = cpus * scenario.batch.cpu_busy_w * pue[reg] * world.carbon.values[reg, hour] / 3.6e6  # g per s
    # Work: one equality row per job.
    job_row = np.searchsorted(idx, job)
    a_eq = sp.csr_matrix((work, (job_row, np.arange(n))), shape=(idx.size, n))
    b_eq = jobs.duration_s[idx].astype(np.float64)
    # No parallel copies: per (job, hour, allocation k, on-time/late part), the sum over regions <= the
    # slot length.
    late_flag = np.zeros(n, dtype=np.int64) if is_late is None else is_late.astype(np.int64)
    key = ((job_row * hours + hour) * (int(k.max()) + 1) + k) * 2 + late_flag
    slot_keys, slot_row = np.unique(key, return_inverse=True)
    slot_len = np.zeros(slot_keys.size)
    slot_len[slot_row] = length
    a_slot = sp.csr_matrix((np.ones(n), (slot_row, np.arange(n))), shape=(slot_keys.size, n))
    # Capacity: per (region, hour), CPU-seconds <= capacity x 3600.
    cap_keys, cap_row = np.unique(reg * hours + hour, return_inverse=True)
    a_cap = sp.csr_matrix((cpus, (cap_row, np.arange(n))), shape=(cap_keys.size, n))
    b_cap = capacity[cap_keys // hours] * SECONDS_PER_HOUR
    a_ub = sp.vstack([a_slot, a_cap]).tocsr()
    b_ub = np.concatenate([slot_len, b_cap])
    late_s = 0.0
    if is_late is not None:
        first = linprog(is_late.astype(np.float64), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs")
        _check(first, "late work")
        late_s = float(first.fun)
        # Fix the late work at its minimum (with a small tolerance for the solver) and minimise carbon.
        a_ub = sp.vstack([a_ub, sp.csr_matrix(is_late.astype(np.float64))]).tocsr()
        b_ub = np.concatenate([b_ub, [late_s * (1 + 1e-9) + 1e-6]])
    return linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs"), late_s


def _check(res: object, what: str) -> None:
    status = getattr(res, "status", -1)
    if status != 0:
        raise ValueError(f"batch bound ({what}): the linear program failed: {getattr(res, 'message', '')}")


@dataclass(frozen=True)
class InferenceBound:
    """The inference bound of one run.

    Attributes:
        carbon_g: Minimum emissions of the servers over the arrival window in g (idle + busy; clairvoyant).
        busy_carbon_g: Its routing-dependent part (busy minus idle power while serving).
        capacity_relaxed: Whether the utilisation cap had to be dropped because the SLO-feasible routes
            cannot carry the demand under it.
        variables: Size of the linear program.
    """

    carbon_g: float
    busy_carbon_g: float
    capacity_relaxed: bool
    variables: int


def inference_bound(
    world: World, requests: Requests, horizon_s: float, max_utilisation: float = 0.7, slo_margin: float = 0.0
) -> InferenceBound:
    """The fluid routing bound of a run's requests (clairvoyant: true arrivals, service times, intensity).

    With ``n[o, w, r, p, h]`` the requests of origin ``o`` and workload ``w`` arriving in hour ``h`` that
    pool ``p`` of region ``r`` serves:

        minimise    idle emissions of every server over the window
                    + sum n x s[o, w, p, h] x (busy_w_p - idle_w_p) x PUE_r x I_r(h) / 3.6e6
        subject to  sum_{r,p} n[o, w, r, p, h] = arrivals[o, w, h]
                    sum_{o,w} n[o, w, r, p, h] x s[o, w, p, h] <= max_utilisation x servers_p x 3600
                    n >= 0, and only SLO-feasible routes: round trip + profiled p95 <= (1 - slo_margin) x SLO
                    (the lowest-latency region if none is)

    where ``s`` is the mean sampled service time of those requests on the pool's hardware, scaled by the
    pool's batch factor at its largest batch per request (the least server time a request can take). It
    is a lower bound on the emissions of every policy that uses only SLO-feasible routes within the
    utilisation cap (over the same window, same power model); policies that route elsewhere (e.g.
    carbon-first) may emit less, at the SLO's expense.
    """
    scenario = world.scenario
    n_o, n_w = len(scenario.origins), len(scenario.workloads)
    hours = int(np.ceil(horizon_s / SECONDS_PER_HOUR))
    hour_of = np.minimum((requests.arrival_s // SECONDS_PER_HOUR).astype(np.int64), hours - 1)
    group = (requests.origin.astype(np.int64) * n_w + requests.workload.astype(np.int64)) * hours + hour_of
    counts = np.bincount(group, minlength=n_o * n_w * hours).astype(np.float64)
    p95 = np.array(world.estimates["p95"])  # (workloads, regions)
    slo = np.array([w.slo_ms for w in scenario.workloads]) * (1 - slo_margin)
    latency = world.rtt_ms[:, None, :] + p95[None, :, :]
    allowed = latency <= slo[None, :, None]
    nearest = latency.argmin(axis=2)
    for o in range(n_o):
        for w in range(n_w):
            if not allowed[o, w].any():
                allowed[o, w, nearest[o, w]] = True
    pools = [(r, p, pool) for r, region in enumerate(scenario.regions) for p, pool in enumerate(region.pools)]
    # Mean sampled service time (ms) per group and hardware, times the per-request batch factor.
    mean_service: dict[str, np.ndarray] = {}
    for hw, times in requests.service_ms.items():
        total = np.bincount(group, weights=times, minlength=counts.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_service[hw] = np.where(counts > 0, total / counts, 0.0)
    cols: list[tuple[int, int, float, float, int]] = []  # (group, pool index, seconds/request, g/request, cap row)
    h_idx = np.arange(hours)
    for k, (r, _p, pool) in enumerate(pools):
        pue = scenario.regions[r].pue
        idle = 0.0 if pool.count is None else pool.idle_w
        for w in range(n_w):
            factors = scenario.workloads[w].service[pool.hardware].batch_time_factor
            b = pool.max_batch_size
            per_request = (factors[b - 1] / b) if b > 1 else 1.0
            for o in range(n_o):
                if not allowed[o, w, r]:
                    continue
                g = (o * n_w + w) * hours + h_idx
                s = mean_service[pool.hardware][g] * 1e-3 * per_request
                grams = s * (pool.busy_w - idle) * pue * world.carbon.values[r, h_idx] / 3.6e6
                cols.extend(
                    zip(g.tolist(), [k] * hours, s.tolist(), grams.tolist(), (k * hours + h_idx).tolist(), strict=True)
                )
    arr = np.array(cols, dtype=np.float64)
    grp = arr[:, 0].astype(np.int64)
    sec = arr[:, 2]
    cost = arr[:, 3]
    cap_row = arr[:, 4].astype(np.int64)
    n = grp.size
    present = np.flatnonzero(counts > 0)
    row = np.searchsorted(present, grp)
    keep = np.isin(grp, present)
    a_eq = sp.csr_matrix((np.ones(keep.sum()), (row[keep], np.flatnonzero(keep))), shape=(present.size, n))
    b_eq = counts[present]
    cap_limit = np.array(
        [max_utilisation * pool.count * SECONDS_PER_HOUR if pool.count is not None else np.inf for _, _, pool in pools]
    )
    cap_limit = np.repeat(cap_limit, hours)
    finite = np.isfinite(cap_limit)
    a_ub = sp.csr_matrix((sec, (cap_row, np.arange(n))), shape=(cap_limit.size, n))[finite]
    bounds_ = [(0.0, 0.0) if not k else (0.0, None) for k in keep]
    res = linprog(cost, A_ub=a_ub, b_ub=cap_limit[finite], A_eq=a_eq, b_eq=b_eq, bounds=bounds_, method="highs")
    relaxed = False
    if res.status == 2:
        relaxed = True
        res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=bounds_, method="highs")
    if res.status != 0:
        raise ValueError(f"inference bound: the linear program failed: {res.message}")
    idle_g = 0.0
    window = np.minimum(SECONDS_PER_HOUR, horizon_s - h_idx * SECONDS_PER_HOUR)
    for r, _p, pool in pools:
        if pool.count is not None:
            pue = scenario.regions[r].pue
            idle_g += float((pool.count * pool.idle_w * pue * world.carbon.values[r, :hours] * window).sum() / 3.6e6)
    return InferenceBound(idle_g + float(res.fun), float(res.fun), relaxed, n)
