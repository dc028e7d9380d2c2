"""CASPER: the routing program's split, its capacity cap, SLO-feasible routes and exact split following."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario, origin, pool, region, service, workload

from carbonsim import ConfigError
from carbonsim.policies import make_policy, policy_config

H = 3600.0


def _scenario(rtt_b: float = 0.0, slo_ms: float = 100.0):
    return make_scenario(
        regions=[
            region("clean", "ZA", pools=[pool("gpu", count=1, idle_w=50.0, busy_w=250.0)]),
            region("dirty", "ZB", pools=[pool("gpu", count=1, idle_w=50.0, busy_w=250.0)]),
        ],
        workloads=[workload(slo_ms=slo_ms, services={"gpu": service("deterministic", 5.0)})],
        origins=[origin(rtt_ms={"clean": 0.0, "dirty": rtt_b})],
        forecast={"kind": "perfect"},
    )


def _run(scenario, rate_per_s: float, minutes: int = 3, **params):
    from helpers import run_trace

    arrivals = np.arange(0.0, minutes * 60.0, 1.0 / rate_per_s)
    policy = make_policy(policy_config({"name": "casper", **params}))
    result = run_trace(
        scenario, arrivals, policy=policy, carbon=[[100.0], [400.0]], horizon_s=minutes * 60.0, planning_interval_s=60.0
    )
    region = result.records.region
    after_first_plan = arrivals >= 60.0
    return policy, region[after_first_plan], region[~after_first_plan]


def test_casper_fills_the_clean_region_up_to_the_utilisation_cap():
    # 200 requests/s x 5 ms = 1 server of load; the clean region may take 0.7 of its one server.
    policy, planned, first_minute = _run(_scenario(), 200.0)
    assert (first_minute == 0).all()  # before any demand is seen: the lowest-latency region
    share_clean = (planned == 0).mean()
    assert share_clean == pytest.approx(0.7, abs=1e-3)
    assert policy.infeasible_intervals == 0


def test_light_load_goes_entirely_to_the_clean_region():
    _, planned, _ = _run(_scenario(), 50.0)
    assert (planned == 0).all()


def test_routes_that_break_the_slo_are_not_used():
    # The dirty region is 200 ms away, beyond the 100 ms SLO: everything stays in the clean region even
    # above its utilisation cap (the capacity rows are dropped when demand cannot fit the feasible routes).
    policy, planned, _ = _run(_scenario(rtt_b=200.0), 200.0)
    assert (planned == 0).all()
    assert policy.infeasible_intervals >= 1


def test_casper_config_is_validated():
    with pytest.raises(ConfigError, match="max_utilisation"):
        policy_config({"name": "casper", "max_utilisation": 1.5})


def _bound(arrivals, rtt_b=0.0, carbon=((100.0,), (400.0,)), max_utilisation=0.7):
    from carbonsim.bounds import inference_bound
    from carbonsim.core.arrivals import from_trace
    from carbonsim.core.signals import HourlySignal
    from carbonsim.core.world import compile_world

    sc = _scenario(rtt_b=rtt_b)
    world = compile_world(sc, 0, 2, carbon=HourlySignal(np.repeat(np.array(carbon), 2, axis=1), "carbon"))
    n = len(arrivals)
    requests = from_trace(sc, 0, np.array(arrivals), np.zeros(n, np.int64), np.zeros(n, np.int64))
    return inference_bound(world, requests, H, max_utilisation=max_utilisation)


def _idle_g(carbon=(100.0, 400.0)):
    # Each region: one 50 W idle server, PUE 1.5 (the helpers' default), for the whole hour.
    return sum(50.0 * 1.5 * c for c in carbon) * H / 3.6e6


def test_inference_bound_serves_everything_in_the_clean_region_when_it_fits():
    b = _bound(np.linspace(0.0, 3599.0, 100))
    busy = 100 * 0.005 * (250.0 - 50.0) * 1.5 * 100.0 / 3.6e6
    assert b.busy_carbon_g == pytest.approx(busy)
    assert b.carbon_g == pytest.approx(_idle_g() + busy)
    assert not b.capacity_relaxed


def test_inference_bound_respects_the_utilisation_cap():
    # 1,000,000 requests x 5 ms = 5,000 server-s in one hour; the clean server may serve 0.7 x 3,600 s.
    b = _bound(np.linspace(0.0, 3599.0, 1_000_000))
    clean_s = 0.7 * H
    busy = (clean_s * 100.0 + (5000.0 - clean_s) * 400.0) * (250.0 - 50.0) * 1.5 / 3.6e6
    assert b.busy_carbon_g == pytest.approx(busy, rel=1e-6)


def test_inference_bound_is_below_the_slo_respecting_policies():
    import carbonsim
    from carbonsim.bounds import inference_bound
    from carbonsim.runner import prepare, simulate_policy

    cfg = carbonsim.load_config(["scenario=us", "sim_hours=1"])
    world, requests, _ = prepare(cfg)
    bound = inference_bound(world, requests, 3600.0)
    for name in ("latency_first", "casper", "constrained_hybrid", "least_latency"):
        out = simulate_policy(cfg, policy_config({"name": name}), world, requests)
        assert bound.carbon_g / 1e3 <= out.summary["carbon_kg"], name
