"""Faults: region outages, network cuts, random server failures, retries and failures, admission control,
and the accounting invariants every run is checked against.

Hand-checked numbers use two regions ``a`` and ``b`` (RTT 0 from the one origin, PUE 1.5, one server of 400 W
busy / 100 W idle each, deterministic service) unless stated.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import make_scenario, origin, policy_spec, pool, region, run_trace, service, workload

from carbonsim import ConfigError, load_config, policy_names, run
from carbonsim.analysis import invariants, metrics
from carbonsim.core.energy import J_PER_KWH
from carbonsim.core.recorder import COMPLETED, FAILED

REL = 1e-9


def two_regions(faults: dict, service_ms: float = 1000.0, count: int = 1, **kw) -> object:
    return make_scenario(
        regions=[region("a", "Z0", pools=[pool(count=count)]), region("b", "Z1", pools=[pool(count=count)])],
        workloads=[workload(slo_ms=60_000.0, services={"gpu": service("deterministic", service_ms)})],
        origins=[origin(rtt_ms={"a": 0.0, "b": 0.0})],
        base={"Z0": 100.0, "Z1": 500.0},
        faults=faults,
        **kw,
    )


def books(result):
    energy = metrics.energy_account(result)
    summary = metrics.summary(metrics.request_table(result, energy), energy, result)
    invariants.check_run(result, energy, summary)
    return energy, summary


# -- outages -----------------------------------------------------------------------------------------------


def test_an_outage_fails_the_requests_in_service_and_queued_when_told_to():
    # Region a (the cleanest: carbon_first's choice) goes down at 2.5 s. Requests at 0, 0.5, 1, 1.5 s: one in
    # service ([2, 3] is cut at 2.5), one queued; the first two finished at 1 and 2 s.
    sc = two_regions({"outages": [{"region": "a", "start_h": 2.5 / 3600, "duration_h": 1.0}], "on_failure": "fail"})
    res = run_trace(sc, [0.0, 0.5, 1.0, 1.5], policy="carbon_first", horizon_s=10.0)
    assert res.records.status.tolist() == [COMPLETED, COMPLETED, FAILED, FAILED]
    assert res.records.lost_service == [(2, 0, 0, 2.0, 2.5, 1.0)]
    energy, s = books(res)
    assert (s["failed"], s["interrupted_services"], s["retries"]) == (2, 1, 0)
    # The interrupted half second drew busy power; it is the failed request's energy.
    assert energy.request_energy_j[2] == pytest.approx(400 * 1.5 * 0.5, rel=REL)


def test_with_retries_the_policy_routes_them_elsewhere_and_the_latency_counts_the_lost_time():
    sc = two_regions({"outages": [{"region": "a", "start_h": 2.5 / 3600, "duration_h": 1.0}], "on_failure": "retry"})
    res = run_trace(sc, [0.0, 0.5, 1.0, 1.5], policy="carbon_first", horizon_s=10.0)
    assert res.records.status.tolist() == [COMPLETED] * 4
    assert res.records.region.tolist() == [0, 0, 1, 1]
    assert res.records.retries.tolist() == [0, 0, 1, 1]
    assert res.records.rerouted_s == {2: 2.5, 3: 2.5}
    # Re-routed at 2.5 s to b: request 2 served [2.5, 3.5], request 3 [3.5, 4.5].
    np.testing.assert_allclose(res.records.start_s[2:], [2.5, 3.5])
    energy, s = books(res)
    table = metrics.request_table(res, energy)
    np.testing.assert_allclose(table["retry_ms"], [0.0, 0.0, 1500.0, 1000.0])
    np.testing.assert_allclose(table["total_ms"], [1000.0, 1500.0, 2500.0, 3000.0])
    assert (s["retries"], s["failed"], s["routed_to_unavailable"]) == (2, 0, 0)
    # Request 2 drew 0.5 s of busy power in a, then 1 s in b.
    assert energy.request_energy_j[2] == pytest.approx(400 * 1.5 * 1.5, rel=REL)


def test_a_request_arriving_at_a_region_that_went_down_meanwhile_is_lost():
    # RTT 2 s to a: a request routed at 0 s reaches a at 1 s, after a went down at 0.5 s.
    sc = make_scenario(
        regions=[region("a", "Z0"), region("b", "Z1")],
        workloads=[workload(slo_ms=60_000.0, services={"gpu": service("deterministic", 100.0)})],
        origins=[origin(rtt_ms={"a": 2000.0, "b": 5000.0})],
        faults={"outages": [{"region": "a", "start_h": 0.5 / 3600, "duration_h": 1.0}], "on_failure": "retry"},
    )
    res = run_trace(sc, [0.0], policy="latency_first", horizon_s=10.0)
    assert res.records.region.tolist() == [1] and res.records.retries.tolist() == [1]
    assert res.records.rerouted_s == {0: 1.0}
    assert res.records.status.tolist() == [COMPLETED]
    books(res)


def test_retries_are_bounded():
    # Both regions down: every attempt fails at once; after max_retries the request has failed.
    sc = two_regions(
        {
            "outages": [
                {"region": "a", "start_h": 0.0, "duration_h": 1.0},
                {"region": "b", "start_h": 0.0, "duration_h": 1.0},
            ],
            "max_retries": 2,
        }
    )
    res = run_trace(sc, [1.0, 2.0], policy="latency_first", horizon_s=10.0)
    assert res.records.status.tolist() == [FAILED, FAILED]
    assert res.records.retries.tolist() == [2, 2]
    _, s = books(res)
    assert s["routed_to_unavailable"] == 6  # 2 requests x (first try + 2 retries)


def test_offline_servers_draw_nothing():
    # No requests; region a down for the second half hour of one hour: its idle energy is half an hour's.
    sc = two_regions({"outages": [{"region": "a", "start_h": 0.5, "duration_h": 5.0}]})
    res = run_trace(sc, [], horizon_s=3600.0, drain=False)
    energy, _ = books(res)
    assert energy.idle_kwh[0].sum() == pytest.approx(100 * 1.5 * 1800 / J_PER_KWH, rel=REL)
    assert energy.idle_kwh[1].sum() == pytest.approx(100 * 1.5 * 3600 / J_PER_KWH, rel=REL)
    assert energy.offline_server_s[0].sum() == pytest.approx(1800.0, rel=REL)


def test_overlapping_outages_of_one_region_nest():
    sc = two_regions(
        {
            "outages": [
                {"region": "a", "start_h": 0.1, "duration_h": 0.3},
                {"region": "a", "start_h": 0.2, "duration_h": 0.4},
            ]
        }
    )
    res = run_trace(sc, [], horizon_s=3600.0, drain=False)
    energy, _ = books(res)
    assert energy.offline_server_s[0].sum() == pytest.approx(0.5 * 3600.0, rel=REL)  # down from 0.1 h to 0.6 h


# -- network cuts ------------------------------------------------------------------------------------------


def test_a_cut_origin_routes_around_and_other_origins_are_unaffected():
    sc = make_scenario(
        regions=[region("a", "Z0"), region("b", "Z1")],
        workloads=[workload(slo_ms=60_000.0, services={"gpu": service("deterministic", 10.0)})],
        origins=[origin("o0", 0.5, {"a": 0.0, "b": 0.0}), origin("o1", 0.5, {"a": 0.0, "b": 0.0})],
        base={"Z0": 100.0, "Z1": 500.0},
        faults={"cuts": [{"origin": "o0", "region": "a", "start_h": 0.0, "duration_h": 1.0}]},
    )
    res = run_trace(sc, [1.0, 2.0, 3.0, 4.0], policy="carbon_first", origin_idx=[0, 1, 0, 1], horizon_s=10.0)
    assert res.records.region.tolist() == [1, 0, 1, 0]
    _, s = books(res)
    assert (s["cuts"], s["routed_to_unavailable"], s["failed"]) == (1, 0, 0)


# -- random server failures --------------------------------------------------------------------------------


def failing_run(seed: int, on_failure: str = "retry"):
    sc = two_regions(
        {"servers": {"mtbf_h": 0.02, "mttr_h": 0.005}, "on_failure": on_failure}, service_ms=500.0, count=3
    )
    arrivals = np.sort(np.random.default_rng(7).uniform(0, 600, 3000)).tolist()
    return run_trace(sc, arrivals, policy="least_latency", horizon_s=600.0, seed=seed)


def test_servers_fail_and_are_repaired_at_random_reproducibly():
    a, b, c = failing_run(1), failing_run(1), failing_run(2)
    assert a.fault_stats == b.fault_stats and np.array_equal(a.records.start_s, b.records.start_s, equal_nan=True)
    assert a.fault_stats != c.fault_stats
    _, s = books(a)
    # 6 servers x 600 s / 72 s mean life: about 50 failures, each repaired within the run.
    assert 25 < s["server_failures"] < 100
    assert s["interrupted_services"] > 0 and s["retries"] == s["interrupted_services"]
    assert s["failed"] == 0 and s["completed"] == 3000


def test_failed_servers_fail_their_requests_when_told_to():
    res = failing_run(1, on_failure="fail")
    _, s = books(res)
    assert s["failed"] == s["interrupted_services"] > 0
    assert s["requests"] == s["completed"] + s["rejected"] + s["failed"] + s["in_flight"]


def test_the_view_counts_working_servers_and_says_what_is_available(tmp_path):
    sc = two_regions({"outages": [{"region": "b", "start_h": 1.0 / 3600, "duration_h": 1.0}]}, count=2)
    seen = []

    from carbonsim import BasePolicy, policy_config

    class Spy(BasePolicy):
        def decide(self, view):
            seen.append((view.now_s, view.available, view.servers, view.predicted_latency_ms()))
            return 0

    run_trace(sc, [0.5, 2.0], policy=Spy(policy_config({"name": "latency_first"})), horizon_s=10.0)
    assert seen[0][1:3] == ((True, True), (2.0, 2.0))
    assert seen[1][1:3] == ((True, False), (2.0, 0.0)) and seen[1][3][1] == float("inf")


# -- admission control -------------------------------------------------------------------------------------


def test_admission_control_rejects_beyond_the_queue_limit_and_counts_it():
    sc = two_regions({}, service_ms=1000.0)
    sc = dataclasses.replace(sc, regions=tuple(dataclasses.replace(r, max_queue_length=1) for r in sc.regions))
    res = run_trace(sc, [0.0, 0.1, 0.2, 0.3], policy="latency_first", horizon_s=10.0)
    _, s = books(res)
    assert (s["completed"], s["rejected"], s["failed"]) == (2, 2, 0)


# -- every policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", policy_names())
def test_no_policy_routes_to_a_region_it_can_see_is_down(name, tmp_path):
    # The default scenario with its cleanest region down, a cut and failing servers, for a few minutes.
    overrides = [
        "sim_hours=0.02",
        "seed=3",
        "planning_interval_min=0.9",
        "scenario.faults.outages=[{region: ca-central, start_h: 0.0, duration_h: 1.0}, "
        "{region: us-west, start_h: 0.01, duration_h: 0.01}]",
        "scenario.faults.cuts=[{origin: eu-west, region: uk-south, start_h: 0.0, duration_h: 1.0}]",
        "scenario.faults.servers.mtbf_h=1.0",
        "scenario.faults.servers.mttr_h=0.01",
    ]
    sc = load_config([]).scenario
    spec = policy_spec(name, tmp_path, sc.region_names, sc.workload_names)
    cfg = load_config([*overrides, f"policy={name}", *(f"policy.{k}={v}" for k, v in spec.items() if k != "name")])
    out = run(cfg)  # checks the invariants too
    s = out.summary
    assert s["routed_to_unavailable"] == 0
    assert out.per_region.set_index("region").loc["ca-central", "requests"] == 0
    assert s["requests"] == s["completed"] + s["rejected"] + s["failed"] + s["in_flight"]


# -- the books ---------------------------------------------------------------------------------------------


def test_the_invariant_checks_catch_books_that_do_not_balance():
    res = failing_run(1)
    energy = metrics.energy_account(res)
    summary = metrics.summary(metrics.request_table(res, energy), energy, res)
    invariants.check_run(res, energy, summary)
    with pytest.raises(invariants.AccountingError, match="requests: summary says completed"):
        invariants.check_run(res, energy, {**summary, "completed": summary["completed"] - 1})
    with pytest.raises(invariants.AccountingError, match="energy: sum over regions"):
        invariants.check_run(res, energy, {**summary, "energy_kwh": summary["energy_kwh"] * 1.001})
    skewed = dataclasses.replace(energy, request_carbon_g=energy.request_carbon_g * 1.01)
    with pytest.raises(invariants.AccountingError, match="carbon: per-request integrals"):
        invariants.check_run(res, skewed, summary)
    res.records.status[0] = 7  # not a status
    with pytest.raises(invariants.AccountingError, match="arrived"):
        invariants.check_run(res, energy, summary)


# -- configuration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("scenario.faults.outages=[{region: mars, start_h: 0, duration_h: 1}]", "faults.outages[0].region"),
        ("scenario.faults.cuts=[{origin: moon, region: us-east, start_h: 0, duration_h: 1}]", "faults.cuts[0].origin"),
        ("scenario.faults.outages=[{region: us-east, start_h: 0, duration_h: 0}]", "duration_h"),
        ("scenario.faults.servers.mtbf_h=-1", "mtbf_h"),
        ("scenario.faults.on_failure=ignore", "on_failure"),
    ],
)
def test_bad_fault_configurations_are_refused(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config([override])


def test_the_routing_environment_refuses_faults():
    pytest.importorskip("gymnasium")
    from carbonsim.envs.routing import RoutingEnv
    from carbonsim.learn.config import RoutingEnvConfig

    env_cfg = RoutingEnvConfig(overrides=("scenario.faults.servers.mtbf_h=10",))
    with pytest.raises(ConfigError, match="does not simulate faults"):
        RoutingEnv(env_cfg)
