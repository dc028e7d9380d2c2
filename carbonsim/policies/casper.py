"""CASPER: carbon-aware routing by a linear program per planning interval.

Souza et al., "CASPER: Carbon-Aware Scheduling and Provisioning for Distributed Web Services", IGSC 2023:
every interval, a linear program decides how many servers each region provisions and how each origin's
traffic is split across regions, minimising emissions subject to a latency SLO and server capacity.

carbonsim's version, at every ``plan`` call (``planning_interval_min``):

* **Demand** ``lambda[o, w]`` (requests/s) per origin and workload: the arrivals of the previous interval
  divided by its length (persistence, the simplest load forecast; CASPER assumes a load prediction).
* **Routes**: origin ``o`` may send workload ``w`` to region ``r`` only if round trip + profiled p95 service
  time <= (1 - ``slo_margin``) x SLO; if no region qualifies, only the lowest-latency region is allowed.
* **Linear program** over the rates ``f[o, w, r] >= 0`` (``scipy.optimize.linprog``, HiGHS):

      minimise    sum f[o, w, r] x s[w, r] x (busy_w_r - idle_w_r) x PUE_r x I_r      (the emissions that
                                                                                    routing changes)
      subject to  sum_r f[o, w, r] = lambda[o, w]
                  sum_{o,w} f[o, w, r] x s[w, r] <= max_utilisation x servers_r

  with ``s`` the profiled mean service time and ``I_r`` the intensity forecast for the current hour. If
  the capacity cannot hold the demand, the capacity rows are dropped for that interval (and counted in
  ``infeasible_intervals``): the demand must be served somewhere.
* **Decisions** follow the split exactly with a smooth weighted round robin per (origin, workload): each
  region earns its share on every request and the region with the most credit serves it.

Faults: the program uses only routes to regions that can take the origin's requests at planning time, and
the capacity of the servers working then; a request whose planned region has failed since goes to the
available region with the most credit.

Deviations: carbonsim's servers are always on, so CASPER's provisioning (turning servers off) does not
change energy here; only its routing is reproduced. Until the first interval with arrivals, requests go
to the lowest-latency region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from carbonsim._schema import ConfigError
from carbonsim.config import PolicyConfig
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.policies.base import BasePolicy, argmin
from carbonsim.policies.registry import register


@dataclass(frozen=True)
class CasperConfig(PolicyConfig):
    """Parameters of CASPER.

    Attributes:
        name: ``casper``.
        max_utilisation: Highest planned utilisation of a region's servers (keeps queues short).
        slo_margin: Fraction of the SLO kept free when choosing feasible routes.
    """

    max_utilisation: float = 0.7
    slo_margin: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.max_utilisation <= 1:
            raise ConfigError(f"max_utilisation: expected a fraction in (0, 1], got {self.max_utilisation!r}")
        if not 0 <= self.slo_margin < 1:
            raise ConfigError(f"slo_margin: expected a fraction in [0, 1), got {self.slo_margin!r}")


@register("casper", CasperConfig)
class Casper(BasePolicy):
    """CASPER routing (see the module docstring)."""

    def __init__(self, config: CasperConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.split: list[list[list[float]]] | None = None
        self.credit: list[list[list[float]]] = []
        self.infeasible_intervals = 0

    def reset(self, context: PolicyContext) -> None:
        """Computes the feasible routes and clears the plan."""
        super().reset(context)
        n_o, n_r = context.rtt_ms.shape
        n_w = len(context.workload_names)
        p95 = context.service_estimate_ms["p95"]
        slo = np.array(context.slo_ms)[None, :, None] * (1 - self.cfg.slo_margin)
        latency = context.rtt_ms[:, None, :] + p95[None, :, :]
        allowed = latency <= slo
        nearest = latency.argmin(axis=2)
        for o in range(n_o):
            for w in range(n_w):
                if not allowed[o, w].any():
                    allowed[o, w, nearest[o, w]] = True
        self.allowed = allowed
        self.nearest = nearest
        self.split = None
        # Plain nested lists: read and updated once per request, where numpy's per-call overhead dominates.
        self.credit = [[[0.0] * n_r for _ in range(n_w)] for _ in range(n_o)]
        self.infeasible_intervals = 0

    def plan(self, view: PlanView) -> None:
        """Solves the routing program for the coming interval."""
        ctx = self.context
        assert ctx is not None
        counts = view.arrivals_last_interval
        if view.now_s == 0 or counts.sum() == 0:
            return
        demand = counts / view.interval_s
        n_o, n_w, n_r = self.allowed.shape
        allowed = self.allowed
        if view.available:
            # Faults: only routes to regions that can take the origin's requests now; a pair left without
            # one keeps its nearest available region.
            usable = np.array(view.available, dtype=bool)[:, None, :]
            allowed = allowed & usable
            latency = ctx.rtt_ms[:, None, :] + ctx.service_estimate_ms["p95"][None, :, :]
            for o, w in zip(*np.nonzero(~allowed.any(axis=2)), strict=True):
                if usable[o, 0].any():
                    allowed[o, w, int(np.argmin(np.where(usable[o, 0], latency[o, w], np.inf)))] = True
        o_idx, w_idx, r_idx = np.nonzero(allowed)
        service_s = ctx.mean_service_ms[w_idx, r_idx] * 1e-3
        intensity = np.array([view.forecast_gco2_per_kwh(r, 1)[0] for r in range(n_r)])
        marginal_w = (np.array(ctx.busy_w) - np.array(ctx.idle_w)) * np.array(ctx.pue)
        cost = service_s * marginal_w[r_idx] * intensity[r_idx]
        n = o_idx.size
        demand_row = o_idx * n_w + w_idx
        a_eq = sp.csr_matrix((np.ones(n), (demand_row, np.arange(n))), shape=(n_o * n_w, n))
        b_eq = demand.reshape(-1)
        a_ub = sp.csr_matrix((service_s, (r_idx, np.arange(n))), shape=(n_r, n))
        servers = view.working_servers or ctx.servers
        b_ub = self.cfg.max_utilisation * np.array(servers, dtype=np.float64)
        finite = np.isfinite(b_ub)
        res = linprog(cost, A_ub=a_ub[finite], b_ub=b_ub[finite], A_eq=a_eq, b_eq=b_eq, method="highs")
        if res.status == 2:
            self.infeasible_intervals += 1
            res = linprog(cost, A_eq=a_eq, b_eq=b_eq, method="highs")
        if res.status != 0:
            raise RuntimeError(f"casper: the routing program failed at {view.now_s:.0f} s: {res.message}")
        rates = np.zeros((n_o, n_w, n_r))
        rates[o_idx, w_idx, r_idx] = res.x
        total = rates.sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            split = np.where(total > 0, rates / total, 0.0)
        # Pairs without recent demand follow the lowest-latency feasible region.
        for o, w in zip(*np.nonzero(total[:, :, 0] == 0), strict=True):
            split[o, w, self.nearest[o, w]] = 1.0
        self.split = split.tolist()

    def decide(self, view: DecisionView) -> int:
        """Smooth weighted round robin over the planned split of the request's origin and workload."""
        o, w = view.origin, view.workload
        if self.split is None:
            nearest = int(self.nearest[o, w])
            return nearest if view.available[nearest] else argmin(view.static_latency_ms("p95"))
        credit = self.credit[o][w]
        share = self.split[o][w]
        best = 0
        for r in range(len(credit)):
            credit[r] += share[r]
            if credit[r] > credit[best]:
                best = r
        available = view.available
        if not available[best]:
            # The planned region cannot take the request now (a fault since the plan): the available
            # region with the most credit, or the nearest available one.
            usable = [r for r in range(len(credit)) if available[r]]
            if usable:
                best = max(usable, key=lambda r: credit[r])
        credit[best] -= 1.0
        return best
