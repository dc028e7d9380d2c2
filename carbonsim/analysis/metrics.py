"""Turning a raw simulation result into tables and a flat summary.

Latency parts of a request routed to region r from origin o (all in ms):

* retry = time from its arrival to its last routing (0 unless a fault made it go round again);
* network = RTT(o, r) + jitter (the outbound trip is RTT / 2 + jitter, the response RTT / 2);
* queue = service start - arrival at the region;
* service = service end - service start (a batch's duration for every member);
* total = retry + network + queue + service.

A request's SLO is violated if it completed with total > SLO, or was rejected or failed. Requests still in
flight when the run stopped count in neither the numerator nor the denominator of the violation rate and
are reported separately.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from carbonsim.core.energy import EnergyAccount, account
from carbonsim.core.recorder import COMPLETED, FAILED, IN_FLIGHT, REJECTED, STATUS_NAMES
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.core.simulation import SimResult

PERCENTILES = (50, 95, 99)
#: Fault counters in every summary (0 in runs without faults).
FAULT_KEYS = ("server_failures", "server_repairs", "outages", "cuts", "routed_to_unavailable")


def energy_account(result: SimResult) -> EnergyAccount:
    """Computes the energy account of a result from its scenario's power and PUE figures."""
    regions = result.world.scenario.regions
    return account(
        result.records,
        [[p.count for p in specs] for specs in result.pools],
        [[(p.idle_w, p.busy_w) for p in r.pools] for r in regions],
        [r.pue for r in regions],
        result.world.carbon,
        result.world.price,
        result.end_s,
    )


def request_table(result: SimResult, energy: EnergyAccount, lo: int = 0, hi: int | None = None) -> pd.DataFrame:
    """One row per request with its path, latency parts, SLO outcome, energy and carbon.

    Args:
        result: The run.
        energy: Its energy account.
        lo: First request id of the rows (default: all requests).
        hi: One past the last request id (default: the last request).
    """
    sc = result.world.scenario
    req = result.requests
    rec = result.records
    hi = len(req) if hi is None else hi
    part = slice(lo, hi)
    region_all = rec.region[part]
    routed = region_all >= 0
    region = np.where(routed, region_all, 0).astype(np.int64)
    origin = req.origin[part].astype(np.int64)
    rtt = np.where(routed, result.world.rtt_ms[origin, region], np.nan)
    jitter_ms = req.jitter_ms[part].astype(np.float64)
    network_ms = rtt + jitter_ms
    arrival_s = req.arrival_s[part]
    routed_s = arrival_s
    retry_ms = np.zeros(hi - lo)
    rerouted = {i: t for i, t in rec.rerouted_s.items() if lo <= i < hi}
    if rerouted:
        ids = np.fromiter(rerouted, dtype=np.int64, count=len(rerouted)) - lo
        routed_s = routed_s.copy()
        routed_s[ids] = np.fromiter(rerouted.values(), dtype=np.float64, count=ids.size)
        retry_ms = (routed_s - arrival_s) * 1e3
    start_s, end_s = rec.start_s[part], rec.end_s[part]
    # The same arithmetic as the simulator's outbound delay (half round trip + jitter, in seconds).
    at_region_s = routed_s + (rtt * 0.5e-3 + jitter_ms * 1e-3)
    queue_ms = (start_s - at_region_s) * 1e3
    service_ms = (end_s - start_s) * 1e3
    total_ms = retry_ms + network_ms + queue_ms + service_ms
    workload = req.workload[part].astype(np.int64)
    slo = np.array([w.slo_ms for w in sc.workloads])[workload]
    status = rec.status[part]
    slo_met = (status == COMPLETED) & (total_ms <= slo)
    hardware = np.array(sorted({p.hardware for r in sc.regions for p in r.pools}) or [""])
    pool_hw = np.full(hi - lo, "", dtype=object)
    pool = rec.pool[part]
    for ri, r in enumerate(sc.regions):
        for pi, p in enumerate(r.pools):
            pool_hw[(region_all == ri) & (pool == pi)] = p.hardware
    return pd.DataFrame(
        {
            "request_id": np.arange(lo, hi, dtype=np.int64),
            "workload": pd.Categorical.from_codes(workload, pd.Index(sc.workload_names)),
            "origin": pd.Categorical.from_codes(origin, pd.Index(sc.origin_names)),
            "region": pd.Categorical.from_codes(
                np.where(routed, region_all, -1).astype(np.int64), pd.Index(sc.region_names)
            ),
            "hardware": pd.Categorical(pool_hw, categories=[*hardware.tolist(), ""]),
            "status": pd.Categorical.from_codes(status.astype(np.int64), pd.Index(STATUS_NAMES)),
            "batch_size": rec.batch_size[part],
            "retries": rec.retries[part],
            "arrival_s": arrival_s,
            "start_s": start_s,
            "end_s": end_s,
            "retry_ms": retry_ms,
            "network_ms": network_ms,
            "queue_ms": queue_ms,
            "service_ms": service_ms,
            "total_ms": total_ms,
            "slo_ms": slo,
            "slo_met": slo_met,
            "energy_j": energy.request_energy_j[part],
            "carbon_g": energy.request_carbon_g[part],
            # float64 here so that means over requests accumulate in double precision.
            "intensity_gco2_per_kwh": energy.request_intensity[part].astype(np.float64),
        }
    )


def _latency_stats(total_ms: pd.Series, prefix: str = "") -> dict[str, float]:
    x = total_ms.to_numpy(dtype=np.float64)
    if x.size == 0:
        return {
            f"{prefix}mean_latency_ms": float("nan"),
            **{f"{prefix}p{p}_latency_ms": float("nan") for p in PERCENTILES},
        }
    out = {f"{prefix}mean_latency_ms": float(x.mean())}
    for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES), strict=True):
        out[f"{prefix}p{p}_latency_ms"] = float(v)
    return out


def _violation_pct(df: pd.DataFrame) -> float:
    finished = df["status"] != STATUS_NAMES[IN_FLIGHT]
    n = int(finished.sum())
    return float((~df.loc[finished, "slo_met"]).sum() / n * 100.0) if n else float("nan")


def summary(df: pd.DataFrame, energy: EnergyAccount, result: SimResult) -> dict[str, Any]:
    """The run's headline numbers as a flat mapping (keys carry units)."""
    status = df["status"]
    done = df[status == STATUS_NAMES[COMPLETED]]
    busy_kwh = float(energy.busy_kwh.sum())
    idle_kwh = float(energy.idle_kwh.sum())
    carbon_g = float(energy.busy_g.sum() + energy.idle_g.sum())
    completed = len(done)
    out: dict[str, Any] = {
        "requests": len(df),
        "completed": completed,
        "rejected": int((status == STATUS_NAMES[REJECTED]).sum()),
        "failed": int((status == STATUS_NAMES[FAILED]).sum()),
        "in_flight": int((status == STATUS_NAMES[IN_FLIGHT]).sum()),
        **_latency_stats(done["total_ms"]),
        "mean_network_ms": float(done["network_ms"].mean()) if completed else float("nan"),
        "mean_queue_ms": float(done["queue_ms"].mean()) if completed else float("nan"),
        "mean_service_ms": float(done["service_ms"].mean()) if completed else float("nan"),
        "slo_violation_pct": _violation_pct(df),
        "slo_excess_s": slo_excess_s(df, result),
        "mean_intensity_gco2_per_kwh": float(done["intensity_gco2_per_kwh"].mean()) if completed else float("nan"),
        "energy_kwh": busy_kwh + idle_kwh,
        "busy_energy_kwh": busy_kwh,
        "idle_energy_kwh": idle_kwh,
        "carbon_kg": carbon_g / 1e3,
        "busy_carbon_kg": float(energy.busy_g.sum()) / 1e3,
        "idle_carbon_kg": float(energy.idle_g.sum()) / 1e3,
        "carbon_g_per_request": carbon_g / completed if completed else float("nan"),
        "electricity_cost_usd": float(energy.cost_usd.sum()),
        "carbon_cost_usd": carbon_cost_usd(carbon_g, result),
        "cost_usd": float(energy.cost_usd.sum()) + carbon_cost_usd(carbon_g, result),
        "sim_hours": result.horizon_s / SECONDS_PER_HOUR,
        "sim_end_s": result.end_s,
        "retries": int(result.records.retries.sum()),
        "interrupted_services": len(result.records.lost_service),
        **{key: result.fault_stats.get(key, 0.0) for key in FAULT_KEYS},
    }
    return out


def slo_excess_s(df: pd.DataFrame, result: SimResult) -> float:
    """The SLA penalty of the seed research's reward: total time by which responses came after their deadline.

    A request's deadline is its arrival + SLO. Completed: max(0, latency - SLO). Still in flight when the run
    stopped: the time from its deadline to the stop, if past. Rejected or failed: the time past its deadline
    when it reached the region (almost always none). In s; the learning environment credits the same total
    as it accrues (:mod:`carbonsim.core.ledger`).
    """
    status = df["status"]
    done = df[status == STATUS_NAMES[COMPLETED]]
    excess_ms = float((done["total_ms"] - done["slo_ms"]).clip(lower=0.0).sum())
    waiting = df[status == STATUS_NAMES[IN_FLIGHT]]
    excess_ms += float(((result.end_s - waiting["arrival_s"]) * 1e3 - waiting["slo_ms"]).clip(lower=0.0).sum())
    unserved = np.flatnonzero(status.isin([STATUS_NAMES[REJECTED], STATUS_NAMES[FAILED]]).to_numpy())
    if unserved.size:
        req = result.requests
        ids = df["request_id"].to_numpy()[unserved]
        rtt = result.world.rtt_ms[req.origin[ids].astype(np.intp), result.records.region[ids].astype(np.intp)]
        at_region_ms = rtt * 0.5 + req.jitter_ms[ids].astype(np.float64)
        excess_ms += float(np.maximum(at_region_ms - df["slo_ms"].to_numpy()[unserved], 0.0).sum())
    return excess_ms / 1e3


def carbon_cost_usd(carbon_g: float, result: SimResult) -> float:
    """Cost of ``carbon_g`` grams of CO2eq at the scenario's carbon price (USD per tonne)."""
    return carbon_g / 1e6 * result.world.scenario.carbon_price_usd_per_tonne


def add_reduction(summary_: dict[str, Any], baseline: dict[str, Any], baseline_name: str) -> None:
    """Adds reductions against a baseline run on the same arrivals (in place).

    ``carbon_reduction_pct`` compares total emissions (busy + idle, kg); ``intensity_reduction_pct`` compares
    the mean intensity of the serving region, the metric of the published reference tables.
    """
    summary_["baseline_policy"] = baseline_name
    summary_["baseline_carbon_kg"] = baseline["carbon_kg"]
    summary_["carbon_reduction_pct"] = _reduction(summary_["carbon_kg"], baseline["carbon_kg"])
    summary_["intensity_reduction_pct"] = _reduction(
        summary_["mean_intensity_gco2_per_kwh"], baseline["mean_intensity_gco2_per_kwh"]
    )


def add_inference_bound(summary_: dict[str, Any], bound_kg: float) -> None:
    """Adds the clairvoyant inference bound and the run's share of the bound's reduction (in place).

    ``share_of_bound_pct`` = (baseline - run) / (baseline - bound) x 100 on total emissions: 100 % means the
    run reached the bound. The bound covers SLO-feasible routings under a utilisation cap
    (:func:`carbonsim.bounds.inference_bound`); a run that breaks the SLO can exceed 100 %.
    """
    summary_["bound_carbon_kg"] = bound_kg
    base = summary_.get("baseline_carbon_kg", float("nan"))
    gap = base - bound_kg
    summary_["share_of_bound_pct"] = float((base - summary_["carbon_kg"]) / gap * 100.0) if gap > 0 else float("nan")


def _reduction(value: float, base: float) -> float:
    return float((1.0 - value / base) * 100.0) if base else float("nan")


def per_workload(df: pd.DataFrame) -> pd.DataFrame:
    """Latency, SLO, intensity, energy and carbon per workload (energy and carbon: attributed busy part)."""
    rows = []
    for name, g in df.groupby("workload", observed=False):
        done = g[g["status"] == STATUS_NAMES[COMPLETED]]
        rows.append(
            {
                "workload": name,
                "requests": len(g),
                "completed": len(done),
                **_latency_stats(done["total_ms"]),
                "slo_violation_pct": _violation_pct(g),
                "mean_intensity_gco2_per_kwh": float(done["intensity_gco2_per_kwh"].mean()) if len(done) else np.nan,
                "energy_kwh": float(g["energy_j"].sum()) / 3.6e6,
                "carbon_kg": float(g["carbon_g"].sum()) / 1e3,
            }
        )
    return pd.DataFrame(rows)


def region_energy_fields(result: SimResult, energy: EnergyAccount, ri: int) -> dict[str, float]:
    """The columns of :func:`per_region` that come from the energy account and the world, not the requests.

    Utilisation (busy server-seconds over capacity), time-weighted mean intensity over the run, busy and idle
    energy, carbon and cost of region ``ri``.
    """
    hours = energy.busy_kwh.shape[1]
    hour_len = np.clip(result.end_s - np.arange(hours) * SECONDS_PER_HOUR, 0.0, SECONDS_PER_HOUR)
    capacity_s = result.world.servers[ri] * result.end_s
    return {
        "utilization_pct": (
            float(energy.busy_server_s[ri].sum()) / capacity_s * 100.0
            if np.isfinite(capacity_s) and capacity_s > 0
            else np.nan
        ),
        "mean_intensity_gco2_per_kwh": float(
            (result.world.carbon.values[ri, :hours] * hour_len).sum() / max(hour_len.sum(), 1e-12)
        ),
        "busy_energy_kwh": float(energy.busy_kwh[ri].sum()),
        "idle_energy_kwh": float(energy.idle_kwh[ri].sum()),
        "energy_kwh": float(energy.busy_kwh[ri].sum() + energy.idle_kwh[ri].sum()),
        "carbon_kg": float(energy.busy_g[ri].sum() + energy.idle_g[ri].sum()) / 1e3,
        "cost_usd": float(energy.cost_usd[ri].sum()),
    }


def hour_energy_fields(energy: EnergyAccount, h: int) -> dict[str, float]:
    """The columns of :func:`hourly` that come from the energy account: energy, carbon and cost of hour ``h``."""
    return {
        "energy_kwh": float(energy.busy_kwh[:, h].sum() + energy.idle_kwh[:, h].sum()),
        "carbon_kg": float(energy.busy_g[:, h].sum() + energy.idle_g[:, h].sum()) / 1e3,
        "cost_usd": float(energy.cost_usd[:, h].sum()),
    }


def per_region(df: pd.DataFrame, energy: EnergyAccount, result: SimResult) -> pd.DataFrame:
    """Routing share, latency, utilisation, energy (busy and idle), carbon and cost per region."""
    sc = result.world.scenario
    rows = []
    n = len(df)
    for ri, name in enumerate(sc.region_names):
        g = df[df["region"] == name]
        done = g[g["status"] == STATUS_NAMES[COMPLETED]]
        rows.append(
            {
                "region": name,
                "grid_zone": sc.regions[ri].grid_zone,
                "mean_rtt_ms": float(result.world.rtt_ms[:, ri].mean()),
                "requests": len(g),
                "routing_share_pct": len(g) / n * 100.0 if n else np.nan,
                "completed": len(done),
                "rejected": int((g["status"] == STATUS_NAMES[REJECTED]).sum()),
                "mean_latency_ms": float(done["total_ms"].mean()) if len(done) else np.nan,
                "mean_queue_ms": float(done["queue_ms"].mean()) if len(done) else np.nan,
                **region_energy_fields(result, energy, ri),
            }
        )
    return pd.DataFrame(rows)


#: Quantiles (in %) of :func:`latency_quantiles`: every half per cent, and the far tail finer.
LATENCY_QUANTILES_PCT = (*np.arange(0.0, 99.0, 0.5), 99.0, 99.5, 99.9, 100.0)


def latency_quantiles(df: pd.DataFrame) -> pd.DataFrame:
    """The latency distribution of completed requests per workload, as quantiles (for CDF plots).

    Columns: ``workload``, ``quantile_pct``, ``latency_ms`` and the workload's ``slo_ms``.
    """
    rows: list[dict[str, Any]] = []
    done = df[df["status"] == STATUS_NAMES[COMPLETED]]
    for name, g in done.groupby("workload", observed=True):
        rows += quantile_rows(str(name), g["total_ms"].to_numpy(), float(g["slo_ms"].iloc[0]))
    return pd.DataFrame(rows, columns=["workload", "quantile_pct", "latency_ms", "slo_ms"])


def quantile_rows(workload: str, latency_ms: np.ndarray, slo_ms: float) -> list[dict[str, Any]]:
    """The rows of :func:`latency_quantiles` for one workload's latencies."""
    values = np.percentile(latency_ms, LATENCY_QUANTILES_PCT)
    return [
        {"workload": workload, "quantile_pct": q, "latency_ms": float(v), "slo_ms": slo_ms}
        for q, v in zip(LATENCY_QUANTILES_PCT, values, strict=True)
    ]


def signals(result: SimResult) -> pd.DataFrame:
    """The hourly intensity and price of every region over the run (long format).

    Columns: ``hour`` (simulated), ``utc`` (calendar hour, empty for synthetic signals without a start),
    ``region``, ``intensity_gco2_per_kwh``, ``price_usd_per_kwh``.
    """
    world = result.world
    hours = min(world.carbon.hours, max(1, int(np.ceil(result.end_s / SECONDS_PER_HOUR))))
    start = world.scenario.start_utc
    utc = (
        pd.date_range(pd.Timestamp(start), periods=hours, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
        if start
        else pd.Index([""] * hours)
    )
    frames = [
        pd.DataFrame(
            {
                "hour": np.arange(hours),
                "utc": utc,
                "region": name,
                "intensity_gco2_per_kwh": world.carbon.values[ri, :hours],
                "price_usd_per_kwh": world.price.values[ri, :hours],
            }
        )
        for ri, name in enumerate(world.scenario.region_names)
    ]
    return pd.concat(frames, ignore_index=True)


def hourly(df: pd.DataFrame, energy: EnergyAccount) -> pd.DataFrame:
    """Per simulated hour: arrivals, latency and SLO by arrival hour; energy, carbon and cost by hour."""
    hours = energy.busy_kwh.shape[1]
    hour = (df["arrival_s"] // SECONDS_PER_HOUR).astype(np.int64)
    rows = []
    for h in range(hours):
        g = df[hour == h]
        done = g[g["status"] == STATUS_NAMES[COMPLETED]]
        rows.append(
            {
                "hour": h,
                "arrivals": len(g),
                "completed": len(done),
                "mean_latency_ms": float(done["total_ms"].mean()) if len(done) else np.nan,
                "p95_latency_ms": float(np.percentile(done["total_ms"], 95)) if len(done) else np.nan,
                "slo_violation_pct": _violation_pct(g) if len(g) else np.nan,
                "mean_intensity_gco2_per_kwh": float(done["intensity_gco2_per_kwh"].mean()) if len(done) else np.nan,
                **hour_energy_fields(energy, h),
            }
        )
    return pd.DataFrame(rows)


#: Width of the bins of :func:`timeline`, in s.
TIMELINE_BIN_S = 300.0


def timeline(df: pd.DataFrame, bin_s: float = TIMELINE_BIN_S) -> pd.DataFrame:
    """Per bin of arrival time (5 minutes): what happened to the requests that arrived in it.

    Columns: ``start_s`` (of the bin), ``arrivals``, ``completed``, ``rejected``, ``failed``, ``retried``
    (requests routed again after a fault), ``slo_violation_pct`` and ``mean_latency_ms`` (completed ones):
    how an outage or a burst of failures shows up over a run.
    """
    columns = [
        "start_s",
        "arrivals",
        "completed",
        "rejected",
        "failed",
        "retried",
        "slo_violation_pct",
        "mean_latency_ms",
    ]
    if df.empty:
        return pd.DataFrame(columns=columns)
    b = (df["arrival_s"].to_numpy() // bin_s).astype(np.int64)
    status = df["status"].cat.codes.to_numpy()
    finished = status != IN_FLIGHT
    violated = finished & ~df["slo_met"].to_numpy()
    done = status == COMPLETED
    n_bins = int(b.max()) + 1

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(b[mask], minlength=n_bins)

    latency_sum = np.bincount(b[done], weights=df["total_ms"].to_numpy()[done], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame(
            {
                "start_s": np.arange(n_bins) * bin_s,
                "arrivals": count(np.ones(len(b), dtype=bool)),
                "completed": count(done),
                "rejected": count(status == REJECTED),
                "failed": count(status == FAILED),
                "retried": count(df["retries"].to_numpy() > 0),
                "slo_violation_pct": count(violated) / count(finished) * 100.0,
                "mean_latency_ms": latency_sum / count(done),
            }
        )
    return out


def routing(df: pd.DataFrame) -> pd.DataFrame:
    """Share of each origin's requests sent to each region, in % (rows: origins)."""
    table = pd.crosstab(df["origin"], df["region"], normalize="index", dropna=False) * 100.0
    return table.rename_axis(index="origin", columns=None).reset_index()
