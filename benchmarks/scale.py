"""Throughput and memory of carbonsim at 40 and at 10,000 servers, for the same number of requests.

Both runs use ``core_throughput.py``'s scenario (5 regions, 3 workloads with normal service times, 4 origins,
synthetic diurnal carbon, one pool per region, no batching), with 8 or 2,000 GPU servers per region, the same
workload mix and the same number of requests, in two comparisons:

* **same request stream**: both fleets receive the 40-server fleet's load (70 % of 40 servers). Only the fleet
  changes, so this isolates what the number of servers costs per request (the headline, last line);
* **same utilisation**: the arrival rate scales with the fleet (250 times higher at 10,000 servers), so the
  requests in flight, and with them SimPy's pending events, grow 250-fold too (the requests span 18 minutes
  of simulated time at 40 servers, 4.3 seconds at 10,000). This measures the fleet *and* the load it carries:
  every event then costs a push and a pop in a heap of thousands of pending events instead of tens.

Speed: the wall time of building the ``Simulation``, ``run()`` and
:func:`carbonsim.analysis.metrics.energy_account` (``core_throughput.py``'s headline), fastest of
``--repeat`` runs per size, the sizes alternating. Memory: the peak resident set size (Linux's ``VmHWM``) of a
child process during each phase of a run (generation, simulation, energy account) minus its RSS before the
run, one child per size; the peak is reset before each phase (``/proc/self/clear_refs``), so import-time
peaks do not count. See ``benchmarks/README.md``.

Run: ``python benchmarks/scale.py [--requests N] [--policy NAME] [--repeat K]``; the last two lines are
``ratio_10000_vs_40_same_utilisation <Y>`` and ``ratio_10000_vs_40 <X>``, with X (same request stream) and Y
(same utilisation) = requests per wall-second at 10,000 servers / at 40 servers.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import platform
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import simpy

import carbonsim
from carbonsim import RunConfig, ScenarioConfig, build, policy_config, policy_names
from carbonsim.analysis.metrics import energy_account


def _sibling(name: str) -> ModuleType:
    """Imports another benchmark script of this folder as a module (the folder is not a package)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"carbonsim_benchmarks_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ct = _sibling("core_throughput")

#: Servers per region of the two sizes compared (5 regions: 40 and 10,000 servers).
SMALL_PER_REGION = 8
LARGE_PER_REGION = 2_000


def n_regions() -> int:
    """Regions of the scenario (``core_throughput.py``'s five)."""
    return len(ct.REGIONS)


def arrival_rate_per_s(servers_per_region: int, utilisation: float) -> float:
    """Arrival rate that loads all servers to ``utilisation`` on average, in requests/s."""
    return utilisation * servers_per_region * n_regions() / (ct.mix_service_ms() * 1e-3)


def scale_config(
    n_requests: int,
    servers_per_region: int,
    policy: str,
    seed: int,
    utilisation: float,
    load_per_region: int | None = None,
) -> RunConfig:
    """``core_throughput.py``'s run with ``servers_per_region`` servers in every region, holding ``n_requests``.

    The arrival rate loads ``load_per_region`` servers per region (default: all of them) to ``utilisation``.
    """
    rate = arrival_rate_per_s(load_per_region or servers_per_region, utilisation)
    data = ct.scenario_dict(rate)
    data["description"] = f"{n_regions()} regions x {servers_per_region} GPUs, flat load for the scale benchmark"
    data["regions"] = [
        {**region, "pools": [{**pool, "count": servers_per_region} for pool in region["pools"]]}
        for region in data["regions"]
    ]
    return RunConfig(
        scenario=build(ScenarioConfig, data, "scenario"),
        policy=policy_config({"name": policy}),
        seed=seed,
        sim_hours=n_requests / rate / 3600.0,
        drain=True,
        max_drain_hours=1.0,
    )


@dataclass(frozen=True)
class SizeTiming:
    """The fastest timed run of one fleet size, reduced to numbers (the run's arrays are released)."""

    servers: int
    requests: int
    completed: int
    utilisation: float
    simulated_s: float
    generate_s: float
    simulate_s: float
    energy_s: float
    cpu_s: float
    decision_us: float

    @property
    def core_s(self) -> float:
        """Simulation plus energy accounting: the denominator of the headline rate."""
        return self.simulate_s + self.energy_s

    @property
    def rate_per_s(self) -> float:
        """Headline: requests per wall-second of simulation plus energy accounting."""
        return self.requests / self.core_s


def time_size(cfg: RunConfig) -> SizeTiming:
    """Times one run of ``cfg`` (``core_throughput.time_carbonsim``) and keeps its figures."""
    cs = ct.time_carbonsim(cfg)
    n = len(cs.result.requests)
    servers = int(sum(p.count for r in cfg.scenario.regions for p in r.pools))
    busy_s = float(cs.energy.busy_server_s.sum())
    done = int((~np.isnan(cs.result.records.end_s)).sum())
    return SizeTiming(
        servers=servers,
        requests=n,
        completed=done,
        utilisation=busy_s / (servers * cs.result.end_s) if cs.result.end_s > 0 else float("nan"),
        simulated_s=cs.result.end_s,
        generate_s=cs.generate_s,
        simulate_s=cs.simulate_s,
        energy_s=cs.energy_s,
        cpu_s=cs.cpu_s,
        decision_us=cs.result.decision_ns / max(n, 1) / 1e3,
    )


def best_timings(
    n_requests: int, policy: str, seed: int, utilisation: float, repeat: int, same_stream: bool = False
) -> tuple[SizeTiming, SizeTiming]:
    """Fastest of ``repeat`` runs at 40 and at 10,000 servers, alternating the sizes.

    With ``same_stream`` both fleets receive the 40-server fleet's request stream (same rate, same
    requests); otherwise the rate scales with the fleet (same utilisation).
    """
    small_cfg = scale_config(n_requests, SMALL_PER_REGION, policy, seed, utilisation)
    load = SMALL_PER_REGION if same_stream else None
    large_cfg = scale_config(n_requests, LARGE_PER_REGION, policy, seed, utilisation, load_per_region=load)
    best: dict[int, SizeTiming] = {}
    for _ in range(repeat):
        for cfg in (small_cfg, large_cfg):
            t = time_size(cfg)
            if t.servers not in best or t.core_s < best[t.servers].core_s:
                best[t.servers] = t
            gc.collect()
    return best[SMALL_PER_REGION * n_regions()], best[LARGE_PER_REGION * n_regions()]


# --- memory: peak RSS of a child process -------------------------------------------------------------


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux: VmHWM of /proc/self/status, in KiB).

    Not ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: a process started by another inherits its parent's peak
    there (Linux records the old memory's peak on exec), so a child could never report less than the parent's
    peak at the time it was started.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _rss_bytes() -> int:
    """Resident set size now (Linux: the second field of /proc/self/statm, in pages)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def _reset_peak() -> bool:
    """Resets this process's peak RSS to its current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_run(n_requests: int, servers_per_region: int, policy: str, seed: int, utilisation: float) -> dict[str, Any]:
    """Runs generation, simulation and energy account once and reports the peak RSS of each phase.

    Meant to run in a fresh child process (:func:`memory_in_child`). The peak RSS (:func:`_peak_rss_bytes`)
    is reset to the current RSS (``/proc/self/clear_refs``) before each phase, so that each phase's peak
    starts from what is held at its start (as ``tracemalloc.reset_peak`` does in ``core_throughput.py``) and
    import-time peaks do not count; every figure is a peak minus the RSS before generation (interpreter,
    imports, configuration).
    """
    cfg = scale_config(n_requests, servers_per_region, policy, seed, utilisation)
    gc.collect()
    reset = _reset_peak()
    before = _rss_bytes()
    world, requests = ct.prepare(cfg)
    generate_peak = _peak_rss_bytes()
    held = _rss_bytes()
    _reset_peak()
    result = ct.make_simulation(cfg, world, requests).run()
    simulate_peak = _peak_rss_bytes()
    _reset_peak()
    energy_account(result)
    energy_peak = _peak_rss_bytes()
    return {
        "servers": servers_per_region * n_regions(),
        "requests": len(requests),
        "peak_reset": reset,
        "before_bytes": before,
        "generate_bytes": generate_peak - before,
        "held_bytes": held - before,
        "simulate_bytes": simulate_peak - before,
        "energy_bytes": energy_peak - before,
        "process_peak_bytes": max(generate_peak, simulate_peak, energy_peak),
        "stream_bytes": requests.nbytes,
        "record_bytes": result.records.nbytes,
    }


def memory_in_child(
    n_requests: int, servers_per_region: int, policy: str, seed: int, utilisation: float
) -> dict[str, Any]:
    """:func:`memory_run` in a child Python process (this script with ``--memory-child``); its JSON result."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-child",
        str(servers_per_region),
        "--requests",
        str(n_requests),
        "--policy",
        policy,
        "--seed",
        str(seed),
        "--utilisation",
        repr(utilisation),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=1_000_000, help="requests per run (default: 1,000,000)")
    p.add_argument(
        "--policy",
        default="least_latency",
        choices=policy_names(),
        help="routing policy with its default parameters (default: least_latency)",
    )
    p.add_argument("--utilisation", type=float, default=0.7, help="mean server utilisation (default: 0.7)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default: 0)")
    p.add_argument(
        "--repeat", type=int, default=1, help="timed runs per size, alternating; the fastest counts (default: 1)"
    )
    p.add_argument(
        "--memory-requests",
        type=int,
        default=None,
        help="requests in the memory runs (default: --requests; 0 skips them)",
    )
    p.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    return ct.checked_arguments(p, p.parse_args(argv))


def _size_lines(t: SizeTiming) -> list[str]:
    per_region = t.servers // n_regions()
    return [
        f"{t.servers:,} servers ({n_regions()} x {per_region:,}): {t.requests:,} requests, {t.completed:,} completed, "
        f"{t.simulated_s:,.2f} simulated s, measured utilisation {t.utilisation:.3f}",
        f"  {'generate requests + world':<26}{t.generate_s:8.3f} s",
        ct._rate_line("simulate", t.simulate_s, t.requests),
        f"  {'energy account':<26}{t.energy_s:8.3f} s",
        ct._rate_line("simulate + energy", t.core_s, t.requests, f"  <- headline  [cpu {t.cpu_s:.3f} s]"),
        f"  {'policy decisions':<26}{t.decision_us:8.2f} us per decision (inside 'simulate')",
    ]


def main(argv: list[str] | None = None) -> None:
    """Times both sizes and prints their rates; the last line is ``ratio_10000_vs_40 X``."""
    args = parse_args(argv)
    if args.memory_child is not None:
        print(json.dumps(memory_run(args.requests, args.memory_child, args.policy, args.seed, args.utilisation)))
        return
    small_rate = arrival_rate_per_s(SMALL_PER_REGION, args.utilisation)
    large_rate = arrival_rate_per_s(LARGE_PER_REGION, args.utilisation)
    print(
        f"scenario: core_throughput.py's ({n_regions()} regions, {len(ct.WORKLOADS)} workloads, mean service "
        f"{ct.mix_service_ms():.1f} ms, one pool per region, no batching) at utilisation {args.utilisation:.2f}: "
        f"{SMALL_PER_REGION * n_regions()} servers at {small_rate:,.1f} requests/s and "
        f"{LARGE_PER_REGION * n_regions():,} servers at {large_rate:,.1f} requests/s; {args.requests:,} requests "
        f"per run; policy {args.policy}; seed {args.seed}"
    )
    print(
        f"carbonsim {carbonsim.__version__} (sources {ct.source_digest()}), simpy {simpy.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}"
    )
    print(f"timing: wall clock, fastest of {args.repeat} run(s) per size (sizes alternating), CPU time in brackets")
    ratios = {}
    for same_stream, title in (
        (True, "same request stream (the 10,000-server fleet gets the 40-server fleet's load): the cost of the fleet"),
        (False, "same utilisation (the rate scales with the fleet): the cost of the fleet and of the load it carries"),
    ):
        print(title)
        small, large = best_timings(
            args.requests, args.policy, args.seed, args.utilisation, args.repeat, same_stream=same_stream
        )
        for t in (small, large):
            for line in _size_lines(t):
                print(line)
        ratio = large.rate_per_s / small.rate_per_s
        cpu_ratio = (small.cpu_s / small.requests) / (large.cpu_s / large.requests)
        ratios[same_stream] = ratio
        print(
            f"  ratio 10,000 / 40 servers: {ratio:.3f} in requests per wall-second (simulate + energy), "
            f"{cpu_ratio:.3f} in CPU time"
        )
    if args.memory_requests:
        print(
            f"memory: peak RSS of a child process over the run (generation + simulation + energy account) minus its "
            f"RSS before it, {args.memory_requests:,} requests, one child per size; MB per million requests "
            f"(= bytes per request)"
        )
        for per_region in (SMALL_PER_REGION, LARGE_PER_REGION):
            mem = memory_in_child(args.memory_requests, per_region, args.policy, args.seed, args.utilisation)
            per = 1.0 / mem["requests"]
            print(
                f"  {mem['servers']:>6,} servers: peak while generating {mem['generate_bytes'] * per:6.1f}, held after "
                f"generation {mem['held_bytes'] * per:6.1f}, peak while simulating {mem['simulate_bytes'] * per:6.1f}, "
                f"peak in energy account {mem['energy_bytes'] * per:6.1f}, whole run "
                f"{max(mem['generate_bytes'], mem['simulate_bytes'], mem['energy_bytes']) * per:6.1f}  <- headline"
            )
            print(
                f"  {'':>14} stream {mem['stream_bytes'] * per:.0f} B + records {mem['record_bytes'] * per:.0f} B per "
                f"request; process peak {mem['process_peak_bytes'] / 1e6:,.0f} MB"
                f"{'' if mem['peak_reset'] else '; peaks not reset between phases: upper bounds'}"
            )
    print(f"ratio_10000_vs_40_same_utilisation {ratios[False]:.3f}")
    print(f"ratio_10000_vs_40 {ratios[True]:.3f}")


if __name__ == "__main__":
    main()
