"""A run's tables computed chunk by chunk, so that memory does not grow with a full per-request table.

:mod:`carbonsim.analysis.metrics` turns one request table (a pandas DataFrame, about 150 bytes per request)
into the summary and the breakdowns. For tens of millions of requests that table, and pandas' copies of
it, would dominate the run's memory, so the runner uses :class:`StreamedTables` instead: it builds the
request table one chunk of request ids at a time (:func:`~carbonsim.analysis.metrics.request_table` with
``lo``/``hi``), adds each chunk's counts and sums into running totals, and keeps only what exact quantiles
need: the latency of every completed request with its workload and arrival hour (13 bytes per request).
Every number is the one :mod:`carbonsim.analysis.metrics` computes from the whole table (sums in another
order may differ in the last bits; quantiles are exact, from all the values), which the tests check on
runs split into many chunks. :meth:`StreamedTables.write_requests` streams the per-request table to
Parquet chunk by chunk in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carbonsim.analysis import metrics
from carbonsim.core.energy import EnergyAccount
from carbonsim.core.recorder import COMPLETED, FAILED, IN_FLIGHT, REJECTED
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.core.simulation import SimResult

#: Requests per chunk (about 150 MB of request table at a time).
CHUNK_REQUESTS = 1_000_000


class StreamedTables:
    """The summary and breakdowns of a run, from its request table read in chunks.

    Args:
        result: The run.
        energy: Its energy account.
        chunk: Requests per chunk.
    """

    def __init__(self, result: SimResult, energy: EnergyAccount, chunk: int = CHUNK_REQUESTS) -> None:
        self.result = result
        self.energy = energy
        self.chunk = chunk
        sc = result.world.scenario
        self.n = len(result.requests)
        n_w, n_r, n_o = len(sc.workloads), len(sc.regions), len(sc.origins)
        self.hours = energy.busy_kwh.shape[1]
        arrival_hours = int(result.requests.arrival_s[-1] // SECONDS_PER_HOUR) + 1 if self.n else 0
        self.n_bins = int(result.requests.arrival_s[-1] // metrics.TIMELINE_BIN_S) + 1 if self.n else 0
        zeros = np.zeros
        # Totals per status, workload, region, origin x region, arrival hour and timeline bin.
        self.status = zeros(4, dtype=np.int64)
        self.sums: dict[str, float] = dict.fromkeys(
            ("network_ms", "queue_ms", "service_ms", "intensity", "slo_excess_s"), 0.0
        )
        self.wl = {k: zeros(n_w) for k in ("requests", "completed", "finished", "violated", "energy_j", "carbon_g")}
        self.wl["intensity"] = zeros(n_w)
        self.rg = {k: zeros(n_r) for k in ("requests", "completed", "rejected", "total_ms", "queue_ms")}
        self.routing = zeros((n_o, n_r))
        n_h = max(self.hours, arrival_hours)
        self.hr = {k: zeros(n_h) for k in ("arrivals", "completed", "finished", "violated", "intensity")}
        self.tl = {
            k: zeros(self.n_bins)
            for k in ("arrivals", "completed", "rejected", "failed", "retried", "finished", "violated", "latency")
        }
        self._latency: list[np.ndarray] = []
        self._workload: list[np.ndarray] = []
        self._hour: list[np.ndarray] = []
        self._slo_ms = np.array([w.slo_ms for w in sc.workloads])
        for df in self.chunks():
            self._add(df)
        self.latency_ms = np.concatenate(self._latency) if self._latency else np.zeros(0)
        self.latency_workload = np.concatenate(self._workload) if self._workload else np.zeros(0, dtype=np.int8)
        self.latency_hour = np.concatenate(self._hour) if self._hour else np.zeros(0, dtype=np.int32)
        del self._latency, self._workload, self._hour

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The request table, one chunk of request ids at a time."""
        for lo in range(0, self.n, self.chunk):
            yield metrics.request_table(self.result, self.energy, lo, min(self.n, lo + self.chunk))

    def _add(self, df: pd.DataFrame) -> None:
        status = df["status"].cat.codes.to_numpy()
        done = status == COMPLETED
        finished = status != IN_FLIGHT
        violated = finished & ~df["slo_met"].to_numpy()
        workload = df["workload"].cat.codes.to_numpy().astype(np.int64)
        region = df["region"].cat.codes.to_numpy().astype(np.int64)
        origin = df["origin"].cat.codes.to_numpy().astype(np.int64)
        total_ms = df["total_ms"].to_numpy()
        intensity = df["intensity_gco2_per_kwh"].to_numpy()
        arrival_s = df["arrival_s"].to_numpy()
        hour = (arrival_s // SECONDS_PER_HOUR).astype(np.int64)
        bins = (arrival_s // metrics.TIMELINE_BIN_S).astype(np.int64)
        self.status += np.bincount(status.astype(np.int64), minlength=4)
        for key in ("network_ms", "queue_ms", "service_ms"):
            self.sums[key] += float(df[key].to_numpy()[done].sum())
        self.sums["intensity"] += float(intensity[done].sum())
        self.sums["slo_excess_s"] += metrics.slo_excess_s(df, self.result)

        def add(table: dict[str, np.ndarray], key: str, index: np.ndarray, weights: np.ndarray | None = None) -> None:
            table[key] += np.bincount(index, weights=weights, minlength=table[key].size)

        n_w = self.wl["requests"].size
        add(self.wl, "requests", workload)
        add(self.wl, "completed", workload[done])
        add(self.wl, "finished", workload[finished])
        add(self.wl, "violated", workload[violated])
        add(self.wl, "energy_j", workload, df["energy_j"].to_numpy())
        add(self.wl, "carbon_g", workload, df["carbon_g"].to_numpy())
        add(self.wl, "intensity", workload[done], intensity[done])
        routed = region >= 0
        add(self.rg, "requests", region[routed])
        add(self.rg, "completed", region[done])
        add(self.rg, "rejected", region[status == REJECTED])
        add(self.rg, "total_ms", region[done], total_ms[done])
        add(self.rg, "queue_ms", region[done], df["queue_ms"].to_numpy()[done])
        n_r = self.routing.shape[1]
        flat = origin[routed] * n_r + region[routed]
        self.routing += np.bincount(flat, minlength=self.routing.size).reshape(self.routing.shape)
        add(self.hr, "arrivals", hour)
        add(self.hr, "completed", hour[done])
        add(self.hr, "finished", hour[finished])
        add(self.hr, "violated", hour[violated])
        add(self.hr, "intensity", hour[done], intensity[done])
        add(self.tl, "arrivals", bins)
        add(self.tl, "completed", bins[done])
        add(self.tl, "rejected", bins[status == REJECTED])
        add(self.tl, "failed", bins[status == FAILED])
        add(self.tl, "retried", bins[df["retries"].to_numpy() > 0])
        add(self.tl, "finished", bins[finished])
        add(self.tl, "violated", bins[violated])
        add(self.tl, "latency", bins[done], total_ms[done])
        self._latency.append(total_ms[done])
        self._workload.append(workload[done].astype(np.int8 if n_w < 128 else np.int32))
        self._hour.append(hour[done].astype(np.int32))

    # -- the tables ----------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What :func:`carbonsim.analysis.metrics.summary` gives for the whole table."""
        energy, result = self.energy, self.result
        completed = int(self.status[COMPLETED])
        finished = int(self.status.sum() - self.status[IN_FLIGHT])
        violated = float(self.wl["violated"].sum())
        busy_kwh = float(energy.busy_kwh.sum())
        idle_kwh = float(energy.idle_kwh.sum())
        carbon_g = float(energy.busy_g.sum() + energy.idle_g.sum())
        nan = float("nan")

        def mean(key: str) -> float:
            return self.sums[key] / completed if completed else nan

        return {
            "requests": self.n,
            "completed": completed,
            "rejected": int(self.status[REJECTED]),
            "failed": int(self.status[FAILED]),
            "in_flight": int(self.status[IN_FLIGHT]),
            **_latency_stats(self.latency_ms),
            "mean_network_ms": mean("network_ms"),
            "mean_queue_ms": mean("queue_ms"),
            "mean_service_ms": mean("service_ms"),
            "slo_violation_pct": violated / finished * 100.0 if finished else nan,
            "slo_excess_s": self.sums["slo_excess_s"],
            "mean_intensity_gco2_per_kwh": mean("intensity"),
            "energy_kwh": busy_kwh + idle_kwh,
            "busy_energy_kwh": busy_kwh,
            "idle_energy_kwh": idle_kwh,
            "carbon_kg": carbon_g / 1e3,
            "busy_carbon_kg": float(energy.busy_g.sum()) / 1e3,
            "idle_carbon_kg": float(energy.idle_g.sum()) / 1e3,
            "carbon_g_per_request": carbon_g / completed if completed else nan,
            "electricity_cost_usd": float(energy.cost_usd.sum()),
            "carbon_cost_usd": metrics.carbon_cost_usd(carbon_g, result),
            "cost_usd": float(energy.cost_usd.sum()) + metrics.carbon_cost_usd(carbon_g, result),
            "sim_hours": result.horizon_s / SECONDS_PER_HOUR,
            "sim_end_s": result.end_s,
            "retries": int(result.records.retries.sum()),
            "interrupted_services": len(result.records.lost_service),
            **{key: result.fault_stats.get(key, 0.0) for key in metrics.FAULT_KEYS},
        }

    def per_workload(self) -> pd.DataFrame:
        """What :func:`carbonsim.analysis.metrics.per_workload` gives."""
        rows = []
        wl = self.wl
        for w, name in enumerate(self.result.world.scenario.workload_names):
            completed = int(wl["completed"][w])
            finished = wl["finished"][w]
            rows.append(
                {
                    "workload": name,
                    "requests": int(wl["requests"][w]),
                    "completed": completed,
                    **_latency_stats(self.latency_ms[self.latency_workload == w]),
                    "slo_violation_pct": wl["violated"][w] / finished * 100.0 if finished else np.nan,
                    "mean_intensity_gco2_per_kwh": wl["intensity"][w] / completed if completed else np.nan,
                    "energy_kwh": wl["energy_j"][w] / 3.6e6,
                    "carbon_kg": wl["carbon_g"][w] / 1e3,
                }
            )
        return pd.DataFrame(rows)

    def per_region(self) -> pd.DataFrame:
        """What :func:`carbonsim.analysis.metrics.per_region` gives."""
        result, rg = self.result, self.rg
        sc = result.world.scenario
        rows = []
        for ri, name in enumerate(sc.region_names):
            completed = int(rg["completed"][ri])
            rows.append(
                {
                    "region": name,
                    "grid_zone": sc.regions[ri].grid_zone,
                    "mean_rtt_ms": float(result.world.rtt_ms[:, ri].mean()),
                    "requests": int(rg["requests"][ri]),
                    "routing_share_pct": rg["requests"][ri] / self.n * 100.0 if self.n else np.nan,
                    "completed": completed,
                    "rejected": int(rg["rejected"][ri]),
                    "mean_latency_ms": rg["total_ms"][ri] / completed if completed else np.nan,
                    "mean_queue_ms": rg["queue_ms"][ri] / completed if completed else np.nan,
                    **metrics.region_energy_fields(result, self.energy, ri),
                }
            )
        return pd.DataFrame(rows)

    def hourly(self) -> pd.DataFrame:
        """What :func:`carbonsim.analysis.metrics.hourly` gives."""
        hr = self.hr
        order = np.argsort(self.latency_hour, kind="stable")
        hours_sorted = self.latency_hour[order]
        rows = []
        for h in range(self.hours):
            lo, hi = np.searchsorted(hours_sorted, [h, h + 1])
            latency = self.latency_ms[order[lo:hi]]
            completed = int(hr["completed"][h])
            finished = hr["finished"][h]
            rows.append(
                {
                    "hour": h,
                    "arrivals": int(hr["arrivals"][h]),
                    "completed": completed,
                    "mean_latency_ms": float(latency.mean()) if completed else np.nan,
                    "p95_latency_ms": float(np.percentile(latency, 95)) if completed else np.nan,
                    "slo_violation_pct": hr["violated"][h] / finished * 100.0 if finished else np.nan,
                    "mean_intensity_gco2_per_kwh": hr["intensity"][h] / completed if completed else np.nan,
                    **metrics.hour_energy_fields(self.energy, h),
                }
            )
        return pd.DataFrame(rows)

    def routing_table(self) -> pd.DataFrame:
        """What :func:`carbonsim.analysis.metrics.routing` gives."""
        sc = self.result.world.scenario
        totals = self.routing.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = self.routing / totals * 100.0
        table = pd.DataFrame(shares, columns=list(sc.region_names))
        table.insert(0, "origin", list(sc.origin_names))
        return table

    def latency_quantiles(self) -> pd.DataFrame:
        """What :func:`carbonsim.analysis.metrics.latency_quantiles` gives."""
        rows: list[dict[str, Any]] = []
        sc = self.result.world.scenario
        for w, name in enumerate(sc.workload_names):
            values = self.latency_ms[self.latency_workload == w]
            if values.size:
                rows += metrics.quantile_rows(name, values, float(self._slo_ms[w]))
        return pd.DataFrame(rows, columns=["workload", "quantile_pct", "latency_ms", "slo_ms"])

    def timeline(self) -> pd.DataFrame:
        """What :func:`carbonsim.analysis.metrics.timeline` gives."""
        tl = self.tl
        if not self.n_bins:
            return metrics.timeline(pd.DataFrame())
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.DataFrame(
                {
                    "start_s": np.arange(self.n_bins) * metrics.TIMELINE_BIN_S,
                    "arrivals": tl["arrivals"].astype(np.int64),
                    "completed": tl["completed"].astype(np.int64),
                    "rejected": tl["rejected"].astype(np.int64),
                    "failed": tl["failed"].astype(np.int64),
                    "retried": tl["retried"].astype(np.int64),
                    "slo_violation_pct": tl["violated"] / tl["finished"] * 100.0,
                    "mean_latency_ms": tl["latency"] / tl["completed"],
                }
            )

    def write_requests(self, path: Path) -> None:
        """Writes the per-request table to Parquet one chunk (row group) at a time."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer: Any = None
        try:
            # A run without requests still writes the file: no rows, every column (and its type).
            frames = self.chunks() if self.n else iter([metrics.request_table(self.result, self.energy, 0, 0)])
            for df in frames:
                table = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(str(path), table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()


def _latency_stats(values: np.ndarray) -> dict[str, float]:
    return metrics._latency_stats(pd.Series(values, dtype=np.float64))


__all__ = ["CHUNK_REQUESTS", "StreamedTables"]
