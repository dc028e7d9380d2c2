"""Scheduler overhead against cluster size: microseconds per routing decision, milliseconds per plan.

Every registered routing policy (``llm_planner`` only with ``--llm``) routes the same fixed number of requests
on synthetic scenarios of two sweeps:

* ``servers``: a fleet of 10, 100, 1,000 and 10,000 servers in a fixed number of regions (default 5);
* ``regions``: 3, 10 and 30 regions with a fixed number of servers per region (default 20).

The regions are synthetic (the catalog has only 14 real ones): evenly spaced on a ring with 4 origins, round
trip 5 ms + 400 ms x ring distance (5-205 ms), synthetic diurnal carbon with base intensities spread over
25-600 gCO2/kWh, flat prices; one pool of identical GPUs per region (60 W idle, 300 W busy), no batching; the
three workloads of ``core_throughput.py`` (normal service times, mix mean 30 ms). The arrival rate loads all
servers to ``--utilisation`` (so it scales with the servers), arrivals are ``fixed_per_hour`` and the
window is set so that every run holds exactly ``--decisions`` requests.

Per run the simulator measures the time inside the policy's ``decide`` (``SimResult.decision_ns``, the
figure behind ``timing["decision_overhead_us"]``) and inside ``plan``; the planning interval is a quarter of
the arrival window, so a run has 4 plans, of which the first (at t = 0) has no arrivals to plan from and
returns at once: the time per plan is the planning time over the other 3. The simulation's figure includes
what the event loop does to the policy (a larger fleet has more events pending and more memory in use, so
more cache misses); to tell that apart from work the policy does per server, ``decide`` is also timed alone
(``isolated_us``): on the simulator's view frozen in a steady state (70 % of every region's servers busy, no
queue), the sizes of a sweep taking turns in batches of 50 calls, the fastest batch of each counting.

``ppo`` runs an untrained network of the right shape (:func:`carbonsim.learn.checkpoint.random_policy`) and
``transformer`` an untrained default-size network (:func:`carbonsim.learn.transformer.build_model`), both from
temporary checkpoints.

Writes ``overhead.csv`` and ``overhead.png`` / ``.pdf`` (:mod:`carbonsim.analysis.overhead_figures`) to
``--out`` and prints the tables and, per policy, how its decision cost changes from the smallest to the
largest fleet and from the fewest to the most regions, flagging a policy whose isolated cost grows by more
than 1.5x with the servers (per-server work). See ``benchmarks/README.md``.

Run: ``python benchmarks/overhead.py [--decisions N] [--repeat K] [--llm] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import simpy

import carbonsim
from carbonsim import PolicyConfig, RunConfig, ScenarioConfig, build, make_policy, policy_config, policy_names
from carbonsim.core.simulation import Simulation
from carbonsim.core.view import DecisionView


def _sibling(name: str) -> ModuleType:
    """Imports another benchmark script of this folder as a module (the folder is not a package)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"carbonsim_benchmarks_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ct = _sibling("core_throughput")

#: Policies that plan every interval; their time per plan is reported.
PLANNING = ("casper", "llm_planner")
#: Plans per run: the planning interval is the arrival window divided by this.
PLANS_PER_RUN = 4
#: Origins on the ring: name, position (fraction of the ring), share of the requests.
ORIGINS = (("origin-0", 0.0, 0.40), ("origin-1", 0.25, 0.20), ("origin-2", 0.5, 0.25), ("origin-3", 0.75, 0.15))
#: Calls per batch of the isolated decision timing; the fastest batch counts (short batches: most of them
#: run between two preemptions by other processes on a shared machine).
ISOLATED_BATCH = 50
#: A policy whose decision costs this many times more at the largest fleet than at the smallest is flagged.
GROWTH_FLAG = 1.5


def _spread(i: int) -> float:
    """A deterministic, well-spread fraction in [0, 1) for index ``i`` (golden-ratio sequence)."""
    return (0.5 + i * 0.6180339887498949) % 1.0


def ring_rtt_ms(origin_pos: float, region_pos: float) -> float:
    """Round trip between two points of the ring in ms: 5 ms + 400 ms x ring distance (0 to 0.5)."""
    d = abs(origin_pos - region_pos) % 1.0
    return round(5.0 + 400.0 * min(d, 1.0 - d), 1)


def mix_service_ms() -> float:
    """Mean service time over the workload mix in ms."""
    return float(ct.mix_service_ms())


def arrival_rate_per_s(servers: int, utilisation: float) -> float:
    """Arrival rate that loads ``servers`` servers to ``utilisation`` on average, in requests/s."""
    return utilisation * servers / (mix_service_ms() * 1e-3)


def synthetic_scenario(n_regions: int, servers_per_region: int, rate_per_s: float) -> dict[str, Any]:
    """A synthetic scenario with ``n_regions`` regions on a ring, as plain data for :func:`carbonsim.build`."""
    names = [f"region-{i:02d}" for i in range(n_regions)]
    positions = [(i + 0.5) / n_regions for i in range(n_regions)]
    pool = {"hardware": "gpu", "count": servers_per_region, "idle_w": 60.0, "busy_w": 300.0}
    return {
        "name": f"overhead_{n_regions}x{servers_per_region}",
        "description": f"{n_regions} synthetic regions x {servers_per_region} GPUs on a ring (overhead benchmark)",
        "jitter_std_ms": 3.0,
        "arrivals": {"kind": "fixed_per_hour", "rate_per_s": rate_per_s},
        "carbon": {
            "kind": "synthetic_diurnal",
            "base_gco2_per_kwh": {f"ZONE-{i:02d}": round(25.0 + 575.0 * _spread(i), 1) for i in range(n_regions)},
        },
        "regions": [
            {
                "name": name,
                "grid_zone": f"ZONE-{i:02d}",
                "pue": 1.2,
                "price_usd_per_kwh": round(0.05 + 0.1 * _spread(i + 7), 4),
                "pools": [pool],
            }
            for i, name in enumerate(names)
        ],
        "origins": [
            {
                "name": name,
                "share": share,
                "rtt_ms": {r: ring_rtt_ms(pos, p) for r, p in zip(names, positions, strict=True)},
            }
            for name, pos, share in ORIGINS
        ],
        "workloads": [
            {
                "name": name,
                "slo_ms": slo,
                "share": share,
                "service": {"gpu": {"distribution": "normal", "mean_ms": mean, "std_ms": std, "min_ms": 1.0}},
            }
            for name, slo, share, mean, std in ct.WORKLOADS
        ],
    }


@dataclass(frozen=True)
class Size:
    """One cluster size of a sweep."""

    sweep: str
    regions: int
    servers_per_region: int

    @property
    def servers(self) -> int:
        """Servers of the whole fleet."""
        return self.regions * self.servers_per_region


def sizes(fleet: Sequence[int], fleet_regions: int, regions: Sequence[int], servers_per_region: int) -> list[Size]:
    """The two sweeps: fleets of ``fleet`` servers in ``fleet_regions`` regions, ``regions`` regions of
    ``servers_per_region`` servers each."""
    out = []
    for servers in fleet:
        if servers % fleet_regions:
            raise ValueError(f"a fleet of {servers} servers does not split evenly into {fleet_regions} regions")
        out.append(Size("servers", fleet_regions, servers // fleet_regions))
    out += [Size("regions", n, servers_per_region) for n in regions]
    return out


def run_config(size: Size, decisions: int, seed: int, utilisation: float) -> RunConfig:
    """A run of ``size`` holding exactly ``decisions`` requests at the given utilisation."""
    rate = arrival_rate_per_s(size.servers, utilisation)
    scenario = build(ScenarioConfig, synthetic_scenario(size.regions, size.servers_per_region, rate), "scenario")
    return RunConfig(
        scenario=scenario,
        policy=policy_config({"name": "latency_first"}),
        seed=seed,
        sim_hours=decisions / rate / 3600.0,
        drain=True,
        max_drain_hours=1.0,
        planning_interval_min=decisions / rate / PLANS_PER_RUN / 60.0,
    )


class Checkpoints:
    """Untrained checkpoints for the learned policies, written once into a folder.

    Args:
        folder: Where to write them.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._transformer: Path | None = None

    def ppo(self, scenario: ScenarioConfig) -> Path:
        """An untrained MLP shaped for ``scenario``'s regions and workloads."""
        from carbonsim.learn import checkpoint as ckpt

        path = self.folder / f"ppo_{len(scenario.regions)}.npz"
        if not path.exists():
            network = ckpt.random_policy(list(scenario.region_names), list(scenario.workload_names))
            ckpt.save(path, network)
        return path

    def transformer(self) -> Path:
        """An untrained transformer of the default size (it routes over any number of regions)."""
        if self._transformer is None:
            from carbonsim.learn import transformer as tf
            from carbonsim.learn.config import TransformerConfig

            self._transformer = tf.save(self.folder / "transformer.safetensors", tf.build_model(TransformerConfig()))
        return self._transformer


def policy_for(name: str, scenario: ScenarioConfig, checkpoints: Checkpoints) -> PolicyConfig:
    """The policy ``name`` with its default parameters (and an untrained checkpoint where it needs one)."""
    if name == "ppo":
        return policy_config({"name": name, "checkpoint": str(checkpoints.ppo(scenario))})
    if name == "transformer":
        return policy_config({"name": name, "checkpoint": str(checkpoints.transformer())})
    return policy_config({"name": name})


@dataclass(frozen=True)
class Measurement:
    """One policy on one size: its cost per decision and per plan."""

    policy: str
    sweep: str
    regions: int
    servers_per_region: int
    servers: int
    decisions: int
    decision_us: float
    isolated_us: float
    plans: int
    plan_ms: float
    prompt_tokens: float
    wall_s: float


def _simulation(policy: PolicyConfig, cfg: RunConfig, prepared: tuple[Any, Any]) -> Simulation:
    world, requests = prepared
    return Simulation(
        world,
        requests,
        make_policy(policy),
        seed=cfg.seed,
        horizon_s=cfg.sim_hours * 3600.0,
        drain=cfg.drain,
        max_drain_s=cfg.max_drain_hours * 3600.0,
        planning_interval_s=cfg.planning_interval_min * 60.0,
    )


@dataclass
class FrozenDecider:
    """A policy and the simulator's decision view, frozen in a steady state, for timing ``decide`` alone."""

    decide: Callable[[DecisionView], int]
    view: DecisionView
    n_origins: int
    n_workloads: int
    n_requests: int

    def call(self, start: int, count: int) -> None:
        """``count`` decisions, cycling through the origins, workloads and request ids from ``start``."""
        view, decide = self.view, self.decide
        n_o, n_w, n_r = self.n_origins, self.n_workloads, self.n_requests
        for i in range(start, start + count):
            # The fields the simulator's arrival callback sets before each decision.
            view._request = i % n_r
            view._origin = i % n_o
            view._workload = i % n_w
            decide(view)


def frozen_decider(
    policy: PolicyConfig, cfg: RunConfig, size: Size, prepared: tuple[Any, Any], utilisation: float
) -> FrozenDecider:
    """``policy`` reset for ``size``'s scenario, with ``utilisation`` x its servers busy and no queue anywhere."""
    sim = _simulation(policy, cfg, prepared)
    sim.policy.reset(sim.context)
    busy = round(utilisation * size.servers_per_region)
    for r in range(size.regions):
        sim.state.busy[r] = busy
        sim.state.qlen[r] = 0
    view = sim.view
    view._intensity = sim.world.carbon.all_at(0.0)
    view._price = sim.world.price.all_at(0.0)
    return FrozenDecider(
        sim.policy.decide, view, len(cfg.scenario.origins), len(cfg.scenario.workloads), max(len(prepared[1]), 1)
    )


def isolated_decision_us(deciders: Sequence[FrozenDecider], decisions: int) -> list[float]:
    """Microseconds per ``decide`` call outside the event loop, for each of ``deciders`` (one per size).

    Nothing else runs between the calls, so the figure is the policy's own cost at each size, free of the
    event loop's (a larger fleet has more events pending and more memory in use, hence more cache misses).
    The sizes take turns, one batch of :data:`ISOLATED_BATCH` calls each, and the fastest batch of each counts:
    on a shared machine (other processes, a busy sibling hyperthread), every size then sees the same
    conditions, and the minimum is the least disturbed.
    """
    for d in deciders:
        d.call(0, 1)  # hourly caches are filled on the first call
    batch = min(ISOLATED_BATCH, decisions)
    best_ns = [math.inf] * len(deciders)
    gc.collect()
    for b in range(max(decisions // batch, 1)):
        for k, d in enumerate(deciders):
            t0 = time.perf_counter_ns()
            d.call(b * batch, batch)
            best_ns[k] = min(best_ns[k], (time.perf_counter_ns() - t0) / batch)
    return [ns / 1e3 for ns in best_ns]


def measure(policy: PolicyConfig, cfg: RunConfig, size: Size, prepared: tuple[Any, Any], repeat: int) -> Measurement:
    """Runs ``policy`` on the prepared arrivals ``repeat`` times; the fastest decision and plan times count."""
    requests = prepared[1]
    best_us = best_plan_ms = math.inf
    plans = 0
    wall_s = 0.0
    prompt_tokens = math.nan
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = _simulation(policy, cfg, prepared).run()
        wall_s = time.perf_counter() - t0
        best_us = min(best_us, result.decision_ns / max(len(requests), 1) / 1e3)
        # The plan at t = 0 has no arrivals to plan from and returns at once: it is not counted.
        plans = max(result.plans - 1, 0)
        if plans:
            best_plan_ms = min(best_plan_ms, result.plan_ns / plans / 1e6)
        # A language-model planner reports the length of its prompts, which sets most of a plan's cost.
        calls = result.policy_stats.get("llm_calls", 0.0)
        if calls:
            prompt_tokens = result.policy_stats.get("prompt_tokens", math.nan) / calls
    return Measurement(
        policy=policy.name,
        sweep=size.sweep,
        regions=size.regions,
        servers_per_region=size.servers_per_region,
        servers=size.servers,
        decisions=len(requests),
        decision_us=best_us,
        isolated_us=math.nan,
        plans=plans,
        plan_ms=best_plan_ms if policy.name in PLANNING and plans else math.nan,
        prompt_tokens=prompt_tokens,
        wall_s=wall_s,
    )


def run_sweeps(
    policies: Sequence[str],
    grid: Sequence[Size],
    decisions: int,
    seed: int,
    utilisation: float,
    repeat: int,
    folder: Path,
    isolated: int = 0,
    progress: Callable[[Measurement], None] | None = None,
) -> pd.DataFrame:
    """Measures every policy on every size; one row per (policy, size), in the order of ``grid``.

    Args:
        policies: Registered policy names.
        grid: The sizes (:func:`sizes`).
        decisions: Requests (routing decisions) per run.
        seed: Root seed.
        utilisation: Mean server utilisation the arrival rate is set to.
        repeat: Runs per policy and size; the fastest counts.
        folder: Where the untrained checkpoints go.
        isolated: Decisions per policy and size timed outside the event loop, the sizes of each sweep taking
            turns (:func:`isolated_decision_us`); 0: none (``isolated_us`` is NaN).
        progress: Called with every measurement of a run as it is made.
    """
    checkpoints = Checkpoints(folder)
    runs = [(size, run_config(size, decisions, seed, utilisation)) for size in grid]
    prepared = [ct.prepare(cfg) for _size, cfg in runs]
    rows = []
    for (size, cfg), data in zip(runs, prepared, strict=True):
        for name in policies:
            m = measure(policy_for(name, cfg.scenario, checkpoints), cfg, size, data, repeat)
            rows.append(asdict(m))
            if progress is not None:
                progress(m)
    table = pd.DataFrame(rows)
    if isolated:
        # Row of (size index, policy): the rows are in grid order, the policies in order within each size.
        row = {(k, name): k * len(policies) + j for k in range(len(runs)) for j, name in enumerate(policies)}
        for sweep in dict.fromkeys(size.sweep for size in grid):
            members = [k for k, (size, _cfg) in enumerate(runs) if size.sweep == sweep]
            for name in policies:
                deciders = [
                    frozen_decider(
                        policy_for(name, runs[k][1].scenario, checkpoints),
                        runs[k][1],
                        runs[k][0],
                        prepared[k],
                        utilisation,
                    )
                    for k in members
                ]
                for k, us in zip(members, isolated_decision_us(deciders, isolated), strict=True):
                    table.loc[row[(k, name)], "isolated_us"] = us
    return table


def growth(table: pd.DataFrame, sweep: str, column: str = "decision_us") -> pd.Series:
    """Per policy, ``column`` at the largest size of ``sweep`` over its value at the smallest."""
    key = "servers" if sweep == "servers" else "regions"
    rows = table[table["sweep"] == sweep].sort_values(key)
    first = rows.groupby("policy", sort=False)[column].first()
    last = rows.groupby("policy", sort=False)[column].last()
    return last / first


def format_table(table: pd.DataFrame, sweep: str, column: str, digits: int) -> str:
    """One line per policy, one column per size of ``sweep``, and the largest-over-smallest ratio."""
    key = "servers" if sweep == "servers" else "regions"
    rows = table[(table["sweep"] == sweep) & table[column].notna()]
    if rows.empty:
        return ""
    wide = rows.pivot_table(index="policy", columns=key, values=column, sort=False)
    ratio = growth(rows, sweep, column)
    head = f"  {'policy':<20}" + "".join(f"{c:>11,}" for c in wide.columns) + f"{'ratio':>9}"
    lines = [head]
    for policy, values in wide.iterrows():
        cells = "".join(f"{v:11.{digits}f}" for v in values)
        lines.append(f"  {policy!s:<20}{cells}{ratio[policy]:9.2f}")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--decisions", type=int, default=20_000, help="requests (routing decisions) per run")
    p.add_argument("--fleet", type=_ints, default=[10, 100, 1_000, 10_000], help="fleet sizes of the servers sweep")
    p.add_argument("--fleet-regions", type=int, default=5, help="regions of the servers sweep (default: 5)")
    p.add_argument("--regions", type=_ints, default=[3, 10, 30], help="region counts of the regions sweep")
    p.add_argument(
        "--servers-per-region", type=int, default=20, help="servers per region of the regions sweep (default: 20)"
    )
    p.add_argument("--utilisation", type=float, default=0.7, help="mean server utilisation (default: 0.7)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default: 0)")
    p.add_argument("--repeat", type=int, default=1, help="runs per policy and size; the fastest counts (default: 1)")
    p.add_argument(
        "--isolated",
        type=int,
        default=10_000,
        help="decisions timed outside the event loop per policy and size (default: 10,000; 0 skips them)",
    )
    p.add_argument("--policies", type=lambda s: s.split(","), default=None, help="comma-separated subset of policies")
    p.add_argument("--llm", action="store_true", help="include llm_planner (loads SmolLM2-135M; seconds per plan)")
    p.add_argument("--out", type=Path, default=Path("outputs/benchmarks/overhead"), help="folder of the CSV and figure")
    args = p.parse_args(argv)
    if args.decisions < 1 or args.repeat < 1 or args.isolated < 0:
        p.error("--decisions and --repeat must be at least 1, --isolated at least 0")
    if not 0.0 < args.utilisation < 1.0:
        p.error("--utilisation must be in (0, 1)")
    known = policy_names()
    if args.policies is None:
        args.policies = [n for n in known if n != "llm_planner" or args.llm]
    unknown = sorted(set(args.policies) - set(known))
    if unknown:
        p.error(f"unknown policies {', '.join(unknown)}; registered: {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Runs both sweeps, writes the CSV and the figure, prints the tables; returns the table."""
    from carbonsim.analysis.overhead_figures import write_overhead_figure

    args = parse_args(argv)
    grid = sizes(args.fleet, args.fleet_regions, args.regions, args.servers_per_region)
    print(
        f"overhead: {len(args.policies)} policies ({', '.join(args.policies)}), {args.decisions:,} decisions per run, "
        f"utilisation {args.utilisation:.2f} (rate {arrival_rate_per_s(1, args.utilisation):.2f} requests/s per "
        f"server), {PLANS_PER_RUN} plans per run, fastest of {args.repeat}; seed {args.seed}"
    )
    print(
        f"  servers sweep: {', '.join(f'{s:,}' for s in args.fleet)} servers in {args.fleet_regions} regions; "
        f"regions sweep: {', '.join(map(str, args.regions))} regions x {args.servers_per_region} servers; "
        f"synthetic regions on a ring"
    )
    print(
        f"carbonsim {carbonsim.__version__} (sources {ct.source_digest()}), simpy {simpy.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}"
    )

    def show(m: Measurement) -> None:
        plan = f", {m.plan_ms:.3f} ms per plan" if not math.isnan(m.plan_ms) else ""
        plan += f" ({m.prompt_tokens:.0f} prompt tokens)" if not math.isnan(m.prompt_tokens) else ""
        print(
            f"  {m.policy:<20} {m.regions:>3} regions x {m.servers_per_region:>5,} = {m.servers:>6,} servers: "
            f"{m.decision_us:9.2f} us per decision{plan}  [{m.wall_s:.1f} s]",
            flush=True,
        )

    with tempfile.TemporaryDirectory(prefix="carbonsim-overhead-") as tmp:
        table = run_sweeps(
            args.policies,
            grid,
            args.decisions,
            args.seed,
            args.utilisation,
            args.repeat,
            Path(tmp),
            args.isolated,
            show,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "overhead.csv"
    table.to_csv(csv_path, index=False, float_format="%.6g")
    png, pdf = write_overhead_figure(table, args.out)

    print(f"decision overhead in us per decision, {args.fleet_regions} regions (ratio: largest / smallest fleet):")
    print(format_table(table, "servers", "decision_us", 2))
    print(f"decision overhead in us per decision, {args.servers_per_region} servers per region (ratio: most / fewest):")
    print(format_table(table, "regions", "decision_us", 2))
    if table["isolated_us"].notna().any():
        print(f"isolated decide() in us per call, outside the event loop, {args.fleet_regions} regions:")
        print(format_table(table, "servers", "isolated_us", 2))
        print(f"isolated decide() in us per call, {args.servers_per_region} servers per region:")
        print(format_table(table, "regions", "isolated_us", 2))
    plans = table[table["plan_ms"].notna()]
    if not plans.empty:
        print("planning: ms per plan, servers sweep:")
        print(format_table(plans, "servers", "plan_ms", 3))
        print("planning: ms per plan, regions sweep:")
        print(format_table(plans, "regions", "plan_ms", 3))
    if table["prompt_tokens"].notna().any():
        print("planning: prompt tokens per plan of the language-model planner, servers sweep:")
        print(format_table(table, "servers", "prompt_tokens", 0))
        print("planning: prompt tokens per plan, regions sweep:")
        print(format_table(table, "regions", "prompt_tokens", 0))
    # Per-server work shows as a cost that grows with the fleet at a fixed number of regions. The isolated
    # figure decides (the policy's own code); the in-simulation one also moves with the event loop's state.
    column = "isolated_us" if table["isolated_us"].notna().all() else "decision_us"
    by_servers = growth(table, "servers", column)
    in_sim = growth(table, "servers", "decision_us")
    fleet = f"from {min(args.fleet):,} to {max(args.fleet):,} servers at {args.fleet_regions} regions"
    flagged = by_servers[by_servers > GROWTH_FLAG]
    if flagged.empty:
        print(f"per-server work: no policy's {column} grows by more than {GROWTH_FLAG}x {fleet}")
    for policy, ratio in flagged.items():
        print(f"per-server work? {policy}: {column} x{ratio:.2f} {fleet}")
    noisy = in_sim[(in_sim > GROWTH_FLAG) & ~in_sim.index.isin(flagged.index)]
    for policy, ratio in noisy.items():
        print(
            f"note: {policy}'s in-simulation cost grows x{ratio:.2f} {fleet}, its isolated cost "
            f"x{by_servers[policy]:.2f}: the event loop's (or the machine's), not the policy's"
        )
    print(f"wrote {csv_path}, {png}, {pdf}")
    return table


if __name__ == "__main__":
    main()
