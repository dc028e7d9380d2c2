"""Every request ends the run completed, rejected, failed or in flight, and the counts add up."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario, origin, pool, region, run_trace, scenario_data, service, workload

from carbonsim import RunConfig, build
from carbonsim.analysis import metrics
from carbonsim.core.recorder import COMPLETED, FAILED, IN_FLIGHT, REJECTED
from carbonsim.runner import prepare, simulate_policy


def status_counts(status: np.ndarray) -> dict[str, int]:
    return {
        name: int((status == code).sum())
        for name, code in (
            ("completed", COMPLETED),
            ("rejected", REJECTED),
            ("failed", FAILED),
            ("in_flight", IN_FLIGHT),
        )
    }


def summary_of(result):
    energy = metrics.energy_account(result)
    return metrics.summary(metrics.request_table(result, energy), energy, result)


def assert_accounted(summary: dict) -> None:
    assert summary["requests"] == (
        summary["completed"] + summary["rejected"] + summary["failed"] + summary["in_flight"]
    )


def test_drained_run_completes_everything():
    res = run_trace(make_scenario(), [0.0, 0.1, 0.2, 0.3])
    assert status_counts(res.records.status) == {"completed": 4, "rejected": 0, "failed": 0, "in_flight": 0}
    assert not np.isnan(res.records.end_s).any()
    s = summary_of(res)
    assert_accounted(s)
    assert s["completed"] == 4


def test_overloaded_region_without_drain_leaves_requests_in_flight():
    # One server, 1 s service, ten arrivals within 0.1 s, stop at 3.5 s: three finish (at 1, 2, 3 s), one
    # is in service and six are still queued.
    arrivals = [0.01 * k for k in range(10)]
    res = run_trace(
        make_scenario(workloads=[workload(services={"gpu": service("deterministic", 1000.0)})]),
        arrivals,
        horizon_s=3.5,
        drain=False,
    )
    assert res.end_s == 3.5
    assert res.records.status.tolist() == [COMPLETED] * 3 + [IN_FLIGHT] * 7
    np.testing.assert_allclose(res.records.end_s[:3], [1.0, 2.0, 3.0])
    assert res.records.start_s[3] == pytest.approx(3.0)
    assert np.isnan(res.records.start_s[4:]).all()
    assert np.isnan(res.records.end_s[3:]).all()
    s = summary_of(res)
    assert (s["requests"], s["completed"], s["rejected"], s["failed"], s["in_flight"]) == (10, 3, 0, 0, 7)
    assert_accounted(s)


def test_requests_still_on_the_network_are_in_flight():
    # RTT 200 ms: a request sent 50 ms before the end never reaches the region.
    scenario = make_scenario(origins=[origin(rtt_ms={"r0": 200.0})])
    res = run_trace(scenario, [0.0, 9.95], horizon_s=10.0, drain=False)
    assert res.records.status.tolist() == [COMPLETED, IN_FLIGHT]
    assert res.records.region.tolist() == [0, 0]
    assert np.isnan(res.records.start_s[1])
    assert_accounted(summary_of(res))


def test_drain_is_bounded_by_max_drain():
    arrivals = [0.01 * k for k in range(10)]
    res = run_trace(
        make_scenario(workloads=[workload(services={"gpu": service("deterministic", 1000.0)})]),
        arrivals,
        horizon_s=1.0,
        drain=True,
        max_drain_s=3.5,
    )
    assert res.end_s == pytest.approx(4.5)
    counts = status_counts(res.records.status)
    assert counts == {"completed": 4, "rejected": 0, "failed": 0, "in_flight": 6}


@pytest.mark.parametrize("batching", [False, True], ids=["single-pool", "batching-pool"])
def test_full_queue_drops_arrivals(batching):
    # max_queue_length 2: of six simultaneous arrivals one is served, two wait and three are rejected.
    extra = {"max_batch_size": 2, "max_queue_delay_ms": 0.0} if batching else {}
    svc = service("deterministic", 1000.0, batch_time_factor=[1.0, 2.0])
    scenario = make_scenario(
        regions=[region(pools=[pool(count=1, **extra)], max_queue_length=2)],
        workloads=[workload(services={"gpu": svc})],
    )
    res = run_trace(scenario, [0.0] * 6)
    assert res.records.status.tolist() == [COMPLETED] * 3 + [REJECTED] * 3
    assert np.isnan(res.records.start_s[3:]).all()
    s = summary_of(res)
    assert (s["completed"], s["rejected"], s["in_flight"]) == (3, 3, 0)
    assert_accounted(s)
    # A rejected request counts as an SLO violation.
    assert s["slo_violation_pct"] == pytest.approx(50.0)


def test_zero_queue_length_single_pool_serves_when_a_server_is_free():
    scenario = make_scenario(regions=[region(pools=[pool(count=1)], max_queue_length=0)])
    res = run_trace(scenario, [0.0, 0.5, 3.0])
    assert res.records.status.tolist() == [COMPLETED, REJECTED, COMPLETED]


def test_zero_queue_length_multi_pool_serves_when_a_server_is_free():
    # max_queue_length bounds the requests *waiting*; a request that finds a free server does not wait, so
    # it must be served whichever region implementation (here: two pools) is used.
    pools = [pool("gpu", count=1), pool("cpu", count=1)]
    wl = workload(services={"gpu": service("deterministic", 1000.0), "cpu": service("deterministic", 3000.0)})
    scenario = make_scenario(regions=[region(pools=pools, max_queue_length=0)], workloads=[wl])
    res = run_trace(scenario, [0.0, 0.5, 0.6, 10.0])
    # 0 -> gpu, 0.5 -> cpu, 0.6 finds both busy and no queue room, 10 -> gpu.
    assert res.records.status.tolist() == [COMPLETED, COMPLETED, REJECTED, COMPLETED]


def test_overloaded_poisson_run_counts_add_up():
    # 1 server at 100 ms per request fed 20 requests/s for 0.1 h: about half are left in flight.
    data = scenario_data(
        workloads=[workload(services={"gpu": service("exponential", 100.0)})],
        arrivals={"kind": "poisson", "rate_per_s": 20.0},
    )
    cfg = build(
        RunConfig,
        {"scenario": data, "policy": {"name": "latency_first"}, "sim_hours": 0.1, "drain": False, "baseline": ""},
        "",
    )
    world, requests, _ = prepare(cfg)
    out = simulate_policy(cfg, cfg.policy, world, requests)
    s = out.summary
    assert_accounted(s)
    assert s["requests"] == len(requests) > 0
    assert s["in_flight"] > 0.3 * s["requests"]
    assert s["completed"] > 0
    assert s["sim_end_s"] == pytest.approx(360.0)
    by_status = out.requests["status"].value_counts()
    assert by_status["in_flight"] == s["in_flight"]
    assert by_status["completed"] == s["completed"]


def test_every_request_is_routed_once_with_several_regions():
    regions = [region("a", "ZA"), region("b", "ZB"), region("c", "ZC")]
    scenario = make_scenario(regions=regions, origins=[origin(rtt_ms={"a": 10.0, "b": 20.0, "c": 30.0})])
    res = run_trace(scenario, np.linspace(0.0, 50.0, 40), policy="round_robin", max_drain_s=600.0)
    assert (res.records.region >= 0).all()
    assert np.bincount(res.records.region, minlength=3).tolist() == [14, 13, 13]
    assert status_counts(res.records.status)["completed"] == 40
