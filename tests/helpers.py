"""Builders for small hand-checkable scenarios, shared by the test modules.

Every builder returns plain data (dicts) or validated configs, so a test states only what differs from a
minimal one-region, one-origin, one-workload world.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from carbonsim import BasePolicy, PolicyContext, ScenarioConfig, build
from carbonsim.core.arrivals import from_trace
from carbonsim.core.jobs import BatchPolicy, Jobs
from carbonsim.core.policy import Policy
from carbonsim.core.signals import HourlySignal
from carbonsim.core.simulation import SimResult, Simulation
from carbonsim.core.view import DecisionView
from carbonsim.core.world import compile_world
from carbonsim.policies import batch_policy_config, make_batch_policy, make_policy, policy_config


def pool(
    hardware: str = "gpu", count: int | None = 1, idle_w: float = 100.0, busy_w: float = 400.0, **extra: Any
) -> dict[str, Any]:
    """A server pool mapping."""
    return {"hardware": hardware, "count": count, "idle_w": idle_w, "busy_w": busy_w, **extra}


def region(
    name: str = "r0",
    zone: str = "Z0",
    pools: Sequence[dict[str, Any]] | None = None,
    pue: float = 1.5,
    price: float = 0.2,
    **extra: Any,
) -> dict[str, Any]:
    """A region mapping (one single-server pool by default)."""
    return {
        "name": name,
        "grid_zone": zone,
        "pue": pue,
        "price_usd_per_kwh": price,
        "pools": list(pools) if pools is not None else [pool()],
        **extra,
    }


def service(distribution: str = "deterministic", mean_ms: float = 2000.0, **extra: Any) -> dict[str, Any]:
    """A service-time model mapping."""
    return {"distribution": distribution, "mean_ms": mean_ms, **extra}


def workload(
    name: str = "w0", slo_ms: float = 10_000.0, share: float = 1.0, services: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A workload mapping (deterministic 2 s on ``gpu`` by default)."""
    return {"name": name, "slo_ms": slo_ms, "share": share, "service": services or {"gpu": service()}}


def origin(name: str = "o0", share: float = 1.0, rtt_ms: dict[str, float] | None = None) -> dict[str, Any]:
    """An origin mapping (RTT 0 to ``r0`` by default)."""
    return {"name": name, "share": share, "rtt_ms": rtt_ms if rtt_ms is not None else {"r0": 0.0}}


def scenario_data(
    regions: Sequence[dict[str, Any]] | None = None,
    workloads: Sequence[dict[str, Any]] | None = None,
    origins: Sequence[dict[str, Any]] | None = None,
    base: dict[str, float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A scenario mapping: one region, one workload, one origin unless given; flat carbon without noise."""
    regions = list(regions) if regions is not None else [region()]
    zones = sorted({r["grid_zone"] for r in regions})
    return {
        "name": "test",
        "regions": regions,
        "workloads": list(workloads) if workloads is not None else [workload()],
        "origins": list(origins) if origins is not None else [origin()],
        "arrivals": {"kind": "poisson", "rate_per_s": 1.0},
        "carbon": {"base_gco2_per_kwh": base or dict.fromkeys(zones, 100.0), "amplitude": 0.0, "noise": 0.0},
        **extra,
    }


def make_scenario(**kwargs: Any) -> ScenarioConfig:
    """The validated scenario of :func:`scenario_data`."""
    return build(ScenarioConfig, scenario_data(**kwargs), "scenario")


def run_trace(
    scenario: ScenarioConfig,
    arrival_s: Sequence[float],
    policy: Policy | str = "latency_first",
    horizon_s: float = 3600.0,
    carbon: Sequence[Sequence[float]] | None = None,
    origin_idx: Sequence[int] | None = None,
    workload_idx: Sequence[int] | None = None,
    drain: bool = True,
    max_drain_s: float = 3600.0,
    planning_interval_s: float = 900.0,
    seed: int = 0,
    jobs: Jobs | None = None,
    batch_policy: BatchPolicy | Mapping[str, Any] | str = "carbon_agnostic",
) -> SimResult:
    """Runs hand-made arrivals (and jobs) through a scenario and returns the raw result.

    Args:
        scenario: The scenario.
        arrival_s: Arrival times in s.
        policy: A policy object or a registered policy name.
        horizon_s: Arrival window in s.
        carbon: Hourly intensity per region (rows) in gCO2eq/kWh; default: the scenario's generator.
        origin_idx: Origin per request (default all 0).
        workload_idx: Workload per request (default all 0).
        drain: Drain after the horizon.
        max_drain_s: Drain bound in s.
        planning_interval_s: Seconds between plan calls.
        seed: Root seed.
        jobs: Batch jobs.
        batch_policy: The batch policy: an object, a config mapping or a registered name.
    """
    n = len(arrival_s)
    hours = int(np.ceil((horizon_s + (max_drain_s if drain else 0.0)) / 3600.0)) + 1
    signal = None
    if carbon is not None:
        values = np.asarray(carbon, dtype=np.float64)
        if values.shape[1] < hours:
            values = np.hstack([values, np.repeat(values[:, -1:], hours - values.shape[1], axis=1)])
        signal = HourlySignal(values, "carbon intensity (gCO2eq/kWh)")
    world = compile_world(scenario, seed, hours, carbon=signal)
    requests = from_trace(
        scenario,
        seed,
        np.asarray(arrival_s, dtype=np.float64),
        np.zeros(n, dtype=np.int64) if origin_idx is None else np.asarray(origin_idx),
        np.zeros(n, dtype=np.int64) if workload_idx is None else np.asarray(workload_idx),
    )
    if isinstance(policy, str):
        policy = make_policy(policy_config({"name": policy}))
    if isinstance(batch_policy, str):
        batch_policy = {"name": batch_policy}
    if isinstance(batch_policy, Mapping):
        batch_policy = make_batch_policy(batch_policy_config(batch_policy))
    sim = Simulation(
        world,
        requests,
        policy,
        seed=seed,
        horizon_s=horizon_s,
        drain=drain,
        max_drain_s=max_drain_s,
        planning_interval_s=planning_interval_s,
        jobs=jobs,
        batch_policy=batch_policy if jobs is not None and len(jobs) else None,
    )
    return sim.run()


PolicySpec = Policy | Mapping[str, Any] | str


def as_policy(spec: PolicySpec) -> Policy:
    """A policy object from a name, a config mapping such as ``{"name": "hybrid", "alpha": 0.3}``, or itself."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, Mapping):
        return make_policy(policy_config(spec))
    return spec


class Probe(BasePolicy):
    """Routes scripted preload requests, then shows the next request's view to the policies under test.

    Args:
        script: Region of each preload request, in request order.
        policies: Policies asked about the probe request (their answers are kept, not followed).
        inspect: Called with the probe request's view; its result is kept.
    """

    def __init__(
        self, script: Sequence[int], policies: Sequence[Policy], inspect: Callable[[DecisionView], Any] | None = None
    ) -> None:
        super().__init__(policy_config({"name": "latency_first"}))
        self.script = list(script)
        self.policies = list(policies)
        self.inspect = inspect
        self.choices: list[int] = []
        self.inspected: Any = None

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        for policy in self.policies:
            policy.reset(context)

    def decide(self, view: DecisionView) -> int:
        if view.request_id < len(self.script):
            return self.script[view.request_id]
        self.choices = [policy.decide(view) for policy in self.policies]
        if self.inspect is not None:
            self.inspected = self.inspect(view)
        return 0


def probe(
    policies: Sequence[PolicySpec],
    rtt_ms: Sequence[float],
    intensity: Sequence[float],
    service_ms: Sequence[float] | None = None,
    queue_length: Sequence[int] | None = None,
    busy: Sequence[int] | None = None,
    servers: Sequence[int | None] | None = None,
    slo_ms: float = 100.0,
    services: Sequence[dict[str, Any]] | None = None,
    inspect: Callable[[DecisionView], Any] | None = None,
    seed: int = 0,
) -> tuple[list[int], Any]:
    """Builds a real decision view in a small simulation and asks ``policies`` what they would choose.

    Region ``i`` has one pool of hardware ``hw<i>`` with ``servers[i]`` servers (default 1; None for
    unlimited) and deterministic service ``service_ms[i]`` (default 10 ms) unless ``services[i]`` gives a
    service-time model; its carbon intensity is ``intensity[i]`` throughout. At time 0, ``busy[i]`` +
    ``queue_length[i]`` preload requests from a second origin (RTT 0) occupy region ``i``; 1 microsecond later
    the probe request (workload with SLO ``slo_ms``, from the origin with round trips ``rtt_ms``) is decided.

    Returns:
        The region each policy chose for the probe request, and ``inspect(view)``.
    """
    n = len(rtt_ms)
    service_ms = service_ms or [10.0] * n
    queue_length = queue_length or [0] * n
    busy = busy or [0] * n
    servers = servers or [1] * n
    names = [f"r{i}" for i in range(n)]
    for i in range(n):
        if queue_length[i]:
            assert busy[i] == servers[i], "requests queue only when every server is busy"
    scenario = make_scenario(
        regions=[region(names[i], f"Z{i}", pools=[pool(f"hw{i}", count=servers[i])]) for i in range(n)],
        workloads=[
            workload(
                slo_ms=slo_ms,
                services={
                    f"hw{i}": services[i] if services else service("deterministic", service_ms[i]) for i in range(n)
                },
            )
        ],
        origins=[
            origin("user", 0.5, dict(zip(names, rtt_ms, strict=True))),
            origin("preload", 0.5, dict.fromkeys(names, 0.0)),
        ],
    )
    script = [i for i in range(n) for _ in range(busy[i] + queue_length[i])]
    probe_policy = Probe(script, [as_policy(p) for p in policies], inspect)
    run_trace(
        scenario,
        [0.0] * len(script) + [1e-6],
        policy=probe_policy,
        horizon_s=1.0,
        max_drain_s=60.0,
        carbon=[[x] for x in intensity],
        origin_idx=[1] * len(script) + [0],
        seed=seed,
    )
    return probe_policy.choices, probe_policy.inspected


def choose(policy: PolicySpec, rtt_ms: Sequence[float], intensity: Sequence[float], **scene: Any) -> int:
    """The region ``policy`` chooses for a probe request (see :func:`probe`)."""
    return probe([policy], rtt_ms, intensity, **scene)[0][0]


def policy_spec(name: str, folder: Path, regions: Sequence[str], workloads: Sequence[str]) -> dict[str, str]:
    """A registered policy's config mapping, with what it needs to run untrained.

    ``ppo`` gets an untrained network shaped for the scenario's regions and workloads, ``transformer`` a
    small untrained network (one fits every scenario); the others need nothing.
    """
    if name == "ppo":
        from carbonsim.learn import checkpoint as ckpt

        path = ckpt.save(folder / "policy.npz", ckpt.random_policy(list(regions), list(workloads)))
        return {"name": name, "checkpoint": str(path)}
    if name == "transformer":
        from carbonsim.learn import transformer as tf
        from carbonsim.learn.config import TransformerConfig

        network = tf.build_model(TransformerConfig(hidden_size=16, layers=1, heads=2, ffn_size=32), seed=0)
        return {"name": name, "checkpoint": str(tf.save(folder / "net.safetensors", network))}
    return {"name": name}


#: Batch policies that need a trained network (tests/test_learned_shifting.py runs them with one).
BATCH_NEEDS_CHECKPOINT = ("learned_shifting",)


def batch_policies_without_checkpoint() -> list[str]:
    """Registered batch policy names that run from their name alone (sorted)."""
    from carbonsim.policies import batch_policy_names

    return [n for n in batch_policy_names() if n not in BATCH_NEEDS_CHECKPOINT]


def shifting_inputs(n: int, r: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random inputs of the shifting network for one epoch: items, pairs (one home each), regions, globals."""
    from carbonsim.learn.shifting_features import GLOBAL_FEATURES, ITEM_FEATURES, PAIR_FEATURES, REGION_FEATURES

    rng = np.random.default_rng(seed)
    pairs = np.zeros((n, r, PAIR_FEATURES), dtype=np.float32)
    pairs[np.arange(n), rng.integers(r, size=n), 0] = 1.0
    return (
        rng.uniform(-1, 1, (n, ITEM_FEATURES)).astype(np.float32),
        pairs,
        rng.uniform(0, 1, (r, REGION_FEATURES)).astype(np.float32),
        rng.uniform(0, 1, GLOBAL_FEATURES).astype(np.float32),
    )


def run_cli(work: Path, monkeypatch: Any, *args: str) -> tuple[int, str, str]:
    """``python -m carbonsim *args`` in this process, from ``work``: exit status, stdout, stderr.

    ``monkeypatch`` is pytest's fixture (the working directory and ``sys.argv`` are restored after the test).
    Hydra's global state is cleared afterwards, as a fresh process would have it.
    """
    import contextlib
    import io
    import sys

    from hydra.core.global_hydra import GlobalHydra

    from carbonsim.__main__ import main

    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["carbonsim", *args])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
    return code, out.getvalue(), err.getvalue()
