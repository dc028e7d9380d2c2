"""Energy, emissions and electricity cost of a finished run, computed from the records.

Model (every quantity per region, ``PUE`` the region's power usage effectiveness):

* A server draws ``busy_w`` while serving a request or batch and ``idle_w`` otherwise, from time 0 to the
  end of the run; facility power is IT power x PUE. Unlimited pools have no idle servers.
* Busy energy of a service interval [s, e] = busy_w x PUE x (e - s), attributed to the request (split
  equally among the members of a batch).
* Emissions = integral of power x intensity(t) dt. Intensity is constant within each hour, so the
  integral is exact when intervals are split at hour boundaries (done through the signal's cumulative
  integral).
* Idle energy per hour = idle_w x PUE x (servers x hour length - busy server-seconds - offline
  server-seconds in that hour). A server offline (failed, or in a region that is down) draws nothing.
* Service that a fault interrupted drew busy power up to the interruption: it counts as busy energy of the
  request it served (which was then served again, or failed).
* Cost = energy x the hour's price of the region.

Units: J and kWh (1 kWh = 3.6e6 J), g CO2eq, USD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonsim.core.recorder import RequestRecords
from carbonsim.core.signals import SECONDS_PER_HOUR, HourlySignal

J_PER_KWH = 3.6e6
#: Requests processed at a time by :func:`account`.
ACCOUNT_CHUNK = 65_536


@dataclass(frozen=True)
class EnergyAccount:
    """Energy, carbon and cost of a run.

    Attributes:
        request_energy_j: Busy facility energy attributed to each request in J (0 if never served).
        request_carbon_g: Emissions attributed to each request in g CO2eq.
        request_intensity: Intensity of the serving region when service started, gCO2eq/kWh (NaN if never
            started); float32, which holds hourly intensities to 7 significant digits.
        busy_kwh: Busy facility energy per region and hour in kWh, shape (regions, hours).
        idle_kwh: Idle facility energy per region and hour in kWh.
        busy_g: Busy emissions per region and hour in g.
        idle_g: Idle emissions per region and hour in g.
        cost_usd: Electricity cost per region and hour in USD.
        busy_server_s: Busy server-seconds per region and hour.
        offline_server_s: Server-seconds without power (failed servers, regions down) per region and hour.
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
    offline_server_s: np.ndarray


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
    max_pools = max(len(p) for p in pool_counts)
    busy_w_table = np.zeros((n_regions, max_pools))
    for r, pools in enumerate(pool_power_w):
        for p, (_idle, busy) in enumerate(pools):
            busy_w_table[r, p] = busy
    facility_w_table = busy_w_table * np.asarray(pue, dtype=np.float64)[:, None]

    n = records.region.size
    energy_j = np.zeros(n)
    carbon_g = np.zeros(n)
    intensity = np.full(n, np.nan, dtype=np.float32)
    # One spare hour: a service that starts exactly when the run stops (on an hour boundary) falls in it,
    # with zero length.
    busy_s = np.zeros((n_regions, max_pools, hours + 1))
    # Chunks bound the temporaries (index arrays, interval ends, integrals) to a fixed size, so the
    # account's peak memory grows only by its three output columns per request.
    for lo in range(0, n, ACCOUNT_CHUNK):
        hi = min(n, lo + ACCOUNT_CHUNK)
        start_all = records.start_s[lo:hi]
        idx = np.flatnonzero(~np.isnan(start_all))
        region = records.region[lo:hi][idx].astype(np.intp)
        pool = records.pool[lo:hi][idx].astype(np.intp)
        start = start_all[idx]
        end = records.end_s[lo:hi][idx]
        end = np.where(np.isnan(end), end_s, end)
        share = 1.0 / records.batch_size[lo:hi][idx]
        facility_w = facility_w_table[region, pool] * share
        energy_j[lo:hi][idx] = facility_w * (end - start)
        carbon_g[lo:hi][idx] = facility_w * carbon.integral(region, start, end) / J_PER_KWH
        hour = np.minimum((start // SECONDS_PER_HOUR).astype(np.intp), carbon.hours - 1)
        intensity[lo:hi][idx] = carbon.values[region, hour]
        _add_busy_seconds(busy_s, region, pool, start, end, share)
    if records.lost_service:
        lost = np.array(records.lost_service, dtype=np.float64)
        req = lost[:, 0].astype(np.intp)
        region, pool = lost[:, 1].astype(np.intp), lost[:, 2].astype(np.intp)
        start, end, share = lost[:, 3], lost[:, 4], lost[:, 5]
        facility_w = facility_w_table[region, pool] * share
        np.add.at(energy_j, req, facility_w * (end - start))
        np.add.at(carbon_g, req, facility_w * carbon.integral(region, start, end) / J_PER_KWH)
        _add_busy_seconds(busy_s, region, pool, start, end, share)
    busy_s = busy_s[:, :, :hours]
    offline_s = _offline_seconds(records.offline, n_regions, max_pools, hours, end_s)

    hour_len = np.clip(end_s - np.arange(hours) * SECONDS_PER_HOUR, 0.0, SECONDS_PER_HOUR)
    intens = carbon.values[:, :hours]
    prices = price.values[:, :hours]
    busy_kwh = np.zeros((n_regions, hours))
    idle_kwh = np.zeros((n_regions, hours))
    for r in range(n_regions):
        for p, count in enumerate(pool_counts[r]):
            idle_w, busy_w = pool_power_w[r][p]
            busy_kwh[r] += busy_w * pue[r] * busy_s[r, p] / J_PER_KWH
            if np.isfinite(count):
                idle_s = count * hour_len - busy_s[r, p] - offline_s[r, p]
                idle_kwh[r] += idle_w * pue[r] * idle_s / J_PER_KWH
    # Busy emissions per hour from the hourly busy energy (equal to the sum over requests, since intensity
    # is constant within an hour).
    busy_g = busy_kwh * intens
    idle_g = idle_kwh * intens
    cost = (busy_kwh + idle_kwh) * prices
    return EnergyAccount(
        energy_j,
        carbon_g,
        intensity,
        busy_kwh,
        idle_kwh,
        busy_g,
        idle_g,
        cost,
        busy_s.sum(axis=1),
        offline_s.sum(axis=1),
    )


def _offline_seconds(
    changes: list[tuple[int, int, float, float]], n_regions: int, n_pools: int, hours: int, end_s: float
) -> np.ndarray:
    """Offline server-seconds per region, pool and hour from the (time-ordered) changes of the offline count."""
    out = np.zeros((n_regions, n_pools, hours))
    level: dict[tuple[int, int], tuple[float, float]] = {}  # (region, pool) -> (since s, servers offline)
    for region, pool, t, offline in [*changes, *((r, p, end_s, 0.0) for r in range(n_regions) for p in range(n_pools))]:
        since, current = level.get((region, pool), (0.0, 0.0))
        if current > 0 and t > since:
            _spread(out[region, pool], since, min(t, end_s), current)
        level[(region, pool)] = (t, offline)
    return out


def _spread(row: np.ndarray, start: float, end: float, weight: float) -> None:
    """Adds ``weight`` x the overlap of [start, end) with every hour to ``row`` (one value per hour)."""
    for h in range(int(start // SECONDS_PER_HOUR), min(int(np.ceil(end / SECONDS_PER_HOUR)), row.size)):
        lo = max(start, h * SECONDS_PER_HOUR)
        hi = min(end, (h + 1) * SECONDS_PER_HOUR)
        if hi > lo:
            row[h] += (hi - lo) * weight


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
    flat = (region[same] * out.shape[1] + pool[same]) * out.shape[2] + h0[same]
    out += np.bincount(flat, weights=(end[same] - start[same]) * share[same], minlength=out.size).reshape(out.shape)
    # Intervals crossing hour boundaries are rare (services are short): split them one by one.
    for k in np.flatnonzero(~same):
        for h in range(int(h0[k]), int(h1[k]) + 1):
            lo = max(start[k], h * SECONDS_PER_HOUR)
            hi = min(end[k], (h + 1) * SECONDS_PER_HOUR)
            out[region[k], pool[k], h] += (hi - lo) * share[k]
