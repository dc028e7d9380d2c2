"""Policy decisions, checked by hand on real decision views built in tiny simulations (see helpers.probe)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import choose, make_scenario, origin, policy_spec, probe, region, run_trace, service, workload

from carbonsim import BasePolicy, DecisionView, Policy, make_policy, policy_config, policy_names
from carbonsim.core import rng as rngmod
from carbonsim.policies import predicted_latency_ms, register
from carbonsim.policies.registry import ROUTING

spec_for = policy_spec


@pytest.mark.parametrize("name", policy_names())
def test_every_policy_implements_the_protocol(name, tmp_path):
    assert isinstance(make_policy(policy_config(spec_for(name, tmp_path, ["r0"], ["w0"]))), Policy)


@pytest.mark.parametrize("name", policy_names())
def test_single_region_always_chosen(name, tmp_path):
    assert choose(spec_for(name, tmp_path, ["r0"], ["w0"]), [40.0], [300.0]) == 0


def test_probe_builds_the_view_it_is_asked_for():
    def snapshot(view: DecisionView):
        return (
            view.rtt_ms,
            view.intensity_gco2_per_kwh,
            view.expected_service_ms,
            view.queue_length,
            view.busy_servers,
            view.servers,
            view.slo_ms,
            view.mix_service_ms,
        )

    _choices, seen = probe(
        [],
        [5.0, 50.0, 20.0],
        [300.0, 20.0, 100.0],
        service_ms=[10.0, 30.0, 20.0],
        queue_length=[2, 0, 0],
        busy=[1, 1, 0],
        servers=[1, 2, None],
        slo_ms=150.0,
        inspect=snapshot,
    )
    assert seen == (
        (5.0, 50.0, 20.0),
        (300.0, 20.0, 100.0),
        (10.0, 30.0, 20.0),
        (2, 0, 0),
        (1, 1, 0),
        (1.0, 2.0, float("inf")),
        150.0,
        (10.0, 30.0, 20.0),
    )


# --- latency_first and carbon_first ----------------------------------------------------------------------


def test_latency_first_picks_lowest_rtt():
    assert choose("latency_first", [50.0, 5.0, 20.0], [10.0, 500.0, 300.0]) == 1


def test_latency_first_adds_service_time():
    # rtt + service: 5 + 100 = 105 vs 20 + 10 = 30.
    assert choose("latency_first", [5.0, 20.0], [100.0, 100.0], service_ms=[100.0, 10.0]) == 1


def test_latency_first_ignores_queues():
    assert choose("latency_first", [5.0, 20.0], [100.0, 100.0], queue_length=[5, 0], busy=[1, 0]) == 0


def test_latency_first_tie_goes_to_lowest_index():
    assert choose("latency_first", [20.0, 10.0, 10.0], [300.0, 300.0, 100.0]) == 1


def test_carbon_first_picks_lowest_intensity():
    assert choose("carbon_first", [5.0, 200.0, 100.0], [300.0, 20.0, 50.0]) == 1


def test_carbon_first_tie_goes_to_lower_rtt():
    assert choose("carbon_first", [5.0, 200.0, 100.0], [300.0, 20.0, 20.0]) == 2


# --- hybrid ------------------------------------------------------------------------------------------------


def random_scenes(count: int, seed: int):
    """Round trips and intensities, all distinct, over 2 to 6 regions."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, 7))
        yield rng.permutation(np.arange(n) * 17.0 + 3.0).tolist(), rng.permutation(np.arange(n) * 37.0 + 20.0).tolist()


@pytest.mark.parametrize("normalisation", ["minmax", "global"])
def test_hybrid_alpha_one_is_latency_first(normalisation):
    for rtt, intensity in random_scenes(40, seed=0):
        hybrid = {"name": "hybrid", "alpha": 1.0, "normalisation": normalisation}
        got, _ = probe([hybrid, "latency_first"], rtt, intensity)
        assert got[0] == got[1] == int(np.argmin(rtt)), (rtt, intensity)


@pytest.mark.parametrize("normalisation", ["minmax", "global"])
def test_hybrid_alpha_zero_is_carbon_first(normalisation):
    for rtt, intensity in random_scenes(40, seed=1):
        hybrid = {"name": "hybrid", "alpha": 0.0, "normalisation": normalisation}
        got, _ = probe([hybrid, "carbon_first"], rtt, intensity)
        assert got[0] == got[1] == int(np.argmin(intensity)), (rtt, intensity)


def test_hybrid_alpha_weighs_latency():
    # Region 0 is near and dirty, region 1 far and clean: alpha near 1 keeps requests near.
    got, _ = probe([{"name": "hybrid", "alpha": 0.9}, {"name": "hybrid", "alpha": 0.1}], [5.0, 150.0], [400.0, 30.0])
    assert got == [0, 1]


@pytest.mark.parametrize(("alpha", "expected"), [(0.2, 2), (0.5, 1), (0.8, 0)])
def test_hybrid_minmax_by_hand(alpha, expected):
    # Latency 10, 60, 110 ms -> 0, 0.5, 1; intensity 400, 100, 0 -> 1, 0.25, 0.
    # Scores: alpha 0.2: 0.8, 0.3, 0.2; alpha 0.5: 0.5, 0.375, 0.5; alpha 0.8: 0.2, 0.45, 0.8.
    assert choose({"name": "hybrid", "alpha": alpha}, [0.0, 50.0, 100.0], [400.0, 100.0, 0.0]) == expected


def test_hybrid_global_and_minmax_differ_by_hand():
    # A: 10 ms, 400 g; B: 100 ms, 390 g. alpha 0.3.
    # minmax: A = 0.7 x 1 = 0.7, B = 0.3 x 1 = 0.3 -> B (a 10 g difference counts as the full range).
    # global (0..300 ms, 0..800 g): A = 0.3 x 10/300 + 0.7 x 400/800 = 0.36, B = 0.1 + 0.34125 -> A.
    minmax = {"name": "hybrid", "alpha": 0.3, "normalisation": "minmax"}
    glob = {"name": "hybrid", "alpha": 0.3, "normalisation": "global"}
    assert probe([minmax, glob], [0.0, 90.0], [400.0, 390.0])[0] == [1, 0]


def test_hybrid_global_uses_configured_ranges():
    # A: 10 ms, 400 g; B: 100 ms, 250 g; alpha 0.3. Default ranges (0..300 ms): A = 0.01 + 0.35 = 0.36,
    # B = 0.1 + 0.21875 -> B. Latency range 0..30 ms: A = 0.1 + 0.35, B = 1.0 + 0.21875 -> A.
    default = {"name": "hybrid", "alpha": 0.3, "normalisation": "global"}
    narrow = {**default, "latency_range_ms": [0.0, 30.0]}
    assert probe([default, narrow], [0.0, 90.0], [400.0, 250.0])[0] == [1, 0]


def test_hybrid_queue_aware_sees_the_wait():
    # Region 0: rtt 0 but one busy server and 4 queued at 100 ms -> wait 500 ms; region 1: rtt 50, idle.
    aware = {"name": "hybrid", "alpha": 1.0, "queue_aware": True}
    blind = {"name": "hybrid", "alpha": 1.0, "queue_aware": False}
    got, _ = probe(
        [aware, blind], [0.0, 50.0], [300.0, 300.0], service_ms=[100.0, 100.0], queue_length=[4, 0], busy=[1, 0]
    )
    assert got == [1, 0]


# --- constrained_hybrid ------------------------------------------------------------------------------------

# Predicted latency 20, 70, 85 ms (rtt + 10 ms service); intensity 300, 100, 50.
RTT3 = [10.0, 60.0, 75.0]
INTENSITY3 = [300.0, 100.0, 50.0]


def constrained(**params):
    return {"name": "constrained_hybrid", **params}


def test_constrained_picks_cleanest_eligible():
    assert choose(constrained(), RTT3, INTENSITY3) == 2


def test_constrained_margin_shrinks_the_budget():
    # Budget (1 - 0.2) x 100 = 80 ms: region 2 (85 ms) is no longer eligible.
    assert choose(constrained(slo_margin=0.2), RTT3, INTENSITY3) == 1


def test_constrained_latency_equal_to_the_budget_is_eligible():
    assert choose(constrained(), RTT3, INTENSITY3, slo_ms=85.0) == 2
    assert choose(constrained(), RTT3, INTENSITY3, slo_ms=84.9) == 1


def test_constrained_falls_back_to_lowest_latency():
    assert choose(constrained(), [30.0, 5.0, 60.0], INTENSITY3, slo_ms=12.0) == 1


def test_constrained_tie_in_intensity_goes_to_lower_latency():
    assert choose(constrained(), [60.0, 10.0, 75.0], [100.0, 100.0, 300.0]) == 1


def test_constrained_uses_the_chosen_service_estimate():
    # Region 2 serves in 10 or 40 ms with equal probability: mean about 25, p95 40. SLO 95 ms:
    # mean: 60 + 25 = 85 eligible; p95: 60 + 40 = 100 not eligible -> region 1 (70 ms).
    services = [
        service("deterministic", 10.0),
        service("deterministic", 10.0),
        service("empirical", samples_ms=[10.0, 40.0]),
    ]
    got, _ = probe(
        [constrained(service_estimate="mean"), constrained(service_estimate="p95")],
        [10.0, 60.0, 60.0],
        INTENSITY3,
        services=services,
        slo_ms=95.0,
    )
    assert got == [2, 1]


def test_constrained_clairvoyant_uses_the_sampled_service_time():
    # The probe request's own service time in region 2 decides eligibility.
    services = [
        service("deterministic", 10.0),
        service("deterministic", 10.0),
        service("empirical", samples_ms=[10.0, 40.0]),
    ]
    seen = set()
    for seed in range(8):
        got, sampled = probe(
            [constrained(service_estimate="clairvoyant")],
            [10.0, 60.0, 60.0],
            INTENSITY3,
            services=services,
            slo_ms=95.0,
            seed=seed,
            inspect=lambda view: view.oracle_service_ms(2),
        )
        assert got == ([2] if sampled == 10.0 else [1]), sampled
        seen.add(sampled)
    assert seen == {10.0, 40.0}


def test_constrained_queue_aware_excludes_a_congested_region():
    # Region 2 has 1 busy and 3 waiting at 10 ms: wait 40 ms -> 125 ms > 100.
    got, _ = probe(
        [constrained(), constrained(queue_aware=False)], RTT3, INTENSITY3, queue_length=[0, 0, 3], busy=[0, 0, 1]
    )
    assert got == [1, 2]


# --- least_latency and the wait estimate -------------------------------------------------------------------


def test_predicted_wait_by_hand():
    # (q + b - c + 1) x s / c: region 0: (3 + 2 - 2 + 1) x 50 / 2 = 100; region 1: a free server -> 0;
    # region 2: unlimited -> 0.
    def wait(view: DecisionView):
        service = view.expected_service_ms
        aware = predicted_latency_ms(view, service, queue_aware=True)
        blind = predicted_latency_ms(view, service, queue_aware=False)
        return [a - b for a, b in zip(aware, blind, strict=True)]

    _choices, got = probe(
        [],
        [0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0],
        service_ms=[50.0, 50.0, 50.0],
        queue_length=[3, 0, 0],
        busy=[2, 1, 9],
        servers=[2, 2, None],
        inspect=wait,
    )
    assert got == [100.0, 0.0, 0.0]


def test_least_latency_prefers_idle_far_region_over_congested_near_one():
    got, _ = probe(
        ["least_latency", "latency_first"],
        [5.0, 50.0],
        [100.0, 100.0],
        service_ms=[100.0, 100.0],
        queue_length=[3, 0],
        busy=[1, 0],
    )
    assert got == [1, 0]


def test_least_latency_stays_near_when_idle():
    assert choose("least_latency", [5.0, 50.0], [100.0, 100.0], service_ms=[100.0, 100.0]) == 0


def test_least_latency_in_a_simulation():
    # Near region (rtt 0) and far region (rtt 100 ms), one server each, 1 s service. Request 0 takes the near
    # server; request 1 (10 ms later) predicts 0 + 1000 + 1000 near vs 100 + 0 + 1000 far and goes far;
    # request 2 (200 ms, request 1 has reached the far server) finds both busy: near 2000, far 2100 -> near.
    scenario = make_scenario(
        regions=[region("near", "Z0"), region("far", "Z1")],
        workloads=[workload(services={"gpu": service("deterministic", 1000.0)})],
        origins=[origin(rtt_ms={"near": 0.0, "far": 100.0})],
    )
    res = run_trace(scenario, [0.0, 0.01, 0.2], policy="least_latency")
    assert res.records.region.tolist() == [0, 1, 0]


# --- round_robin and random --------------------------------------------------------------------------------


def three_regions():
    return make_scenario(
        regions=[region("a", "ZA"), region("b", "ZB"), region("c", "ZC")],
        origins=[origin(rtt_ms={"a": 10.0, "b": 20.0, "c": 30.0})],
    )


def test_round_robin_cycles():
    res = run_trace(three_regions(), [float(k) for k in range(7)], policy="round_robin")
    assert res.records.region.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_restarts_the_cycle_on_reset():
    policy = make_policy(policy_config({"name": "round_robin"}))
    first = run_trace(three_regions(), [0.0, 1.0], policy=policy)
    second = run_trace(three_regions(), [0.0, 1.0], policy=policy)
    assert first.records.region.tolist() == second.records.region.tolist() == [0, 1]


def test_random_is_seeded_and_uses_every_region():
    arrivals = [k * 0.5 for k in range(600)]
    a = run_trace(three_regions(), arrivals, policy="random", seed=11)
    b = run_trace(three_regions(), arrivals, policy="random", seed=11)
    c = run_trace(three_regions(), arrivals, policy="random", seed=12)
    np.testing.assert_array_equal(a.records.region, b.records.region)
    assert not np.array_equal(a.records.region, c.records.region)
    counts = np.bincount(a.records.region, minlength=3)
    # 600 uniform draws: 200 +- 11.5 each; 5 standard deviations either side.
    assert counts.sum() == 600
    assert (abs(counts - 200) < 58).all(), counts


def test_random_draws_from_the_policy_stream():
    res = run_trace(three_regions(), [float(k) for k in range(20)], policy="random", seed=5)
    rng = rngmod.stream(5, "policy")
    assert res.records.region.tolist() == [int(rng.integers(3)) for _ in range(20)]


# --- the view a policy sees in a simulation -----------------------------------------------------------------


class Recorder(BasePolicy):
    """Routes everything to region 0 and records what the view shows."""

    def __init__(self) -> None:
        super().__init__(policy_config({"name": "latency_first"}))
        self.seen: list[tuple] = []

    def decide(self, view: DecisionView) -> int:
        self.seen.append(
            (
                view.now_s,
                view.request_id,
                view.queue_length,
                view.busy_servers,
                view.intensity_gco2_per_kwh,
                view.rtt_ms,
                view.slo_ms,
                view.expected_service_ms,
            )
        )
        return 0


def test_decision_view_in_a_simulation():
    # One server, 2 s service, RTT 0: at 0.5 s one request is in service, at 1.0 s one also waits; the carbon
    # signal changes from hour 0 to hour 1.
    scenario = make_scenario(
        regions=[region("a", "ZA"), region("b", "ZB")],
        workloads=[workload(slo_ms=5000.0)],
        origins=[origin(rtt_ms={"a": 0.0, "b": 40.0})],
    )
    recorder = Recorder()
    run_trace(
        scenario, [0.0, 0.5, 1.0, 3700.0], policy=recorder, carbon=[[100.0, 300.0], [50.0, 20.0]], horizon_s=7200.0
    )
    now, ids, queues, busy, intensity, rtt, slo, svc = zip(*recorder.seen, strict=True)
    assert now == (0.0, 0.5, 1.0, 3700.0)
    assert ids == (0, 1, 2, 3)
    assert queues == ((0, 0), (0, 0), (1, 0), (0, 0))
    assert busy == ((0, 0), (1, 0), (1, 0), (0, 0))
    assert intensity == ((100.0, 50.0),) * 3 + ((300.0, 20.0),)
    assert set(rtt) == {(0.0, 40.0)}
    assert set(slo) == {5000.0}
    assert set(svc) == {(2000.0, 2000.0)}


class OutOfRange(BasePolicy):
    def decide(self, view: DecisionView) -> int:
        return view.n_regions


def test_region_index_out_of_range_is_an_error():
    with pytest.raises(ValueError, match=r"returned region 1 for request 0.*0\.\.0"):
        run_trace(make_scenario(), [0.0], policy=OutOfRange(policy_config({"name": "latency_first"})))


# --- the registry ------------------------------------------------------------------------------------------


def test_register_rejects_a_taken_name():
    with pytest.raises(ValueError, match="latency_first"):
        register("latency_first")(Recorder)


def test_register_adds_a_policy(monkeypatch):
    monkeypatch.setattr(ROUTING, "entries", dict(ROUTING.entries))

    @register("always_last")
    class AlwaysLast(BasePolicy):
        def decide(self, view: DecisionView) -> int:
            return view.n_regions - 1

    assert "always_last" in policy_names()
    policy = make_policy(policy_config({"name": "always_last"}))
    assert isinstance(policy, AlwaysLast)
    res = run_trace(three_regions(), [0.0, 1.0], policy=policy)
    assert res.records.region.tolist() == [2, 2]
