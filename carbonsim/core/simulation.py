"""The discrete-event simulation of one run: arrivals, routing, network, queues and service.

Request path: arrival at its origin -> the policy decides a region -> one-way network delay (half the
round trip, plus jitter) -> the region's FIFO queue -> service -> response (the other half of the round
trip, added to the latency afterwards: nothing in the system depends on it).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy
from simpy.events import Event, Timeout

from carbonsim.core import rng as rngmod
from carbonsim.core.arrivals import Requests
from carbonsim.core.faults import FaultProcess
from carbonsim.core.jobs import BatchEngine, BatchPolicy, JobContext, JobRecords, Jobs, speedups
from carbonsim.core.policy import AwaitDecision, Policy, ReportsStats
from carbonsim.core.recorder import COMPLETED, FAILED, RequestRecords, int_items
from carbonsim.core.region import MultiPoolRegion, PoolSpec, RegionState, SinglePoolRegion
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.core.view import DecisionView, PlanView, PolicyContext, RequestOutcomes
from carbonsim.core.world import World

#: Requests converted from numpy to Python scalars at a time (keeps per-request work in plain Python
#: without holding a Python object per request for the whole run).
CHUNK = 65_536


@dataclass(frozen=True)
class Progress:
    """Where a running simulation is, for a progress display.

    Attributes:
        now_s: Simulated time in s.
        horizon_s: End of the arrival window in s (the drain, if any, comes after it).
        stop_s: Latest possible end in s (the window plus the drain bound).
        requests: Requests of the run.
        finished: Requests that have arrived and are no longer outstanding (completed, rejected or failed).
        ended: Whether the run has ended (the last report of a run).
    """

    now_s: float
    horizon_s: float
    stop_s: float
    requests: int
    finished: int
    ended: bool = False


@dataclass(frozen=True)
class SimResult:
    """What one run produced (raw; the analysis layer turns it into tables).

    Attributes:
        world: The compiled scenario.
        requests: The request stream.
        records: Per-request outcomes.
        pools: Per region, its pool specs (counts, hardware).
        horizon_s: End of the arrival window in seconds.
        end_s: Simulated time at which the run stopped.
        decision_ns: Wall-clock nanoseconds spent in the policy's ``decide`` (whole run).
        plan_ns: Wall-clock nanoseconds spent in the policy's ``plan``.
        plans: Number of ``plan`` calls.
        jobs: The batch jobs (empty without).
        job_records: Per-job outcomes and running segments (None without jobs).
        batch_epochs: Number of batch policy calls.
        batch_decision_cpu_ns: CPU time (this process, ``time.process_time_ns``) spent in the batch
            policy's ``schedule`` calls, including the view it reads (a measurement: not reproducible).
        policy_stats: The routing policy's own counters (:class:`~carbonsim.core.policy.ReportsStats`),
            empty for policies without.
        fault_stats: Counts of the run's faults and of what they did (server failures and repairs, outages,
            cuts, requests routed to a region that could not take them).
        job_context: What the batch policy was given (capacities, power, GPU types; None without jobs).
    """

    world: World
    requests: Requests
    records: RequestRecords
    pools: list[list[PoolSpec]]
    horizon_s: float
    end_s: float
    decision_ns: int
    plan_ns: int
    plans: int
    jobs: Jobs
    job_records: JobRecords | None
    batch_epochs: int
    batch_decision_cpu_ns: int = 0
    policy_stats: dict[str, float] = field(default_factory=dict)
    fault_stats: dict[str, float] = field(default_factory=dict)
    job_context: JobContext | None = None


class Simulation:
    """One run of a policy on a world and a request stream.

    Args:
        world: The compiled scenario (signals must cover ``horizon_s`` plus the drain bound).
        requests: The requests (all arrivals must lie within ``[0, horizon_s)``).
        policy: The routing policy.
        seed: Root seed (the policy's random stream is derived from it).
        horizon_s: End of the arrival window in seconds.
        drain: Continue after ``horizon_s`` until every request has finished.
        max_drain_s: Bound on the drain phase in seconds.
        planning_interval_s: Seconds between ``plan`` calls.
        jobs: Batch jobs to run alongside the requests (arrivals within ``[0, horizon_s)``).
        batch_policy: The batch policy (required with jobs).
    """

    def __init__(
        self,
        world: World,
        requests: Requests,
        policy: Policy,
        seed: int,
        horizon_s: float,
        drain: bool = True,
        max_drain_s: float = 86_400.0,
        planning_interval_s: float = 900.0,
        jobs: Jobs | None = None,
        batch_policy: BatchPolicy | None = None,
    ) -> None:
        n = len(requests)
        if n and requests.arrival_s[-1] >= horizon_s:
            raise ValueError(
                f"requests: last arrival at {requests.arrival_s[-1]} s is not before the horizon {horizon_s} s"
            )
        stop_s = horizon_s + (max_drain_s if drain else 0.0)
        if world.carbon.horizon_s < stop_s:
            raise ValueError(f"carbon signal covers {world.carbon.hours} h, the run may last {stop_s / 3600:.2f} h")
        self.world = world
        self.requests = requests
        self.policy = policy
        self.horizon_s = horizon_s
        self.stop_s = stop_s
        self.drain = drain
        self.planning_interval_s = planning_interval_s
        self.env = simpy.Environment()
        self._seed = seed
        self.records = RequestRecords(n)
        self.state = RegionState(len(world.scenario.regions))
        self.pools = self._pool_specs()
        self.regions = self._build_regions()
        scenario = world.scenario
        self.context = PolicyContext(
            region_names=scenario.region_names,
            workload_names=scenario.workload_names,
            origin_names=scenario.origin_names,
            slo_ms=tuple(w.slo_ms for w in scenario.workloads),
            rtt_ms=world.rtt_ms.copy(),
            servers=world.servers,
            mean_service_ms=np.array(world.estimates["mean"]),
            planning_interval_s=planning_interval_s,
            horizon_s=horizon_s,
            rng=rngmod.stream(seed, "policy"),
            service_estimate_ms={stat: np.array(values) for stat, values in world.estimates.items()},
            pue=tuple(r.pue for r in scenario.regions),
            busy_w=tuple(r.pools[0].busy_w for r in scenario.regions),
            idle_w=tuple(r.pools[0].idle_w for r in scenario.regions),
            start_utc=scenario.start_utc,
            outcomes=RequestOutcomes(self.records, requests.arrival_s, requests.origin, world.rtt_ms),
        )
        self.view = DecisionView(
            self.context,
            world.carbon_forecast,
            world.price_forecast,
            self.state.qlen,
            self.state.busy,
            world.estimates,
            world.mix_service_ms,
            self._oracle_service_ms,
            working=self.state.working,
        )
        self.fault_config = scenario.faults
        self._faults: FaultProcess | None = None
        self._routed_to_unavailable = 0
        self._retry_decision_ns = 0
        self._availability_version = self.state.version
        self.jobs = jobs if jobs is not None else Jobs.empty()
        if len(self.jobs) and self.jobs.arrival_s[-1] >= horizon_s:
            raise ValueError(
                f"jobs: last arrival at {self.jobs.arrival_s[-1]} s is not before the horizon {horizon_s} s"
            )
        self.batch: BatchEngine | None = None
        if len(self.jobs):
            if batch_policy is None:
                raise ValueError("jobs need a batch policy")
            self.batch_policy = batch_policy
            gpu_types = tuple(sorted({g for r in scenario.regions for g, c in r.batch_gpus.items() if c > 0}))
            unpowered = [g for g in gpu_types if g not in scenario.batch.gpu_busy_w]
            if unpowered:
                raise ValueError(
                    f"batch.gpu_busy_w: no busy power for GPU type(s) {', '.join(unpowered)} of the batch clusters "
                    "(set them, or resolve them from the catalog with carbonsim.hardware.resolve_profiles)"
                )
            self.job_context = JobContext(
                region_names=scenario.region_names,
                capacity_cpus=tuple(r.batch_cpus for r in scenario.regions),
                pue=tuple(r.pue for r in scenario.regions),
                cpu_busy_w=scenario.batch.cpu_busy_w,
                horizon_s=horizon_s,
                rng=rngmod.stream(seed, "batch_policy"),
                speedup=speedups(scenario.batch.max_scale, scenario.batch.parallel_fraction),
                migration_gb_per_cpu=scenario.batch.migration_gb_per_cpu,
                network_kwh_per_gb=scenario.batch.network_kwh_per_gb,
                migration_gbps=scenario.batch.migration_gbps,
                gpu_types=gpu_types,
                capacity_gpus=tuple(tuple(r.batch_gpus.get(g, 0) for g in gpu_types) for r in scenario.regions),
                gpu_busy_w=tuple(float(scenario.batch.gpu_busy_w[g]) for g in gpu_types),
                migration_gb_per_gpu=scenario.batch.migration_gb_per_gpu,
            )
            self.batch = BatchEngine(
                self.env,
                self.jobs,
                batch_policy,
                self.job_context,
                world.carbon,
                world.price,
                world.carbon_forecast,
                world.price_forecast,
                self._on_idle,
            )
        self._stopped: Event = self.env.event()
        self._arrivals_done = n == 0
        self._past_horizon = False
        self._decision_ns = 0
        self._plan_ns = 0
        self._plans = 0
        #: True while the arrival chain waits for a decision from outside (:class:`AwaitDecision`).
        self.awaiting = False
        self._resume: Callable[[], None] | None = None
        # Plain nested lists: incremented once per request, where a numpy element update costs more.
        self._arrivals_in_interval = [[0] * len(scenario.workloads) for _ in scenario.origins]

    def _pool_specs(self) -> list[list[PoolSpec]]:
        out = []
        for region in self.world.scenario.regions:
            specs = []
            for pool in region.pools:
                factors = tuple(wl.service[pool.hardware].batch_time_factor for wl in self.world.scenario.workloads)
                specs.append(
                    PoolSpec(
                        hardware=pool.hardware,
                        count=math.inf if pool.count is None else float(pool.count),
                        service_ms=self.requests.service_ms[pool.hardware],
                        max_batch_size=pool.max_batch_size,
                        max_queue_delay_s=pool.max_queue_delay_ms * 1e-3,
                        batch_factor=factors,
                    )
                )
            out.append(specs)
        return out

    def _build_regions(self) -> list[SinglePoolRegion | MultiPoolRegion]:
        regions: list[SinglePoolRegion | MultiPoolRegion] = []
        for ri, (cfg, specs) in enumerate(zip(self.world.scenario.regions, self.pools, strict=True)):
            max_q = math.inf if cfg.max_queue_length is None else float(cfg.max_queue_length)
            if len(specs) == 1 and specs[0].max_batch_size == 1:
                regions.append(
                    SinglePoolRegion(
                        self.env, ri, specs[0], max_q, self.records, self.state, self._on_idle, self._on_lost
                    )
                )
            else:
                regions.append(
                    MultiPoolRegion(
                        self.env,
                        ri,
                        specs,
                        self.world.pool_order[ri],
                        self.requests.workload,
                        max_q,
                        self.records,
                        self.state,
                        self._on_idle,
                        self._on_lost,
                    )
                )
        return regions

    def _oracle_service_ms(self, request: int, region: int) -> float:
        pool = self.world.pool_order[region][int(self.requests.workload[request])][0]
        return float(self.pools[region][pool].service_ms[request])

    def _on_idle(self) -> None:
        """Called by a region when no routed request is left unfinished.

        A drained run ends when every request has finished, but never before the end of the arrival window:
        the window is the observation period (idle energy, planning calls) whatever the load.
        """
        jobs_done = self.batch is None or self.batch.finished
        idle = self._arrivals_done and self.state.outstanding == 0
        if idle and jobs_done and self.drain and self._past_horizon and not self._stopped.triggered:
            self._stopped.succeed()

    def _on_horizon(self, event: Event) -> None:
        self._past_horizon = True
        if self.state.outstanding == 0:
            self._on_idle()

    def _start_arrivals(self) -> None:
        """Builds the callback that routes arrivals (the per-request hot path) and schedules the first.

        Arrivals are a chain of timeouts, each callback routing every request due at that instant and
        scheduling the next one; its state lives in closure variables, which Python reads faster than
        attributes. Request columns are converted to Python lists one chunk at a time.
        """
        env = self.env
        req = self.requests
        view = self.view
        decide = self.policy.decide
        region_col = int_items(self.records.region)
        arrive = [r.arrive for r in self.regions]
        n_regions = len(arrive)
        half_rtt_s = [[x * 0.5e-3 for x in row] for row in self.world.rtt_ms.tolist()]
        state = self.state
        counts = self._arrivals_in_interval
        carbon = self.world.carbon
        price = self.world.price
        perf = time.perf_counter_ns
        n = len(req)
        policy_name = type(self.policy).__name__
        # Rows of the view's availability (mutated in place when faults change it); checked only in runs
        # that have faults.
        faulty = self.fault_config.active
        available = view.available_rows
        lost = self._on_lost
        # Chunk state: the Python lists of the current chunk and the index within it.
        lo = 0
        k = 0
        size = 0
        times: list[float] = []
        origins: list[int] = []
        workloads: list[int] = []
        jitter_s: list[float] = []
        next_hour_s = -1.0
        decision_ns = 0

        def load(start: int) -> None:
            nonlocal lo, k, size, times, origins, workloads, jitter_s
            hi = min(n, start + CHUNK)
            lo, k, size = start, 0, hi - start
            times = req.arrival_s[start:hi].tolist()
            origins = req.origin[start:hi].tolist()
            workloads = req.workload[start:hi].tolist()
            jitter_s = (req.jitter_ms[start:hi].astype(np.float64) * 1e-3).tolist()

        def on_arrival(event: Event) -> None:
            nonlocal k, next_hour_s, decision_ns
            now = env.now
            while True:
                i = lo + k
                o = origins[k]
                w = workloads[k]
                view._now = now
                view._request = i
                view._workload = w
                view._origin = o
                if now >= next_hour_s:
                    view._intensity = carbon.all_at(now)
                    view._price = price.all_at(now)
                    next_hour_s = (now // SECONDS_PER_HOUR + 1.0) * SECONDS_PER_HOUR
                t0 = perf()
                try:
                    r = decide(view)
                except AwaitDecision:
                    # The decision comes from outside (a Gymnasium environment): stop here, with request
                    # k still pending, until resume() is called. No other event runs in between, so the
                    # order of events is exactly that of a synchronous policy.
                    self.awaiting = True
                    return
                decision_ns += perf() - t0
                if not 0 <= r < n_regions:
                    raise ValueError(
                        f"policy {policy_name} returned region {r!r} for request {i}; expected an index in "
                        f"0..{n_regions - 1}"
                    )
                region_col[i] = r
                counts[o][w] += 1
                state.outstanding += 1
                if faulty and not available[o][r]:
                    # A region the request cannot reach or be served in now: a failed attempt.
                    self._routed_to_unavailable += 1
                    lost(i)
                else:
                    Timeout(env, half_rtt_s[o][r] + jitter_s[k], i).callbacks.append(arrive[r])
                k += 1
                if k == size:
                    if lo + size >= n:
                        self._decision_ns = decision_ns
                        self._arrivals_done = True
                        if not state.outstanding:
                            self._on_idle()
                        return
                    load(lo + size)
                t = times[k]
                if t > now:
                    # Schedule at the recorded arrival time (delay computed from the current clock).
                    Timeout(env, t - now).callbacks.append(on_arrival)
                    return

        def resume() -> None:
            self.awaiting = False
            on_arrival(None)  # type: ignore[arg-type]

        self._resume = resume
        if n:
            load(0)
            Timeout(env, times[0]).callbacks.append(on_arrival)

    def _on_lost(self, i: int) -> None:
        """A fault hit request ``i`` before it was served: route it again, or count it as failed.

        With ``faults.on_failure: retry`` and retries left, the policy routes the request again now, from its
        origin (a client retrying), seeing the fault; otherwise the request has failed.
        """
        rec = self.records
        if self.fault_config.on_failure == "retry" and rec.retries[i] < self.fault_config.max_retries:
            rec.retries[i] += 1
            if self.state.version != self._availability_version:
                # The fault that lost the request has just changed the regions: the policy must see it.
                self._refresh_availability()
            self._route_again(i)
            return
        rec.status[i] = FAILED
        self.state.outstanding -= 1
        if not self.state.outstanding:
            self._on_idle()

    def _route_again(self, i: int) -> None:
        now = self.env.now
        req = self.requests
        o, w = int(req.origin[i]), int(req.workload[i])
        self.records.rerouted_s[i] = now
        view = self.view
        view._now = now
        view._request = i
        view._workload = w
        view._origin = o
        view._intensity = self.world.carbon.all_at(now)
        view._price = self.world.price.all_at(now)
        t0 = time.perf_counter_ns()
        try:
            r = self.policy.decide(view)
        except AwaitDecision:
            raise RuntimeError(
                "a request hit by a fault must be routed again at once; policies that await their decisions "
                "(the Gymnasium environment) cannot: set scenario.faults.on_failure to fail"
            ) from None
        self._retry_decision_ns += time.perf_counter_ns() - t0
        if not 0 <= r < len(self.regions):
            raise ValueError(
                f"policy {type(self.policy).__name__} returned region {r!r} for request {i}; expected an index "
                f"in 0..{len(self.regions) - 1}"
            )
        self.records.region[i] = r
        if not view.available_rows[o][r]:
            self._routed_to_unavailable += 1
            self._on_lost(i)
            return
        delay_s = float(self.world.rtt_ms[o, r]) * 0.5e-3 + float(req.jitter_ms[i]) * 1e-3
        Timeout(self.env, delay_s, i).callbacks.append(self.regions[r].arrive)

    def _refresh_availability(self) -> None:
        """Recomputes which regions each origin may use now (after every fault event)."""
        state = self.state
        self._availability_version = state.version
        n_regions = len(self.regions)
        serving = [state.up[r] and state.working[r] > 0 for r in range(n_regions)]
        cut = self._faults.cut if self._faults is not None else None
        rows = [
            tuple(serving[r] and not (cut is not None and cut[o][r]) for r in range(n_regions))
            for o in range(len(self.world.scenario.origins))
        ]
        self.view.set_availability(rows)

    def resume(self) -> None:
        """Continues the arrivals after :class:`AwaitDecision` (the policy now has the decision)."""
        if not self.awaiting or self._resume is None:
            raise RuntimeError("resume() called while no decision is pending")
        self._resume()

    def _planning_process(self) -> Generator[Event, Any, None]:
        t = 0.0
        while t < self.horizon_s:
            view = PlanView(
                now_s=self.env.now,
                interval_s=self.planning_interval_s,
                intensity_gco2_per_kwh=self.world.carbon.all_at(self.env.now),
                price_usd_per_kwh=self.world.price.all_at(self.env.now),
                queue_length=tuple(self.state.qlen),
                busy_servers=tuple(self.state.busy),
                arrivals_last_interval=np.array(self._arrivals_in_interval, dtype=np.int64),
                carbon_forecast=self.world.carbon_forecast,
                price_forecast=self.world.price_forecast,
                available=tuple(self.view.available_rows) if self._faults is not None else (),
                working_servers=tuple(self.state.working),
            )
            for row in self._arrivals_in_interval:
                row[:] = [0] * len(row)
            t0 = time.perf_counter_ns()
            self.policy.plan(view)
            self._plan_ns += time.perf_counter_ns() - t0
            self._plans += 1
            t += self.planning_interval_s
            if t < self.horizon_s:
                yield Timeout(self.env, t - self.env.now)

    def _finish_records(self) -> None:
        """Fills the columns the hot path leaves out: completion status, and pool 0 of single-pool regions."""
        rec = self.records
        rec.status[~np.isnan(rec.end_s)] = COMPLETED
        for ri, region in enumerate(self.regions):
            if isinstance(region, SinglePoolRegion):
                rec.pool[(rec.region == ri) & ~np.isnan(rec.start_s)] = 0

    def _on_limit(self, event: Event) -> None:
        if not self._stopped.triggered:
            self._stopped.succeed()

    def progress(self) -> Progress:
        """Where the run is (for a progress display; reading it changes nothing)."""
        now = float(self.env.now)
        arrived = int(np.searchsorted(self.requests.arrival_s, now, side="right"))
        return Progress(
            now_s=now,
            horizon_s=self.horizon_s,
            stop_s=self.stop_s,
            requests=len(self.requests),
            finished=max(arrived - self.state.outstanding, 0),
        )

    def _progress_process(self, progress: Callable[[Progress], None]) -> Generator[Event, Any, None]:
        # About every half per cent of the arrival window (at least a simulated minute apart), once exactly at
        # its end, then on through the drain at the same pace.
        step = max(60.0, self.horizon_s / 200.0)
        t = 0.0
        while True:
            progress(self.progress())
            t = self.horizon_s if t < self.horizon_s < t + step else t + step
            yield self.env.timeout(t - self.env.now)

    def run(self, progress: Callable[[Progress], None] | None = None) -> SimResult:
        """Runs the simulation to the end and returns the raw result.

        Args:
            progress: Called with the run's :class:`Progress` at its start, about every half per cent of the
                arrival window (at least a simulated minute apart), at the window's end, on through the
                drain, and once more when the run has ended (a display; it must not touch the simulation).
        """
        self.start(progress)
        self.env.run(until=self._stopped)
        if progress is not None:
            progress(dataclasses.replace(self.progress(), ended=True))
        return self.finish()

    @property
    def stopped(self) -> bool:
        """Whether the run has reached its end (everything drained, or the drain bound)."""
        return self._stopped.processed

    def advance(self) -> bool:
        """Processes events until a decision is awaited (True) or the run has ended (False).

        For policies that raise :class:`AwaitDecision`; the events run are exactly those :meth:`run` runs.
        """
        env = self.env
        stopped = self._stopped
        batch = self.batch
        while not (self.awaiting or (batch is not None and batch.awaiting)):
            if stopped.processed:
                return False
            env.step()
        return True

    def start(self, progress: Callable[[Progress], None] | None = None) -> None:
        """Schedules the run's processes (arrivals, planning, batch, limits) without running any event."""
        self.policy.reset(self.context)
        env = self.env
        if progress is not None:
            env.process(self._progress_process(progress))
        if self.batch is not None:
            self.batch_policy.reset(self.job_context)
            env.process(self.batch.process())
        if self.fault_config.active:
            scenario = self.world.scenario
            self._faults = FaultProcess(
                env,
                self.fault_config,
                self.regions,
                scenario.region_names,
                scenario.origin_names,
                [[p.count for p in specs] for specs in self.pools],
                rngmod.stream(self._seed, "faults"),
                self._refresh_availability,
            )
            self._faults.start()
        # Planning first: a plan for time 0 exists before the first decision.
        env.process(self._planning_process())
        self._start_arrivals()
        env.timeout(self.horizon_s).callbacks.append(self._on_horizon)
        env.timeout(self.stop_s).callbacks.append(self._on_limit)

    def finish(self) -> SimResult:
        """Completes the records of a run that has stopped and returns the raw result."""
        env = self.env
        self._finish_records()
        end_s = float(env.now)
        return SimResult(
            world=self.world,
            requests=self.requests,
            records=self.records,
            pools=self.pools,
            horizon_s=self.horizon_s,
            end_s=end_s,
            decision_ns=self._decision_ns + self._retry_decision_ns,
            plan_ns=self._plan_ns,
            plans=self._plans,
            jobs=self.jobs,
            job_records=None if self.batch is None else self.batch.records(end_s),
            batch_epochs=0 if self.batch is None else self.batch.epochs,
            batch_decision_cpu_ns=0 if self.batch is None else self.batch.decision_cpu_ns,
            policy_stats=dict(self.policy.stats()) if isinstance(self.policy, ReportsStats) else {},
            fault_stats={
                **(self._faults.stats() if self._faults is not None else {}),
                "routed_to_unavailable": float(self._routed_to_unavailable),
            },
            job_context=None if self.batch is None else self.job_context,
        )


__all__ = ["SECONDS_PER_HOUR", "Progress", "SimResult", "Simulation"]
