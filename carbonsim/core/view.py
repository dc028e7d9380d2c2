"""Read-only views of the system state that policies receive.

A policy sees what a real scheduler could observe: the clock, the request's workload, origin and SLO, and
per region the current carbon intensity and electricity price, forecasts of both from the scenario's
forecaster (:mod:`carbonsim.core.forecast`, up to 48 h), the round trip from the request's origin,
queue length, busy and total servers and profiled service-time estimates. It never sees a request's
sampled service time, except through :meth:`DecisionView.oracle_service_ms`, which exists only for
clairvoyant comparison baselines.

The simulator reuses one :class:`DecisionView` for every decision and updates it in place, so a policy must
not keep a reference to it (or to its tuples, which are snapshots) beyond one call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from carbonsim.core.forecast import Forecaster, ForecastReader
from carbonsim.core.recorder import FAILED, REJECTED, RequestRecords


@dataclass(frozen=True)
class Outcomes:
    """What is known now about some routed requests (arrays aligned with the ids asked for).

    Attributes:
        ids: The request ids.
        region: Region each was routed to.
        finished: Whether its service has ended.
        unserved: Whether it was rejected or failed (it will never finish).
        latency_ms: End-to-end latency of the finished ones (response back at the user), NaN otherwise.
        service_s: Service time of the finished ones (the batch's, when served in a batch), NaN otherwise.
        batch_size: Size of the batch each finished one was served in.
    """

    ids: np.ndarray
    region: np.ndarray
    finished: np.ndarray
    unserved: np.ndarray
    latency_ms: np.ndarray
    service_s: np.ndarray
    batch_size: np.ndarray


class RequestOutcomes:
    """Read-only telemetry of requests that have been routed: what a real scheduler learns after the fact.

    Only the past is readable: records are written as events happen, and asking for a request that has not
    been routed yet is refused (its arrival time lies in the future).

    Args:
        records: The run's per-request records.
        arrival_s: Arrival time of every request in s.
        origin: Origin index of every request.
        rtt_ms: Round trip per origin and region in ms.
    """

    def __init__(self, records: RequestRecords, arrival_s: np.ndarray, origin: np.ndarray, rtt_ms: np.ndarray) -> None:
        self._records = records
        self._arrival_s = arrival_s
        self._origin = origin
        self._half_rtt_ms = np.asarray(rtt_ms, dtype=np.float64) * 0.5

    def read(self, ids: np.ndarray) -> Outcomes:
        """The outcomes of requests ``ids`` as known now.

        Raises:
            ValueError: if one of them has not been routed yet.
        """
        ids = np.asarray(ids, dtype=np.int64)
        rec = self._records
        region = rec.region[ids].astype(np.int64)
        if (region < 0).any():
            first = int(ids[np.flatnonzero(region < 0)[0]])
            raise ValueError(f"outcomes: request {first} has not been routed yet")
        end = rec.end_s[ids]
        finished = ~np.isnan(end)
        status = rec.status[ids]
        half_rtt = self._half_rtt_ms[self._origin[ids].astype(np.int64), region]
        return Outcomes(
            ids=ids,
            region=region,
            finished=finished,
            unserved=(status == REJECTED) | (status == FAILED),
            latency_ms=(end - self._arrival_s[ids]) * 1e3 + half_rtt,
            service_s=end - rec.start_s[ids],
            batch_size=rec.batch_size[ids].astype(np.int64),
        )


@dataclass(frozen=True)
class PolicyContext:
    """Static facts about the scenario, given to a policy once before the run.

    Attributes:
        region_names: Region names; a decision is an index into this tuple.
        workload_names: Workload names.
        origin_names: Origin names.
        slo_ms: Latency objective per workload in ms.
        rtt_ms: Round trip per origin and region in ms, shape (origins, regions).
        servers: Servers per region (``inf`` for unlimited).
        mean_service_ms: Profiled mean service time per workload and region in ms (fastest pool).
        planning_interval_s: Seconds between ``plan`` calls.
        horizon_s: End of the arrival window in seconds.
        rng: The policy's own random stream.
        service_estimate_ms: Profiled service-time statistic (``mean``, ``p50``, ``p90``, ``p95``, ``p99``)
            per workload and region in ms (fastest pool), shape (workloads, regions) per statistic.
        pue: PUE per region.
        busy_w: Busy power of a server of the region's first pool in W (before PUE).
        idle_w: Idle power of a server of the region's first pool in W (before PUE).
        start_utc: Calendar time of simulated t = 0 (ISO 8601, UTC), empty for scenarios without one.
        outcomes: Telemetry of routed requests (latency, service time, drops), for policies that learn from
            their own results; None outside a simulation.
    """

    region_names: tuple[str, ...]
    workload_names: tuple[str, ...]
    origin_names: tuple[str, ...]
    slo_ms: tuple[float, ...]
    rtt_ms: np.ndarray
    servers: tuple[float, ...]
    mean_service_ms: np.ndarray
    planning_interval_s: float
    horizon_s: float
    rng: np.random.Generator
    service_estimate_ms: dict[str, np.ndarray]
    pue: tuple[float, ...]
    busy_w: tuple[float, ...]
    idle_w: tuple[float, ...]
    start_utc: str = ""
    outcomes: RequestOutcomes | None = None

    @property
    def n_regions(self) -> int:
        """Number of regions."""
        return len(self.region_names)


class DecisionView:
    """What a policy may read when routing one request (read-only properties).

    With faults (:mod:`carbonsim.core.faults`), :attr:`available` says which regions can take the request
    now (up, with a working server, not cut off from its origin), :attr:`servers` counts working servers,
    and the predicted latencies of unavailable regions are infinite, so that latency-based choices avoid
    them by themselves. A request routed to an unavailable region fails or is routed again.
    """

    __slots__ = (
        "_available",
        "_busy",
        "_carbon_forecast",
        "_estimates",
        "_intensity",
        "_mix_service",
        "_now",
        "_oracle",
        "_origin",
        "_price",
        "_price_forecast",
        "_qlen",
        "_request",
        "_rtt_rows",
        "_servers",
        "_slo",
        "_static",
        "_workload",
        "context",
    )

    def __init__(
        self,
        context: PolicyContext,
        carbon_forecast: Forecaster,
        price_forecast: Forecaster,
        qlen: list[int],
        busy: list[int],
        estimates: dict[str, list[tuple[float, ...]]],
        mix_service_ms: tuple[float, ...],
        oracle: Callable[[int, int], float],
        working: list[float] | None = None,
    ) -> None:
        self.context = context
        self._carbon_forecast = carbon_forecast
        self._price_forecast = price_forecast
        self._qlen = qlen
        self._busy = busy
        self._estimates = estimates
        self._mix_service = mix_service_ms
        self._oracle = oracle
        # Working servers per region: the simulator's list, updated in place by faults.
        self._servers: Sequence[float] = working if working is not None else context.servers
        self._rtt_rows = [tuple(float(x) for x in row) for row in context.rtt_ms]
        self._available: list[tuple[bool, ...]] = [(True,) * len(self._servers) for _ in self._rtt_rows]
        self._slo = context.slo_ms
        self._now = 0.0
        self._request = 0
        self._workload = 0
        self._origin = 0
        self._intensity: tuple[float, ...] = ()
        self._price: tuple[float, ...] = ()
        # Round trip + profiled service statistic, per statistic, origin and workload (computed once rather
        # than per decision, and again when faults change which regions are available).
        self._static: dict[str, list[list[tuple[float, ...]]]] = {}
        self._build_static()

    def _build_static(self) -> None:
        inf = math.inf
        self._static = {
            stat: [
                [
                    tuple(r + s if ok else inf for r, s, ok in zip(rtt, per_wl, available, strict=True))
                    for per_wl in per_stat
                ]
                for rtt, available in zip(self._rtt_rows, self._available, strict=True)
            ]
            for stat, per_stat in self._estimates.items()
        }

    def set_availability(self, rows: Sequence[tuple[bool, ...]]) -> None:
        """The simulator's update after a fault: which regions each origin may use now (in place)."""
        self._available[:] = rows
        self._build_static()

    @property
    def available(self) -> tuple[bool, ...]:
        """Whether each region can take this request now: up, with a working server, reachable from its origin."""
        return self._available[self._origin]

    @property
    def available_rows(self) -> list[tuple[bool, ...]]:
        """:attr:`available` for every origin (rows), the simulator's own list."""
        return self._available

    @property
    def now_s(self) -> float:
        """Current simulated time in seconds."""
        return self._now

    @property
    def request_id(self) -> int:
        """Index of the request being routed."""
        return self._request

    @property
    def workload(self) -> int:
        """Workload index of the request."""
        return self._workload

    @property
    def origin(self) -> int:
        """Origin index of the request."""
        return self._origin

    @property
    def slo_ms(self) -> float:
        """Latency objective of the request in ms."""
        return self._slo[self._workload]

    @property
    def n_regions(self) -> int:
        """Number of regions."""
        return len(self._servers)

    @property
    def intensity_gco2_per_kwh(self) -> tuple[float, ...]:
        """Grid carbon intensity of each region now, in gCO2eq/kWh."""
        return self._intensity

    @property
    def price_usd_per_kwh(self) -> tuple[float, ...]:
        """Electricity price of each region now, in USD/kWh."""
        return self._price

    @property
    def rtt_ms(self) -> tuple[float, ...]:
        """Round trip from the request's origin to each region, in ms."""
        return self._rtt_rows[self._origin]

    @property
    def queue_length(self) -> tuple[int, ...]:
        """Requests waiting (not in service) in each region."""
        return tuple(self._qlen)

    @property
    def busy_servers(self) -> tuple[int, ...]:
        """Servers serving in each region."""
        return tuple(self._busy)

    @property
    def servers(self) -> tuple[float, ...]:
        """Working servers in each region (``inf`` for unlimited; fewer while servers have failed)."""
        return tuple(self._servers)

    @property
    def expected_service_ms(self) -> tuple[float, ...]:
        """Profiled mean service time of the request's workload in each region, in ms."""
        return self._estimates["mean"][self._workload]

    def service_estimate_ms(self, stat: str) -> tuple[float, ...]:
        """Profiled service-time statistic (``mean``, ``p50``, ``p90``, ``p95``, ``p99``) per region, in ms."""
        return self._estimates[stat][self._workload]

    @property
    def mix_service_ms(self) -> tuple[float, ...]:
        """Profiled mean service time over the workload mix in each region, in ms (for wait estimates)."""
        return self._mix_service

    def static_latency_ms(self, stat: str = "mean") -> tuple[float, ...]:
        """Round trip + profiled service statistic (``mean``, ``p50``, ...) per region, in ms (no queueing).

        Infinite for regions that are not :attr:`available`.
        """
        return self._static[stat][self._origin][self._workload]

    def predicted_wait_ms(self) -> list[float]:
        """Estimated queueing wait of a request arriving now in each region, in ms.

        With ``q`` requests waiting, ``b`` of ``c`` servers busy and ``s`` the profiled mean service time
        over the workload mix, the newcomer waits for ``max(0, q + b - c + 1)`` departures, which occur at
        rate ``c / s`` while all servers are busy: wait = max(0, q + b - c + 1) x s / c (exact in
        expectation for exponential service, an approximation otherwise). Only observable state and
        profiled means are used; changes of the queue while the request is on the network are ignored. A
        region without a working server waits forever.
        """
        inf = math.inf
        return [
            (q + b - c + 1) * s / c if q + b >= c > 0 else (0.0 if c else inf)
            for q, b, c, s in zip(self._qlen, self._busy, self._servers, self._mix_service, strict=True)
        ]

    def predicted_latency_ms(self, stat: str = "mean", queue_aware: bool = True) -> list[float]:
        """Predicted end-to-end latency per region in ms: round trip + (estimated wait) + service statistic.

        The sum of :meth:`static_latency_ms` and :meth:`predicted_wait_ms`, in one pass because it runs for
        every request.
        """
        static = self._static[stat][self._origin][self._workload]
        if not queue_aware:
            return list(static)
        inf = math.inf
        return [
            x + ((q + b - c + 1) * s / c if q + b >= c > 0 else (0.0 if c else inf))
            for x, q, b, c, s in zip(static, self._qlen, self._busy, self._servers, self._mix_service, strict=True)
        ]

    def forecast_gco2_per_kwh(self, region: int, horizon_h: int) -> np.ndarray:
        """Forecast intensity of ``region`` for the current hour and the next ones, ``horizon_h`` (<= 48) values.

        Issued now by the scenario's forecaster; lead 0 is the observed current hour. Shorter where the run's
        signal ends.
        """
        return self._carbon_forecast.forecast(region, self._now, horizon_h)

    def forecast_price_usd_per_kwh(self, region: int, horizon_h: int) -> np.ndarray:
        """Forecast electricity price of ``region`` in USD/kWh, like :meth:`forecast_gco2_per_kwh`."""
        return self._price_forecast.forecast(region, self._now, horizon_h)

    def oracle_service_ms(self, region: int) -> float:
        """The request's *sampled* service time in ``region``, in ms.

        No real scheduler knows this. It exists only so that clairvoyant variants of published policies
        can be reproduced for comparison; such policies must say so in their documentation.
        """
        return self._oracle(self._request, region)


@dataclass(frozen=True)
class PlanView(ForecastReader):
    """What a policy may read at a planning step (every ``planning_interval_s``).

    Attributes:
        now_s: Current simulated time in seconds.
        interval_s: Length of the interval being planned, in seconds.
        intensity_gco2_per_kwh: Intensity per region now.
        price_usd_per_kwh: Electricity price per region now.
        queue_length: Waiting requests per region.
        busy_servers: Serving servers per region.
        arrivals_last_interval: Requests that arrived in the previous interval, shape (origins, workloads).
        carbon_forecast: The scenario's intensity forecaster (use :meth:`forecast_gco2_per_kwh`).
        price_forecast: The scenario's price forecaster (use :meth:`forecast_price_usd_per_kwh`).
        available: Per origin (rows) and region, whether requests from the origin can go there now (region
            up, with a working server, not cut off); empty without faults (everything available).
        working_servers: Working servers per region now (``inf`` for unlimited).
    """

    now_s: float
    interval_s: float
    intensity_gco2_per_kwh: tuple[float, ...]
    price_usd_per_kwh: tuple[float, ...]
    queue_length: tuple[int, ...]
    busy_servers: tuple[int, ...]
    arrivals_last_interval: np.ndarray
    carbon_forecast: Forecaster
    price_forecast: Forecaster
    available: tuple[tuple[bool, ...], ...] = ()
    working_servers: tuple[float, ...] = ()

    def region_available(self, region: int) -> bool:
        """Whether a region can take requests from at least one origin now."""
        return not self.available or any(row[region] for row in self.available)


def argmin(values: Sequence[float]) -> int:
    """Index of the smallest value; the lowest index wins ties (deterministic)."""
    return (
        values.index(min(values))
        if isinstance(values, list | tuple)
        else min(range(len(values)), key=values.__getitem__)
    )
