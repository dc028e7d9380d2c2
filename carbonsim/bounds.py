"""Hindsight-optimal bounds, computed offline with a linear program (``scipy.optimize.linprog``, HiGHS).

They are **clairvoyant**: they know every arrival, every job's duration and the true intensity of every
hour. No policy can do better on the same instance, so a policy's reduction can be reported as a
fraction of the bound's.

Batch jobs (:func:`batch_bound`, in :mod:`carbonsim.job_bound`): a time-indexed linear program over
stages, regions and hours with precedence, CPU and GPU capacity and deadlines; for independent jobs it is
the job-level fluid relaxation. Inference (:func:`inference_bound`): fluid routing per hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from carbonsim.core.arrivals import Requests
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.core.world import World
from carbonsim.job_bound import BatchBound, batch_bound, job_bounds

__all__ = ["BatchBound", "InferenceBound", "batch_bound", "inference_bound", "job_bounds"]


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
    # Solved with costs scaled to at most 1 (HiGHS's optimality tolerances are absolute: a few mg per request
    # would otherwise sit below them); the optimum is recomputed in grams from the solution.
    scale = float(cost.max()) if cost.size and cost.max() > 0 else 1.0
    res = linprog(cost / scale, A_ub=a_ub, b_ub=cap_limit[finite], A_eq=a_eq, b_eq=b_eq, bounds=bounds_, method="highs")
    relaxed = False
    if res.status == 2:
        relaxed = True
        res = linprog(cost / scale, A_eq=a_eq, b_eq=b_eq, bounds=bounds_, method="highs")
    if res.status != 0:
        raise ValueError(f"inference bound: the linear program failed: {res.message}")
    res.fun = float(cost @ res.x)
    idle_g = 0.0
    window = np.minimum(SECONDS_PER_HOUR, horizon_s - h_idx * SECONDS_PER_HOUR)
    for r, _p, pool in pools:
        if pool.count is not None:
            pue = scenario.regions[r].pue
            idle_g += float((pool.count * pool.idle_w * pue * world.carbon.values[r, :hours] * window).sum() / 3.6e6)
    return InferenceBound(idle_g + float(res.fun), float(res.fun), relaxed, n)
