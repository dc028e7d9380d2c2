"""Running totals of a run's carbon, energy, cost and SLO excess, credited as outcomes become known.

The energy model (:mod:`carbonsim.core.energy`) computes a finished run's account from its records. A
learning agent needs the same quantities *during* the run, one increment per decision. The ledger
decomposes the account so that every part is credited when it is known:

* the idle floor, every server of a finite pool drawing ``idle_w`` x PUE from time 0, accrues with
  simulated time and is credited for the interval since the last credit;
* a service adds ``(busy_w - idle_w) x PUE`` (``busy_w`` x PUE for unlimited pools, which have no idle
  servers) over its interval, split among a batch's members, credited when it **ends**;
* a request's SLO excess, the time by which its response comes after its deadline (arrival + SLO), is
  credited **as it accrues**: once the deadline has passed, every credit adds the time since, and when the
  service ends the rest up to the response's known arrival at the user (``max(0, latency - SLO)`` in all);
* a rejected request is credited when it is rejected, with no energy and with ``unserved`` counted; its
  excess is the time past the deadline when it reached the region (almost always none);
* when the run stops, services still running are credited up to the stop, as the energy model does, and a
  request still in flight has accrued the time from its deadline to the stop.

Summed over a run, the credits equal the energy model's totals (idle floor x time + busy marginal x busy
time equals idle x idle time + busy x busy time) and the analysis layer's SLO excess, up to floating-point
rounding. Carbon and cost integrate the piecewise-constant hourly signals exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonsim.core.energy import J_PER_KWH
from carbonsim.core.recorder import REJECTED, RequestRecords
from carbonsim.core.signals import HourlySignal


@dataclass(frozen=True)
class Credit:
    """Outcomes credited over one interval.

    Attributes:
        carbon_g: Emissions in g CO2eq.
        energy_kwh: Facility energy in kWh.
        cost_usd: Electricity cost in USD.
        slo_excess_s: SLO excess accrued in the interval, in s (see the module docstring).
        completed: Requests completed in the interval.
        unserved: Requests rejected or failed in the interval.
    """

    carbon_g: float
    energy_kwh: float
    cost_usd: float
    slo_excess_s: float
    completed: int
    unserved: int


class Ledger:
    """Credits a running simulation's outcomes incrementally.

    Args:
        records: The run's per-request records (read, never written).
        arrival_s: Arrival time per request in s.
        origin: Origin index per request.
        workload: Workload index per request.
        jitter_ms: Outbound network jitter per request in ms.
        rtt_ms: Round trip per origin and region in ms.
        slo_ms: SLO per workload in ms.
        pool_counts: Servers per region and pool (``inf`` for unlimited).
        pool_power_w: (idle_w, busy_w) per region and pool.
        pue: PUE per region.
        carbon: Intensity signal in gCO2eq/kWh.
        price: Price signal in USD/kWh.
    """

    def __init__(
        self,
        records: RequestRecords,
        arrival_s: np.ndarray,
        origin: np.ndarray,
        workload: np.ndarray,
        jitter_ms: np.ndarray,
        rtt_ms: np.ndarray,
        slo_ms: np.ndarray,
        pool_counts: list[list[float]],
        pool_power_w: list[list[tuple[float, float]]],
        pue: list[float],
        carbon: HourlySignal,
        price: HourlySignal,
    ) -> None:
        self.records = records
        self.arrival_s = arrival_s
        self.origin = origin.astype(np.intp)
        self.workload = workload.astype(np.intp)
        self.jitter_ms = jitter_ms.astype(np.float64)
        self.rtt_ms = rtt_ms
        self.slo_ms = slo_ms
        self.carbon = carbon
        self.price = price
        n_regions = len(pue)
        max_pools = max(len(p) for p in pool_counts)
        # Marginal facility power of a busy server over the idle floor, per region and pool, in W.
        self.marginal_w = np.zeros((n_regions, max_pools))
        floor = np.zeros(n_regions)
        for r, pools in enumerate(pool_power_w):
            for p, (idle_w, busy_w) in enumerate(pools):
                finite = np.isfinite(pool_counts[r][p])
                self.marginal_w[r, p] = (busy_w - (idle_w if finite else 0.0)) * pue[r]
                if finite:
                    floor[r] += pool_counts[r][p] * idle_w * pue[r]
        self.floor_w = floor
        # The idle floor of all regions as one signal (W x intensity, W x price): one integral per credit.
        self._floor_carbon = HourlySignal(
            (floor[:, None] * carbon.values).sum(axis=0, keepdims=True), "idle floor carbon"
        )
        self._floor_price = HourlySignal(
            (floor[:, None] * price.values).sum(axis=0, keepdims=True), "idle floor cost", allow_negative=True
        )
        self._floor_total_w = float(floor.sum())
        self._marginal = self.marginal_w.tolist()
        self._rtt = rtt_ms.tolist()
        self._slo = [float(x) for x in slo_ms]
        self.credited = np.zeros(records.region.size, dtype=bool)
        self.deadline_s = arrival_s + self.slo_ms[self.workload] * 1e-3
        #: SLO excess already credited per request, in s.
        self.accrued_s = np.zeros(records.region.size)
        self.first_open = 0
        self.last_s = 0.0

    def credit(self, now_s: float, routed: int, final: bool = False) -> Credit:
        """Credits what became known since the last call.

        Args:
            now_s: Current simulated time in s (not before the last call's).
            routed: Number of requests routed so far (requests ``0 .. routed - 1``, in arrival order).
            final: The run has stopped at ``now_s``: services still running are credited up to it.

        Returns:
            The outcomes credited in this interval.
        """
        t0 = self.last_s
        if now_s < t0:
            raise ValueError(f"credit at {now_s} s is before the last credit at {t0} s")
        self.last_s = now_s
        j_per_kwh = J_PER_KWH
        carbon_j = self._floor_carbon.integral_one(0, t0, now_s)
        cost_j = self._floor_price.integral_one(0, t0, now_s)
        energy_j = self._floor_total_w * (now_s - t0)

        lo = self.first_open
        rec = self.records
        credited = self.credited[lo:routed]
        # Requests finish out of order: find the newly finished ones among those not yet credited (during the
        # run a finished request has an end time or the status rejected / failed; completed is set at the end).
        finished = ~np.isnan(rec.end_s[lo:routed]) | (rec.status[lo:routed] >= REJECTED)
        if final:
            finished |= ~np.isnan(rec.start_s[lo:routed])
        open_ = ~credited
        new = np.flatnonzero(finished & open_)
        credited[new] = True
        # Excess accrued by requests still waiting or in service whose deadline has passed.
        deadline = self.deadline_s[lo:routed]
        accrued = self.accrued_s[lo:routed]
        late = np.flatnonzero(open_ & ~finished & (deadline < now_s))
        slo_excess_s = 0.0
        if late.size:
            so_far = now_s - deadline[late]
            slo_excess_s = float((so_far - accrued[late]).sum())
            accrued[late] = so_far
        slo_excess_ms = 0.0
        completed = unserved = 0
        carbon = self.carbon
        price = self.price
        for k in new.tolist():
            i = lo + k
            if rec.status[i] >= REJECTED:
                unserved += 1
                rtt = self._rtt[int(self.origin[i])][int(rec.region[i])]
                at_region_ms = rtt * 0.5 + float(self.jitter_ms[i])
                excess_ms = max(at_region_ms - self._slo[int(self.workload[i])], 0.0)
                slo_excess_ms += excess_ms - float(self.accrued_s[i]) * 1e3
                continue
            r = int(rec.region[i])
            start = float(rec.start_s[i])
            end = float(rec.end_s[i])
            ended = end == end  # not NaN
            if not ended:
                end = now_s
            power_w = self._marginal[r][max(int(rec.pool[i]), 0)] / int(rec.batch_size[i])
            carbon_j += power_w * carbon.integral_one(r, start, end)
            cost_j += power_w * price.integral_one(r, start, end)
            energy_j += power_w * (end - start)
            if ended:
                completed += 1
                # The analysis layer's latency arithmetic (carbonsim.analysis.metrics.request_table).
                rtt = self._rtt[int(self.origin[i])][r]
                jitter = float(self.jitter_ms[i])
                at_region_s = float(self.arrival_s[i]) + (rtt * 0.5e-3 + jitter * 1e-3)
                total_ms = (rtt + jitter) + (start - at_region_s) * 1e3 + (end - start) * 1e3
                excess_ms = max(total_ms - self._slo[int(self.workload[i])], 0.0)
                slo_excess_ms += excess_ms - float(self.accrued_s[i]) * 1e3
            elif (late_s := now_s - float(self.deadline_s[i])) > 0:
                # Still in service when the run stops (final credit): the time past its deadline so far.
                slo_excess_ms += (late_s - float(self.accrued_s[i])) * 1e3
        if credited.size and credited[0]:
            open_left = np.flatnonzero(~credited)
            self.first_open = lo + (int(open_left[0]) if open_left.size else credited.size)
        return Credit(
            carbon_g=carbon_j / j_per_kwh,
            energy_kwh=energy_j / j_per_kwh,
            cost_usd=cost_j / j_per_kwh,
            slo_excess_s=slo_excess_s + slo_excess_ms / 1e3,
            completed=completed,
            unserved=unserved,
        )


__all__ = ["Credit", "Ledger"]
