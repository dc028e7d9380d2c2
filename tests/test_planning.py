"""The ``plan`` hook: called at time 0 and then every planning interval with a PlanView."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import make_scenario, origin, region, run_trace, scenario_data

from carbonsim import BasePolicy, DecisionView, PlanView, RunConfig, build, policy_config
from carbonsim.runner import prepare, simulate_policy


class Planner(BasePolicy):
    """Records every plan and decision; routes to the region its last plan found cleanest."""

    def __init__(self) -> None:
        super().__init__(policy_config({"name": "latency_first"}))
        self.plans: list[PlanView] = []
        self.events: list[tuple[str, float]] = []
        self.target = 0

    def plan(self, view: PlanView) -> None:
        assert isinstance(view, PlanView)
        self.plans.append(view)
        self.events.append(("plan", view.now_s))
        self.target = int(np.argmin(view.intensity_gco2_per_kwh))

    def decide(self, view: DecisionView) -> int:
        self.events.append(("decide", view.now_s))
        return self.target


def steady_arrivals(horizon_s: float, every_s: float = 60.0, first_s: float = 30.0) -> list[float]:
    return np.arange(first_s, horizon_s, every_s).tolist()


@pytest.mark.parametrize(
    ("horizon_s", "interval_s"), [(3600.0, 900.0), (3600.0, 420.0), (1800.0, 1800.0), (1000.0, 300.0), (7200.0, 3600.0)]
)
def test_plan_is_called_every_interval(horizon_s, interval_s):
    planner = Planner()
    run_trace(
        make_scenario(), steady_arrivals(horizon_s), policy=planner, horizon_s=horizon_s, planning_interval_s=interval_s
    )
    expected = math.ceil(horizon_s / interval_s)
    assert len(planner.plans) == expected
    np.testing.assert_allclose([p.now_s for p in planner.plans], np.arange(expected) * interval_s)
    assert {p.interval_s for p in planner.plans} == {interval_s}


def test_plan_count_is_reported():
    planner = Planner()
    res = run_trace(make_scenario(), steady_arrivals(3600.0), policy=planner, planning_interval_s=420.0)
    assert res.plans == 9 == len(planner.plans)


def test_plan_comes_before_the_first_decision():
    planner = Planner()
    run_trace(make_scenario(), [0.0, 5.0], policy=planner, horizon_s=10.0, planning_interval_s=60.0)
    assert planner.events == [("plan", 0.0), ("decide", 0.0), ("decide", 5.0)]


def test_plan_view_counts_arrivals_of_the_last_interval():
    # One arrival a minute from 30 s; 7-minute intervals hold 7 arrivals each.
    planner = Planner()
    run_trace(make_scenario(), steady_arrivals(3600.0), policy=planner, planning_interval_s=420.0)
    counts = [int(p.arrivals_last_interval.sum()) for p in planner.plans]
    assert counts == [0] + [7] * 8
    assert planner.plans[1].arrivals_last_interval.shape == (1, 1)


def test_plan_view_shows_the_system_state():
    # Region a: one server, 2 s service; 5 arrivals at 899.0..899.4 s: at the 900 s plan one is in service
    # and four wait. Carbon: a 100 -> 300, b 200 -> 50 at the hour.
    scenario = make_scenario(
        regions=[region("a", "ZA"), region("b", "ZB")],
        origins=[origin(rtt_ms={"a": 0.0, "b": 0.0})],
        forecast={"kind": "perfect"},
    )
    planner = Planner()
    arrivals = [899.0, 899.1, 899.2, 899.3, 899.4, 3599.0]
    run_trace(
        scenario,
        arrivals,
        policy=planner,
        carbon=[[100.0, 300.0], [200.0, 50.0]],
        horizon_s=3600.0,
        planning_interval_s=900.0,
    )
    at = {p.now_s: p for p in planner.plans}
    assert at[900.0].queue_length == (4, 0)
    assert at[900.0].busy_servers == (1, 0)
    assert at[0.0].intensity_gco2_per_kwh == (100.0, 200.0)
    np.testing.assert_array_equal(at[0.0].forecast_gco2_per_kwh(1, 2), [200.0, 50.0])


def test_decisions_follow_the_plan():
    # The planner routes to the region that was cleanest at its last plan: a in hour 0, b from 3600 s on.
    scenario = make_scenario(
        regions=[region("a", "ZA"), region("b", "ZB")], origins=[origin(rtt_ms={"a": 0.0, "b": 0.0})]
    )
    planner = Planner()
    res = run_trace(
        scenario,
        [100.0, 3500.0, 3700.0, 7000.0],
        policy=planner,
        horizon_s=7200.0,
        carbon=[[100.0, 300.0], [200.0, 50.0]],
        planning_interval_s=1800.0,
    )
    assert res.records.region.tolist() == [0, 0, 1, 1]


def test_run_config_planning_interval():
    data = scenario_data(arrivals={"kind": "poisson", "rate_per_s": 2.0})
    cfg = build(
        RunConfig,
        {
            "scenario": data,
            "policy": {"name": "latency_first"},
            "sim_hours": 1.0,
            "planning_interval_min": 7.0,
            "baseline": "",
        },
        "",
    )
    world, requests, _ = prepare(cfg)
    assert requests.arrival_s[-1] > 3360.0  # an arrival after the last planning instant
    out = simulate_policy(cfg, cfg.policy, world, requests)
    assert out.timing["plan_calls"] == 9


@pytest.mark.parametrize("drain", [False, True])
def test_plan_is_called_over_the_whole_window_when_requests_finish_early(drain):
    # One short request at 10 s in a one-hour window with 15-minute planning: the window, not the last
    # completion, decides how often the policy plans (4 times, at 0, 900, 1800 and 2700 s).
    planner = Planner()
    run_trace(make_scenario(), [10.0], policy=planner, horizon_s=3600.0, planning_interval_s=900.0, drain=drain)
    assert [p.now_s for p in planner.plans] == [0.0, 900.0, 1800.0, 2700.0]
