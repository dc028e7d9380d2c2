"""Energy, carbon and cost on tiny scenarios computed by hand.

Common numbers: PUE 1.5, busy 400 W and idle 100 W per server (facility 600 W and 150 W), price
0.2 USD/kWh, carbon 100 gCO2eq/kWh in hour 0 and 300 in hour 1, RTT 0, no jitter.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario, pool, region, run_trace, service, workload

from carbonsim.analysis import metrics
from carbonsim.core.energy import J_PER_KWH
from carbonsim.core.recorder import COMPLETED, IN_FLIGHT

BUSY_W = 400.0 * 1.5
IDLE_W = 100.0 * 1.5
PRICE = 0.2
CARBON = [[100.0, 300.0, 500.0]]
REL = 1e-9


def kwh(watts: float, seconds: float) -> float:
    return watts * seconds / J_PER_KWH


@pytest.fixture(scope="module")
def across_hour():
    """One server, deterministic 2 s service, arrivals at 10 s, 11 s and 3599 s.

    Request 0 is served [10, 12], request 1 queues for 1 s and is served [12, 14], request 2 is served
    [3599, 3601] across the boundary between hour 0 (100 g/kWh) and hour 1 (300 g/kWh). The run drains
    until 3601 s.
    """
    scenario = make_scenario(workloads=[workload(slo_ms=2500.0, services={"gpu": service("deterministic", 2000.0)})])
    res = run_trace(scenario, [10.0, 11.0, 3599.0], carbon=CARBON, horizon_s=3600.0)
    energy = metrics.energy_account(res)
    return res, energy, metrics.request_table(res, energy)


def test_timing(across_hour):
    res, _energy, df = across_hour
    np.testing.assert_allclose(res.records.start_s, [10.0, 12.0, 3599.0])
    np.testing.assert_allclose(res.records.end_s, [12.0, 14.0, 3601.0])
    assert res.end_s == pytest.approx(3601.0)
    np.testing.assert_allclose(df["queue_ms"], [0.0, 1000.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(df["service_ms"], [2000.0] * 3)
    np.testing.assert_allclose(df["total_ms"], [2000.0, 3000.0, 2000.0])
    assert df["slo_met"].tolist() == [True, False, True]


def test_request_energy_and_carbon(across_hour):
    _res, energy, df = across_hour
    np.testing.assert_allclose(energy.request_energy_j, [BUSY_W * 2.0] * 3, rtol=REL)
    expected_g = [
        kwh(BUSY_W, 2.0) * 100.0,
        kwh(BUSY_W, 2.0) * 100.0,
        kwh(BUSY_W, 1.0) * 100.0 + kwh(BUSY_W, 1.0) * 300.0,
    ]
    np.testing.assert_allclose(energy.request_carbon_g, expected_g, rtol=REL)
    np.testing.assert_allclose(energy.request_intensity, [100.0, 100.0, 100.0])
    np.testing.assert_allclose(df["energy_j"], energy.request_energy_j)
    np.testing.assert_allclose(df["carbon_g"], expected_g, rtol=REL)


def test_hourly_busy_and_idle(across_hour):
    _res, energy, _df = across_hour
    np.testing.assert_allclose(energy.busy_server_s, [[5.0, 1.0]], rtol=REL)
    np.testing.assert_allclose(energy.busy_kwh, [[kwh(BUSY_W, 5.0), kwh(BUSY_W, 1.0)]], rtol=REL)
    # Hour 1 lasts 1 s and the server is busy all of it.
    np.testing.assert_allclose(energy.idle_kwh, [[kwh(IDLE_W, 3595.0), 0.0]], rtol=REL, atol=1e-15)
    np.testing.assert_allclose(energy.busy_g, [[kwh(BUSY_W, 5.0) * 100.0, kwh(BUSY_W, 1.0) * 300.0]], rtol=REL)
    np.testing.assert_allclose(energy.idle_g, [[kwh(IDLE_W, 3595.0) * 100.0, 0.0]], rtol=REL, atol=1e-15)
    total_kwh = np.array([[kwh(BUSY_W, 5.0) + kwh(IDLE_W, 3595.0), kwh(BUSY_W, 1.0)]])
    np.testing.assert_allclose(energy.cost_usd, total_kwh * PRICE, rtol=REL)


def test_request_carbon_adds_up_to_busy_carbon(across_hour):
    _res, energy, _df = across_hour
    assert energy.request_carbon_g.sum() == pytest.approx(energy.busy_g.sum(), rel=REL)
    assert energy.request_energy_j.sum() / J_PER_KWH == pytest.approx(energy.busy_kwh.sum(), rel=REL)


def test_summary_totals(across_hour):
    res, energy, df = across_hour
    s = metrics.summary(df, energy, res)
    busy, idle = kwh(BUSY_W, 6.0), kwh(IDLE_W, 3595.0)
    carbon_g = kwh(BUSY_W, 5.0) * 100 + kwh(BUSY_W, 1.0) * 300 + kwh(IDLE_W, 3595.0) * 100
    assert (s["requests"], s["completed"], s["rejected"], s["failed"], s["in_flight"]) == (3, 3, 0, 0, 0)
    assert s["busy_energy_kwh"] == pytest.approx(busy, rel=REL)
    assert s["idle_energy_kwh"] == pytest.approx(idle, rel=REL)
    assert s["energy_kwh"] == pytest.approx(busy + idle, rel=REL)
    assert s["carbon_kg"] == pytest.approx(carbon_g / 1e3, rel=REL)
    assert s["carbon_g_per_request"] == pytest.approx(carbon_g / 3, rel=REL)
    assert s["cost_usd"] == pytest.approx((busy + idle) * PRICE, rel=REL)
    assert s["mean_intensity_gco2_per_kwh"] == pytest.approx(100.0)
    assert s["mean_queue_ms"] == pytest.approx(1000.0 / 3)
    assert s["mean_service_ms"] == pytest.approx(2000.0)
    assert s["slo_violation_pct"] == pytest.approx(100.0 / 3)
    assert s["sim_end_s"] == pytest.approx(3601.0)


def test_hourly_and_per_region_tables(across_hour):
    res, energy, df = across_hour
    hourly = metrics.hourly(df, energy)
    assert hourly["arrivals"].tolist() == [3, 0]
    np.testing.assert_allclose(
        hourly["energy_kwh"], [kwh(BUSY_W, 5.0) + kwh(IDLE_W, 3595.0), kwh(BUSY_W, 1.0)], rtol=REL
    )
    per_region = metrics.per_region(df, energy, res)
    assert per_region["utilization_pct"].iloc[0] == pytest.approx(6.0 / 3601.0 * 100.0, rel=REL)
    assert per_region["energy_kwh"].iloc[0] == pytest.approx(kwh(BUSY_W, 6.0) + kwh(IDLE_W, 3595.0), rel=REL)


def test_unlimited_pool_has_no_idle_energy_and_no_queue():
    scenario = make_scenario(regions=[region(pools=[pool(count=None)])])
    res = run_trace(scenario, [0.0, 0.5, 1.0], carbon=CARBON)
    energy = metrics.energy_account(res)
    np.testing.assert_allclose(res.records.start_s, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(res.records.end_s, [2.0, 2.5, 3.0])
    assert energy.idle_kwh.sum() == 0.0
    assert energy.idle_g.sum() == 0.0
    np.testing.assert_allclose(energy.busy_server_s, [[6.0]], rtol=REL)
    np.testing.assert_allclose(energy.request_energy_j, [BUSY_W * 2.0] * 3, rtol=REL)
    assert energy.cost_usd.sum() == pytest.approx(kwh(BUSY_W, 6.0) * PRICE, rel=REL)


def test_fastest_pool_first_and_per_pool_power():
    # The cpu pool is listed first but is slower (3 s vs 1 s), so the first request goes to the gpu.
    pools = [pool("cpu", count=1, idle_w=50.0, busy_w=200.0), pool("gpu", count=1, idle_w=100.0, busy_w=400.0)]
    wl = workload(services={"cpu": service("deterministic", 3000.0), "gpu": service("deterministic", 1000.0)})
    res = run_trace(make_scenario(regions=[region(pools=pools)], workloads=[wl]), [0.0, 0.1, 0.2], carbon=CARBON)
    energy = metrics.energy_account(res)
    assert res.records.pool.tolist() == [1, 0, 1]
    np.testing.assert_allclose(res.records.start_s, [0.0, 0.1, 1.0])
    np.testing.assert_allclose(res.records.end_s, [1.0, 3.1, 2.0])
    np.testing.assert_allclose(energy.request_energy_j, [600.0, 200.0 * 1.5 * 3.0, 600.0], rtol=REL)
    # The drained run lasts the whole one-hour arrival window; each pool idles outside its busy seconds.
    idle = kwh(50.0 * 1.5, 3600.0 - 3.0) + kwh(100.0 * 1.5, 3600.0 - 2.0)
    np.testing.assert_allclose(energy.idle_kwh, [[idle]], rtol=1e-9)


# Dynamic batching: one server, batches of up to 4, 100 ms batching window, 1 s single service, batch factors
# 1, 1.5, 2, 2.4. Expected batches [start, end], size:
# requests 0-2 (0, 0.02, 0.05 s) wait for the window: [0.1, 2.1], 3 (2.0 s);
# requests 3-6 (0.5..0.8 s) wait for the server: [2.1, 4.5], 4 (2.4 s);
# request 7 (0.9 s, its window long over) alone: [4.5, 5.5];
# request 8 (10 s) alone after its window: [10.1, 11.1];
# requests 9-12 (20..20.03 s) fill a batch at once: [20.03, 22.43];
# request 13 (20.04 s) alone when the server frees: [22.43, 23.43].
BATCH_ARRIVALS = (0.0, 0.02, 0.05, 0.5, 0.6, 0.7, 0.8, 0.9, 10.0, 20.0, 20.01, 20.02, 20.03, 20.04)
BATCH_START = [0.1] * 3 + [2.1] * 4 + [4.5, 10.1] + [20.03] * 4 + [22.43]
BATCH_END = [2.1] * 3 + [4.5] * 4 + [5.5, 11.1] + [22.43] * 4 + [23.43]
BATCH_SIZE = [3] * 3 + [4] * 4 + [1, 1] + [4] * 4 + [1]
BATCH_WINDOW_S = 30.0  # arrival window; the last batch ends at 23.43 s, so the run lasts the window


@pytest.fixture(scope="module")
def batching():
    scenario = make_scenario(
        regions=[region(pools=[pool(count=1, max_batch_size=4, max_queue_delay_ms=100.0)])],
        workloads=[
            workload(services={"gpu": service("deterministic", 1000.0, batch_time_factor=[1.0, 1.5, 2.0, 2.4])})
        ],
    )
    res = run_trace(scenario, list(BATCH_ARRIVALS), carbon=CARBON, horizon_s=BATCH_WINDOW_S)
    energy = metrics.energy_account(res)
    return res, energy, metrics.request_table(res, energy)


def test_batch_formation_and_timing(batching):
    res, _energy, _df = batching
    assert res.records.batch_size.tolist() == BATCH_SIZE
    np.testing.assert_allclose(res.records.start_s, BATCH_START, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.records.end_s, BATCH_END, rtol=0, atol=1e-9)
    assert (res.records.status == COMPLETED).all()


def test_queue_ms_includes_batching_wait(batching):
    _res, _energy, df = batching
    expected = (np.array(BATCH_START) - np.array(BATCH_ARRIVALS)) * 1e3
    np.testing.assert_allclose(df["queue_ms"], expected, atol=1e-6)
    np.testing.assert_allclose(df["service_ms"], (np.array(BATCH_END) - np.array(BATCH_START)) * 1e3, atol=1e-6)


def test_energy_split_equally_within_a_batch(batching):
    _res, energy, _df = batching
    duration = np.array(BATCH_END) - np.array(BATCH_START)
    np.testing.assert_allclose(energy.request_energy_j, BUSY_W * duration / np.array(BATCH_SIZE), rtol=1e-9)
    np.testing.assert_allclose(energy.request_energy_j[:3], [400.0] * 3, rtol=1e-9)  # 600 W x 2 s / 3
    np.testing.assert_allclose(energy.request_energy_j[3:7], [360.0] * 4, rtol=1e-9)  # 600 W x 2.4 s / 4
    assert energy.request_energy_j[7] == pytest.approx(600.0, rel=1e-9)


def test_batching_busy_and_idle_energy(batching):
    res, energy, _df = batching
    busy_s = 2.0 + 2.4 + 1.0 + 1.0 + 2.4 + 1.0
    assert res.end_s == pytest.approx(BATCH_WINDOW_S)
    np.testing.assert_allclose(energy.busy_server_s, [[busy_s]], rtol=1e-9)
    np.testing.assert_allclose(energy.busy_kwh, [[kwh(BUSY_W, busy_s)]], rtol=1e-9)
    # The server is idle while a batch is filling.
    np.testing.assert_allclose(energy.idle_kwh, [[kwh(IDLE_W, BATCH_WINDOW_S - busy_s)]], rtol=1e-9)


def test_service_still_running_at_the_end_is_counted_up_to_the_end():
    # No drain: the second request starts at 2 s and is cut off at the 3 s horizon.
    scenario = make_scenario()
    res = run_trace(scenario, [0.0, 0.5], carbon=CARBON, horizon_s=3.0, drain=False)
    energy = metrics.energy_account(res)
    assert res.end_s == 3.0
    np.testing.assert_allclose(energy.request_energy_j, [BUSY_W * 2.0, BUSY_W * 1.0], rtol=REL)
    np.testing.assert_allclose(energy.busy_server_s, [[3.0]], rtol=REL)
    assert energy.idle_kwh.sum() == pytest.approx(0.0, abs=1e-15)


def test_idle_energy_covers_the_arrival_window_when_draining():
    # One 2 s request at 10 s in a one-hour window. The servers exist for the whole window whether or not
    # the run drains, so idle energy is 150 W x 3598 s either way (and the run lasts at least the window).
    scenario = make_scenario()
    no_drain = run_trace(scenario, [10.0], carbon=CARBON, horizon_s=3600.0, drain=False)
    drained = run_trace(scenario, [10.0], carbon=CARBON, horizon_s=3600.0, drain=True)
    expected_idle = kwh(IDLE_W, 3598.0)
    assert metrics.energy_account(no_drain).idle_kwh.sum() == pytest.approx(expected_idle, rel=REL)
    assert drained.end_s >= 3600.0
    assert metrics.energy_account(drained).idle_kwh.sum() == pytest.approx(expected_idle, rel=REL)


@pytest.mark.parametrize("drain", [False, True])
def test_empty_run_has_idle_energy_for_the_window(drain):
    # No requests at all: the server still idles through the one-hour window, and nothing more.
    res = run_trace(make_scenario(), [], carbon=CARBON, horizon_s=3600.0, drain=drain)
    energy = metrics.energy_account(res)
    assert res.end_s == pytest.approx(3600.0)
    assert energy.idle_kwh.sum() == pytest.approx(kwh(IDLE_W, 3600.0), rel=REL)
    assert energy.busy_kwh.sum() == 0.0


def test_service_starting_exactly_at_the_end_of_the_run():
    # No drain, one-hour window: request 0 is served [3598, 3600] and request 1, queued, would start at
    # 3600 s, the instant the run stops. It is in flight, has used no energy, and the account must not fail.
    res = run_trace(make_scenario(), [3598.0, 3599.0], carbon=CARBON, horizon_s=3600.0, drain=False)
    assert res.records.status.tolist() == [COMPLETED, IN_FLIGHT]
    energy = metrics.energy_account(res)
    np.testing.assert_allclose(energy.request_energy_j, [BUSY_W * 2.0, 0.0], rtol=REL, atol=1e-12)
    np.testing.assert_allclose(energy.busy_server_s.sum(), 2.0, rtol=REL)
    assert energy.idle_kwh.sum() == pytest.approx(kwh(IDLE_W, 3598.0), rel=REL)
