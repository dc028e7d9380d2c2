"""Throughput and memory of carbonsim's simulation core against a naive SimPy M/M/c model.

Two simulations of the same number of requests at the same overall utilisation run in one process:

* carbonsim: 5 regions x 8 GPU servers, 3 workloads (BERT-base, BERT-large, ResNet-50, normal service times
  as in ``conf/scenario/illustrative.yaml``), 4 origins, diurnal synthetic carbon, the chosen routing policy,
  per-request records and the energy/carbon account (:func:`carbonsim.analysis.metrics.energy_account`).
* naive SimPy: one M/M/c queue with c = 40 servers, one SimPy process per customer holding a
  ``simpy.Resource`` request, a source process that starts them, exponential service with the same mean.

Speed is measured without tracemalloc; memory in a second carbonsim run under tracemalloc (which slows
Python down several-fold, so its timings are not reported). See ``benchmarks/README.md``.

Run: ``python benchmarks/core_throughput.py [--requests N] [--policy NAME] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import math
import platform
import pstats
import time
import tracemalloc
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simpy

import carbonsim
from carbonsim import RunConfig, ScenarioConfig, build, make_policy, policy_config, policy_names
from carbonsim.analysis.metrics import energy_account
from carbonsim.core.arrivals import Requests, draw_requests
from carbonsim.core.energy import EnergyAccount
from carbonsim.core.recorder import COMPLETED
from carbonsim.core.simulation import SimResult, Simulation
from carbonsim.core.world import World, compile_world, signal_hours

SERVERS_PER_REGION = 8
REGIONS = (
    # name, grid zone, price (USD/kWh)
    ("us-east", "US-EAST", 0.08),
    ("us-west", "US-WEST", 0.12),
    ("eu-west", "EU-WEST", 0.15),
    ("eu-north", "EU-NORTH", 0.06),
    ("singapore", "SINGAPORE", 0.14),
)
ORIGINS: tuple[dict[str, Any], ...] = (
    {
        "name": "us-east",
        "share": 0.40,
        "rtt_ms": {"us-east": 5, "us-west": 65, "eu-west": 85, "eu-north": 95, "singapore": 230},
    },
    {
        "name": "us-west",
        "share": 0.20,
        "rtt_ms": {"us-east": 65, "us-west": 5, "eu-west": 145, "eu-north": 155, "singapore": 170},
    },
    {
        "name": "eu",
        "share": 0.25,
        "rtt_ms": {"us-east": 85, "us-west": 145, "eu-west": 10, "eu-north": 25, "singapore": 165},
    },
    {
        "name": "asia",
        "share": 0.15,
        "rtt_ms": {"us-east": 230, "us-west": 170, "eu-west": 165, "eu-north": 175, "singapore": 5},
    },
)
# name, SLO (ms), share, mean service (ms), std (ms): the illustrative scenario's workloads.
WORKLOADS = (
    ("bert-base", 100.0, 0.6, 18.0, 4.0),
    ("bert-large", 150.0, 0.3, 60.0, 12.0),
    ("resnet-50", 80.0, 0.1, 12.0, 3.0),
)
BASE_INTENSITY = {"US-EAST": 323.0, "US-WEST": 79.0, "EU-WEST": 276.0, "EU-NORTH": 25.0, "SINGAPORE": 367.0}


def source_digest() -> str:
    """Short hash of carbonsim's Python sources, so figures can be matched to the code they measured."""
    root = Path(carbonsim.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def total_servers() -> int:
    """Servers over all regions (the naive model's c)."""
    return SERVERS_PER_REGION * len(REGIONS)


def mix_service_ms() -> float:
    """Mean service time over the workload mix in ms (the floor at 1 ms moves it by < 1e-6 ms)."""
    return sum(share * mean for _name, _slo, share, mean, _std in WORKLOADS)


def arrival_rate_per_s(utilisation: float) -> float:
    """Arrival rate that loads all servers to ``utilisation`` on average, in requests/s."""
    return utilisation * total_servers() / (mix_service_ms() * 1e-3)


def scenario_dict(rate_per_s: float) -> dict[str, Any]:
    """The benchmark scenario as plain data for :func:`carbonsim.build`.

    ``fixed_per_hour`` arrivals place exactly round(rate x duration) requests uniformly in each hour (a
    Poisson process conditioned on its count), so the run holds exactly the requested number.
    """
    pool = {"hardware": "gpu", "count": SERVERS_PER_REGION, "idle_w": 60.0, "busy_w": 300.0}
    return {
        "name": "benchmark",
        "description": f"{len(REGIONS)} regions x {SERVERS_PER_REGION} GPUs, flat load for the core benchmark",
        "jitter_std_ms": 3.0,
        "arrivals": {"kind": "fixed_per_hour", "rate_per_s": rate_per_s},
        "carbon": {"kind": "synthetic_diurnal", "base_gco2_per_kwh": BASE_INTENSITY},
        "regions": [
            {"name": name, "grid_zone": zone, "pue": 1.2, "price_usd_per_kwh": price, "pools": [pool]}
            for name, zone, price in REGIONS
        ],
        "origins": list(ORIGINS),
        "workloads": [
            {
                "name": name,
                "slo_ms": slo,
                "share": share,
                "service": {"gpu": {"distribution": "normal", "mean_ms": mean, "std_ms": std, "min_ms": 1.0}},
            }
            for name, slo, share, mean, std in WORKLOADS
        ],
    }


def run_config(n_requests: int, policy: str, seed: int, utilisation: float) -> RunConfig:
    """A run whose arrival window holds ``n_requests`` requests at the target utilisation."""
    rate = arrival_rate_per_s(utilisation)
    scenario = build(ScenarioConfig, scenario_dict(rate), "scenario")
    return RunConfig(
        scenario=scenario,
        policy=policy_config({"name": policy}),
        seed=seed,
        sim_hours=n_requests / rate / 3600.0,
        drain=True,
        max_drain_hours=1.0,
    )


# --- carbonsim ---------------------------------------------------------------------------------------


def prepare(cfg: RunConfig) -> tuple[World, Requests]:
    """Compiles the world and draws the request stream (the part outside the headline rate)."""
    world = compile_world(cfg.scenario, cfg.seed, signal_hours(cfg.sim_hours, cfg.drain, cfg.max_drain_hours))
    return world, draw_requests(cfg.scenario, cfg.seed, cfg.sim_hours)


def make_simulation(cfg: RunConfig, world: World, requests: Requests) -> Simulation:
    """The simulation of ``cfg``'s policy on prepared arrivals (as :func:`carbonsim.simulate_policy` builds it)."""
    return Simulation(
        world,
        requests,
        make_policy(cfg.policy),
        seed=cfg.seed,
        horizon_s=cfg.sim_hours * 3600.0,
        drain=cfg.drain,
        max_drain_s=cfg.max_drain_hours * 3600.0,
        planning_interval_s=cfg.planning_interval_min * 60.0,
    )


@dataclass(frozen=True)
class CarbonsimTiming:
    """Wall-clock seconds of each phase of a carbonsim run, and its outputs."""

    generate_s: float
    simulate_s: float
    energy_s: float
    cpu_s: float
    result: SimResult
    energy: EnergyAccount

    @property
    def core_s(self) -> float:
        """Simulation plus energy accounting: the denominator of the headline rate."""
        return self.simulate_s + self.energy_s


def time_carbonsim(cfg: RunConfig) -> CarbonsimTiming:
    """Runs carbonsim once, timing generation, simulation and energy accounting separately."""
    gc.collect()
    t0 = time.perf_counter()
    world, requests = prepare(cfg)
    t1 = time.perf_counter()
    c1 = time.process_time()
    result = make_simulation(cfg, world, requests).run()
    t2 = time.perf_counter()
    energy = energy_account(result)
    t3 = time.perf_counter()
    return CarbonsimTiming(t1 - t0, t2 - t1, t3 - t2, time.process_time() - c1, result, energy)


@dataclass(frozen=True)
class CarbonsimMemory:
    """Peak traced bytes of each phase of a carbonsim run (everything allocated since tracing began)."""

    n: int
    generate_peak: int
    held_after_generate: int
    simulate_peak: int
    energy_peak: int
    stream_bytes: int
    record_bytes: int


def measure_carbonsim_memory(cfg: RunConfig) -> CarbonsimMemory:
    """Runs carbonsim under tracemalloc and reports the peak of each phase.

    ``reset_peak`` between phases makes each peak start from what is alive at that point, so the simulation
    peak includes the world and the request stream (allocated earlier, still held) but not the temporaries
    of drawing them.
    """
    gc.collect()
    tracemalloc.start()
    try:
        world, requests = prepare(cfg)
        held, gen_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sim = make_simulation(cfg, world, requests)
        result = sim.run()
        sim_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        energy_account(result)
        energy_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return CarbonsimMemory(len(requests), gen_peak, held, sim_peak, energy_peak, requests.nbytes, result.records.nbytes)


def profile_carbonsim(cfg: RunConfig, top: int) -> str:
    """cProfile of the timed part (simulation + energy accounting), top ``top`` functions by tottime."""
    world, requests = prepare(cfg)
    sim = make_simulation(cfg, world, requests)
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    energy_account(sim.run())
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- naive SimPy M/M/c -------------------------------------------------------------------------------


def _customer(
    env: simpy.Environment, server: simpy.Resource, i: int, service_s: float, start: list[float], end: list[float]
) -> Generator[simpy.Event, Any, None]:
    with server.request() as req:
        yield req
        start[i] = env.now
        yield env.timeout(service_s)
    end[i] = env.now


def _source(
    env: simpy.Environment,
    server: simpy.Resource,
    gaps: list[float],
    service: list[float],
    start: list[float],
    end: list[float],
) -> Generator[simpy.Event, Any, None]:
    for i, (gap, svc) in enumerate(zip(gaps, service, strict=True)):
        yield env.timeout(gap)
        env.process(_customer(env, server, i, svc, start, end))


@dataclass(frozen=True)
class NaiveTiming:
    """Wall-clock seconds of the naive model and its mean wait (simulated and Erlang C)."""

    generate_s: float
    simulate_s: float
    cpu_s: float
    mean_wait_ms: float
    erlang_c_wait_ms: float
    utilisation: float


def erlang_c_wait_s(rate_per_s: float, mean_service_s: float, servers: int) -> float:
    """Mean queueing wait of an M/M/c queue in s (Erlang C)."""
    a = rate_per_s * mean_service_s
    rho = a / servers
    term = 1.0
    total = 1.0
    for k in range(1, servers):
        term *= a / k
        total += term
    last = term * a / servers / (1.0 - rho)
    p_wait = last / (total + last)
    return p_wait * mean_service_s / (servers * (1.0 - rho))


def time_naive(n: int, servers: int, rate_per_s: float, mean_service_s: float, seed: int) -> NaiveTiming:
    """Simulates ``n`` customers of an M/M/c queue, one SimPy process each."""
    gc.collect()
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    gaps_arr = rng.exponential(1.0 / rate_per_s, n)
    service_arr = rng.exponential(mean_service_s, n)
    gaps, service = gaps_arr.tolist(), service_arr.tolist()
    start = [math.nan] * n
    end = [math.nan] * n
    t1 = time.perf_counter()
    c1 = time.process_time()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=servers)
    env.process(_source(env, server, gaps, service, start, end))
    env.run()
    t2 = time.perf_counter()
    cpu = time.process_time() - c1
    waits = np.asarray(start) - np.cumsum(gaps_arr)
    utilisation = float(service_arr.sum() / (servers * env.now))
    return NaiveTiming(
        t1 - t0,
        t2 - t1,
        cpu,
        float(waits.mean() * 1e3),
        erlang_c_wait_s(rate_per_s, mean_service_s, servers) * 1e3,
        utilisation,
    )


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=1_000_000, help="requests (customers) per simulation")
    p.add_argument(
        "--policy",
        default="least_latency",
        choices=policy_names(),
        help="carbonsim routing policy, with its default parameters (default: least_latency, queue-aware load "
        "balancing, which keeps every region near the 70 %% load; hybrid concentrates it)",
    )
    p.add_argument("--utilisation", type=float, default=0.7, help="mean server utilisation (default: 0.7)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default: 0)")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed runs of each simulator, alternating; the fastest of each counts (default: 1)",
    )
    p.add_argument(
        "--memory-requests",
        type=int,
        default=None,
        help="requests in the tracemalloc run (default: --requests; 0 skips it)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also profile carbonsim's timed part (cProfile, top 25 by tottime) in an extra run",
    )
    return checked_arguments(p, p.parse_args(argv))


def checked_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Checks the options this script shares with ``scale.py``, exiting through ``p.error``.

    Also fills in the default of ``--memory-requests`` (the value of ``--requests``).
    """
    if args.requests < 1:
        p.error("--requests must be at least 1")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if not 0.0 < args.utilisation < 1.0:
        p.error("--utilisation must be in (0, 1)")
    if args.memory_requests is None:
        args.memory_requests = args.requests
    return args


def _rate_line(label: str, seconds: float, n: int, note: str = "") -> str:
    return f"  {label:<26}{seconds:8.3f} s   {n / seconds:12,.0f} requests/s{note}"


def main(argv: list[str] | None = None) -> None:
    """Runs both simulations and prints their rates; the last line is ``ratio R bytes_per_request B``."""
    args = parse_args(argv)
    cfg = run_config(args.requests, args.policy, args.seed, args.utilisation)
    rate = cfg.scenario.arrivals.rate_per_s
    c = total_servers()
    mean_service_s = mix_service_ms() * 1e-3
    print(
        f"scenario: {len(REGIONS)} regions x {SERVERS_PER_REGION} GPUs, {len(WORKLOADS)} workloads, "
        f"mean service {mix_service_ms():.1f} ms, {rate:.1f} requests/s (utilisation {args.utilisation:.2f}), "
        f"{cfg.sim_hours:.3f} simulated h; policy {args.policy}; seed {args.seed}"
    )
    print(
        f"carbonsim {carbonsim.__version__} (sources {source_digest()}), simpy {simpy.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}"
    )
    print(
        f"timing: wall clock without tracemalloc, fastest of {args.repeat} run(s) per simulator, "
        f"CPU time of that run in brackets"
    )

    best_cs: CarbonsimTiming | None = None
    best_nv: NaiveTiming | None = None
    for _ in range(args.repeat):
        cs = time_carbonsim(cfg)
        if best_cs is None or cs.core_s < best_cs.core_s:
            best_cs = cs
        del cs
        nv = time_naive(args.requests, c, rate, mean_service_s, args.seed)
        if best_nv is None or nv.simulate_s < best_nv.simulate_s:
            best_nv = nv
    assert best_cs is not None and best_nv is not None

    cs = best_cs
    n = len(cs.result.requests)
    busy_s = cs.energy.busy_server_s.sum(axis=1)
    done = int((cs.result.records.status == COMPLETED).sum())
    per_region = busy_s / (SERVERS_PER_REGION * cs.result.end_s)
    print(
        f"carbonsim: {n:,} requests, {done:,} completed, measured utilisation "
        f"{busy_s.sum() / (c * cs.result.end_s):.3f} (per region {' '.join(f'{u:.2f}' for u in per_region)})"
    )
    print(f"  {'generate requests + world':<26}{cs.generate_s:8.3f} s")
    print(_rate_line("simulate", cs.simulate_s, n))
    print(f"  {'energy account':<26}{cs.energy_s:8.3f} s")
    print(_rate_line("simulate + energy", cs.core_s, n, f"  <- headline  [cpu {cs.cpu_s:.3f} s]"))
    print(_rate_line("incl. generation", cs.core_s + cs.generate_s, n))
    print(
        f"  {'policy decisions':<26}{cs.result.decision_ns / 1e9:8.3f} s   "
        f"({cs.result.decision_ns / max(n, 1) / 1e3:.2f} us per decision, inside 'simulate')"
    )
    carbonsim_rate = n / cs.core_s
    carbonsim_total_rate = n / (cs.core_s + cs.generate_s)
    carbonsim_cpu_s = cs.cpu_s
    best_cs = None
    del cs

    nv = best_nv
    print(
        f"naive SimPy M/M/{c}: {args.requests:,} customers, exponential service mean {mean_service_s * 1e3:.1f} ms, "
        f"measured utilisation {nv.utilisation:.3f}, mean wait {nv.mean_wait_ms:.3f} ms "
        f"(Erlang C {nv.erlang_c_wait_ms:.3f} ms)"
    )
    print(f"  {'draw random numbers':<26}{nv.generate_s:8.3f} s")
    print(_rate_line("simulate", nv.simulate_s, args.requests, f"  <- headline  [cpu {nv.cpu_s:.3f} s]"))
    print(_rate_line("incl. drawing", nv.simulate_s + nv.generate_s, args.requests))
    naive_rate = args.requests / nv.simulate_s
    naive_total_rate = args.requests / (nv.simulate_s + nv.generate_s)
    print(
        f"ratio carbonsim/naive: {carbonsim_rate / naive_rate:.2f} (simulate + energy vs simulate), "
        f"{carbonsim_total_rate / naive_total_rate:.2f} including generation, "
        f"{(nv.cpu_s / args.requests) / (carbonsim_cpu_s / n):.2f} in CPU time of the headline parts"
    )

    bytes_per_request = math.nan
    if args.memory_requests:
        mcfg = run_config(args.memory_requests, args.policy, args.seed, args.utilisation)
        mem = measure_carbonsim_memory(mcfg)
        per = 1.0 / mem.n
        # The whole run's peak: the simulation or the energy account, whichever is higher.
        bytes_per_request = max(mem.simulate_peak, mem.energy_peak) * per
        print(f"carbonsim memory: separate run under tracemalloc ({mem.n:,} requests), bytes per request:")
        print(f"  {'request stream columns':<26}{mem.stream_bytes * per:8.1f}")
        print(f"  {'record columns':<26}{mem.record_bytes * per:8.1f}")
        print(f"  {'held after generation':<26}{mem.held_after_generate * per:8.1f}   (world + request stream)")
        print(f"  {'peak while generating':<26}{mem.generate_peak * per:8.1f}")
        print(
            f"  {'peak while simulating':<26}{mem.simulate_peak * per:8.1f}   "
            f"(stream + records + queues + events + chunk buffers)"
        )
        print(
            f"  {'peak in energy account':<26}{mem.energy_peak * per:8.1f}   (stream + records + account temporaries)"
        )
        print(f"  {'peak of the whole run':<26}{bytes_per_request:8.1f}   <- bytes_per_request")

    if args.profile:
        print(f"cProfile of carbonsim simulate + energy account ({args.requests:,} requests), top 25 by tottime:")
        print(profile_carbonsim(cfg, 25))

    print(f"ratio {carbonsim_rate / naive_rate:.2f} bytes_per_request {bytes_per_request:.1f}")


if __name__ == "__main__":
    main()
