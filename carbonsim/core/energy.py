"""Energy, emissions and electricity cost of a finished run, computed from the records.

Model (every quantity per region, ``PUE`` the region's power usage effectiveness):

* A server draws ``busy_w`` while serving a request or batch and ``idle_w`` otherwise, from time 0 to the
  end of the run; facility power is IT power x PUE. Unlimited pools have no idle servers.
* Busy energy of a service interval [s, e] = busy_w x PUE x (e - s), attributed to the request (split
  equally among the members of a batch).
* Emissions = integral of power x intensity(t) dt. Intensity is constant within each hour, so the
  integral is exact when intervals are split at hour boundaries (done through the signal's cumulative
  integral).
* Idle energy per hour = idle_w x PUE x (servers x hour length - busy server-seconds in that hour).
* Cost = energy x the hour's price of the region.

Units: J and kWh (1 kWh = 3.6e6 J), g CO2eq, USD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonsim.core.recorder import RequestRecords
from carbonsim.core.signals import SECONDS_PER_HOUR, HourlySignal

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class EnergyAccount:
    """Energy, carbon and cost of a run.

    Attributes:
        request_energy_j: Busy facility energy attributed to each request in J (0 if never served).
        request_carbon_g: Emissions attributed to each request in g CO2eq.
        request_intensity: Intensity of the serving region when service started, gCO2eq/kWh (NaN if never
            started).
        busy_kwh: Busy facility energy per region and hour in kWh, shape (regions, hours).
        idle_kwh: Idle facility energy per region and hour in kWh.
        busy_g: Busy emissions per region and hour in g.
        idle_g: Idle emissions per region and hour in g.
        cost_usd: Electricity cost per region and hour in USD.
        busy_server_s: Busy server-seconds per region and hour.
    """

    request_energy_j: np.ndarray
    request_carbon_g: np.ndarray
    request_intensity: np.ndarray
    busy_kwh: np.ndarray
    idle_kwh: np.ndarray
    busy_g: np.ndarray
    idle_g: np.ndarray
    cost_usd: np.ndarray
    busy_server_s: np.ndarray


def account(
    records: RequestRecords,
    pool_counts: list[list[float]],
    pool_power_w: list[list[tuple[float, float]]],
    pue: list[float],
    carbon: HourlySignal,
    price: HourlySignal,
    end_s: float,
) -> EnergyAccount:
    """Computes the energy account of a finished run.

    Args:
        records: Per-request outcomes.
        pool_counts: Servers per region and pool (``inf`` for unlimited).
        pool_power_w: (idle_w, busy_w) per region and pool.
        pue: PUE per region.
        carbon: Intensity signal in gCO2eq/kWh.
        price: Price signal in USD/kWh.
        end_s: Time the run stopped, in s (service still running then is counted up to here).

    Returns:
        The account.
    """
    n_regions = len(pue)
    hours = int(np.ceil(end_s / SECONDS_PER_HOUR)) if end_s > 0 else 0
    started = ~np.isnan(records.start_s)
    idx = np.flatnonzero(started)
    region = records.region[idx].astype(np.int64)
    pool = records.pool[idx].astype(np.int64)
    start = records.start_s[idx]
    end = np.where(np.isnan(records.end_s[idx]), end_s, records.end_s[idx])
    share = 1.0 / records.batch_size[idx].astype(np.float64)

    max_pools = max(len(p) for p in pool_counts)
    busy_w_table = np.zeros((n_regions, max_pools))
    for r, pools in enumerate(pool_power_w):
        for p, (_idle, busy) in enumerate(pools):
            busy_w_table[r, p] = busy
    pue_arr = np.asarray(pue, dtype=np.float64)
    facility_busy_w = busy_w_table[region, pool] * pue_arr[region] * share

    n = records.region.size
    energy_j = np.zeros(n)
    carbon_g = np.zeros(n)
    intensity = np.full(n, np.nan)
    energy_j[idx] = facility_busy_w * (end - start)
    carbon_g[idx] = facility_busy_w * carbon.integral(region, start, end) / J_PER_KWH
    intensity[idx] = carbon.values[region, np.minimum((start // SECONDS_PER_HOUR).astype(np.int64), carbon.hours - 1)]

    busy_s = np.zeros((n_regions, max_pools, max(hours, 1)))
    _add_busy_seconds(busy_s, region, pool, start, end, share)
    busy_s = busy_s[:, :, :hours]

    hour_len = np.clip(end_s - np.arange(hours) * SECONDS_PER_HOUR, 0.0, SECONDS_PER_HOUR)
    intens = carbon.values[:, :hours]
    prices = price.values[:, :hours]
    busy_kwh = np.zeros((n_regions, hours))
    idle_kwh = np.zeros((n_regions, hours))
    busy_g = np.zeros((n_regions, hours))
    for r in range(n_regions):
        for p, count in enumerate(pool_counts[r]):
            idle_w, busy_w = pool_power_w[r][p]
            busy_kwh[r] += busy_w * pue[r] * busy_s[r, p] / J_PER_KWH
            if np.isfinite(count):
                idle_s = count * hour_len - busy_s[r, p]
                idle_kwh[r] += idle_w * pue[r] * idle_s / J_PER_KWH
    # Busy emissions per hour from the hourly busy energy (equal to the sum over requests, since intensity
    # is constant within an hour).
    busy_g = busy_kwh * intens
    idle_g = idle_kwh * intens
    cost = (busy_kwh + idle_kwh) * prices
    return EnergyAccount(energy_j, carbon_g, intensity, busy_kwh, idle_kwh, busy_g, idle_g, cost, busy_s.sum(axis=1))


def _add_busy_seconds(
    out: np.ndarray,
    region: np.ndarray,
    pool: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    share: np.ndarray,
) -> None:
    """Adds each interval's (weighted) overlap with every hour into ``out[region, pool, hour]``."""
    h0 = (start // SECONDS_PER_HOUR).astype(np.int64)
    h1 = np.maximum(h0, np.ceil(end / SECONDS_PER_HOUR).astype(np.int64) - 1)
    same = h0 == h1
    np.add.at(out, (region[same], pool[same], h0[same]), (end[same] - start[same]) * share[same])
    # Intervals crossing hour boundaries are rare (services are short): split them one by one.
    for k in np.flatnonzero(~same):
        for h in range(int(h0[k]), int(h1[k]) + 1):
            lo = max(start[k], h * SECONDS_PER_HOUR)
            hi = min(end[k], (h + 1) * SECONDS_PER_HOUR)
            out[region[k], pool[k], h] += (hi - lo) * share[k]
