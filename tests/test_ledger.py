"""The ledger's incremental credits and the SLO-excess metric, checked by hand on a one-server queue."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario, run_trace, workload

from carbonsim.analysis import metrics
from carbonsim.core.arrivals import from_trace
from carbonsim.core.simulation import Simulation
from carbonsim.core.world import compile_world
from carbonsim.envs.routing import make_ledger
from carbonsim.policies import make_policy, policy_config

# One region, one server (idle 100 W, busy 400 W, PUE 1.5, 0.2 USD/kWh, 100 g/kWh), 2 s deterministic
# service, no network delay, SLO 3 s; three requests arrive at t = 0 and finish at 2, 4 and 6 s.
SCENARIO = make_scenario(workloads=[workload(slo_ms=3000.0)])


def summary(result):
    energy = metrics.energy_account(result)
    return metrics.summary(metrics.request_table(result, energy), energy, result)


def test_slo_excess_by_hand():
    # Latencies 2, 4 and 6 s against an SLO of 3 s: 0 + 1 + 3 s.
    assert summary(run_trace(SCENARIO, [0.0, 0.0, 0.0], horizon_s=1.0))["slo_excess_s"] == pytest.approx(4.0)
    # Undrained, stopped at 5 s: the third request (deadline 3 s) is still in service and has accrued 2 s.
    s = summary(run_trace(SCENARIO, [0.0, 0.0, 0.0], horizon_s=5.0, drain=False))
    assert (s["completed"], s["in_flight"]) == (2, 1)
    assert s["slo_excess_s"] == pytest.approx(3.0)


def test_ledger_credits_by_hand():
    world = compile_world(SCENARIO, 0, 3)
    requests = from_trace(SCENARIO, 0, np.zeros(3), np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64))
    sim = Simulation(
        world,
        requests,
        make_policy(policy_config({"name": "latency_first"})),
        seed=0,
        horizon_s=1.0,
        max_drain_s=3600.0,
    )
    ledger = make_ledger(sim)
    sim.start()
    sim.env.run(until=1.0)
    first = ledger.credit(1.0, 3)
    # Only the idle floor so far: 100 W x 1.5 x 1 s = 150 J; no service has ended, no deadline has passed.
    assert first.energy_kwh == pytest.approx(150.0 / 3.6e6)
    assert (first.slo_excess_s, first.completed) == (0.0, 0)
    sim.env.run(until=3.5)
    second = ledger.credit(3.5, 3)
    # Floor for 2.5 s (375 J) + the first service above idle: 300 W x 1.5 x 2 s = 900 J. Requests 2 and 3
    # passed their deadline at 3 s: 0.5 s each so far.
    assert second.energy_kwh == pytest.approx((375.0 + 900.0) / 3.6e6)
    assert second.completed == 1
    assert second.slo_excess_s == pytest.approx(1.0)
    while not sim.stopped:
        sim.env.step()
    third = ledger.credit(sim.env.now, 3, final=True)
    result = sim.finish()
    assert result.end_s == 6.0
    # Floor for 2.5 s + two services; the rest of the excess: request 2 ends at 4 s (0.5 s more), request 3 at
    # 6 s (2.5 s more).
    assert third.energy_kwh == pytest.approx((375.0 + 1800.0) / 3.6e6)
    assert third.slo_excess_s == pytest.approx(3.0)
    total_kwh = first.energy_kwh + second.energy_kwh + third.energy_kwh
    # 150 W x 6 s + 450 W extra x 6 busy s = 3600 J = 1 Wh: 0.1 g at 100 g/kWh, 0.0002 USD at 0.2 USD/kWh.
    assert total_kwh == pytest.approx(0.001)
    assert first.carbon_g + second.carbon_g + third.carbon_g == pytest.approx(0.1)
    assert first.cost_usd + second.cost_usd + third.cost_usd == pytest.approx(0.0002)
    s = summary(result)
    assert s["energy_kwh"] == pytest.approx(total_kwh)
    assert s["slo_excess_s"] == pytest.approx(4.0)


def test_credits_must_not_go_back_in_time():
    world = compile_world(SCENARIO, 0, 3)
    requests = from_trace(SCENARIO, 0, np.zeros(1), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    sim = Simulation(
        world,
        requests,
        make_policy(policy_config({"name": "latency_first"})),
        seed=0,
        horizon_s=1.0,
        max_drain_s=3600.0,
    )
    ledger = make_ledger(sim)
    ledger.credit(2.0, 1)
    with pytest.raises(ValueError, match="before the last credit"):
        ledger.credit(1.0, 1)
