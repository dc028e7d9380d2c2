"""The chunked tables (what the runner computes) equal the whole-table ones of carbonsim.analysis.metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_scenario, origin, pool, region, run_trace, service, workload

from carbonsim import load_config
from carbonsim.analysis import metrics
from carbonsim.analysis.stream import StreamedTables
from carbonsim.core.simulation import Simulation
from carbonsim.policies import make_policy
from carbonsim.runner import prepare


def default_run(faults: bool):
    overrides = ["sim_hours=0.1", "seed=5", "policy=carbon_first", "max_drain_hours=0.05", "drain=false"]
    if faults:
        overrides += [
            "scenario.faults.outages=[{region: ca-central, start_h: 0.03, duration_h: 0.04}]",
            "scenario.faults.servers.mtbf_h=0.2",
            "scenario.faults.servers.mttr_h=0.02",
            "scenario.faults.on_failure=fail",
        ]
    cfg = load_config(overrides)
    world, requests, _ = prepare(cfg)
    sim = Simulation(
        world, requests, make_policy(cfg.policy), seed=cfg.seed, horizon_s=cfg.sim_hours * 3600.0, drain=False
    )
    return sim.run()


def queue_limited_run():
    sc = make_scenario(
        regions=[region("a", "Z0", pools=[pool(count=1)], max_queue_length=2), region("b", "Z1")],
        workloads=[
            workload("w0", slo_ms=1500.0, share=0.5, services={"gpu": service("exponential", 800.0)}),
            workload("w1", slo_ms=3000.0, share=0.5, services={"gpu": service("exponential", 300.0)}),
        ],
        origins=[origin(rtt_ms={"a": 10.0, "b": 40.0})],
    )
    arrivals = np.sort(np.random.default_rng(3).uniform(0, 7200, 8000))
    return run_trace(sc, arrivals.tolist(), horizon_s=7200.0, workload_idx=(np.arange(8000) % 2).tolist())


@pytest.fixture(scope="module", params=["default", "faults", "queue_limited"])
def result(request):
    if request.param == "queue_limited":
        return queue_limited_run()
    return default_run(request.param == "faults")


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if np.issubdtype(np.asarray(x).dtype, np.number) and np.issubdtype(np.asarray(y).dtype, np.number):
            np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=1e-12, atol=1e-9, err_msg=col)
        else:
            assert [str(v) for v in x] == [str(v) for v in y], col


def test_chunked_tables_equal_the_whole_table(result):
    energy = metrics.energy_account(result)
    df = metrics.request_table(result, energy)
    # Chunks of 777 requests: many chunks, none aligned with anything.
    streamed = StreamedTables(result, energy, chunk=777)
    whole = metrics.summary(df, energy, result)
    chunked = streamed.summary()
    assert chunked.keys() == whole.keys()
    for key, value in whole.items():
        assert chunked[key] == pytest.approx(value, rel=1e-12, abs=1e-9, nan_ok=True), key
    assert_same(streamed.per_workload(), metrics.per_workload(df))
    assert_same(streamed.per_region(), metrics.per_region(df, energy, result))
    assert_same(streamed.hourly(), metrics.hourly(df, energy))
    assert_same(streamed.routing_table(), metrics.routing(df))
    assert_same(streamed.latency_quantiles(), metrics.latency_quantiles(df))
    assert_same(streamed.timeline(), metrics.timeline(df))


def test_the_streamed_parquet_file_is_the_request_table(result, tmp_path):
    energy = metrics.energy_account(result)
    streamed = StreamedTables(result, energy, chunk=1000)
    streamed.write_requests(tmp_path / "requests.parquet")
    back = pd.read_parquet(tmp_path / "requests.parquet")
    whole = metrics.request_table(result, energy)
    pd.testing.assert_frame_equal(back, whole)


def test_a_chunk_is_the_slice_of_the_whole_table(result):
    energy = metrics.energy_account(result)
    whole = metrics.request_table(result, energy)
    part = metrics.request_table(result, energy, 100, 350)
    pd.testing.assert_frame_equal(part.reset_index(drop=True), whole.iloc[100:350].reset_index(drop=True))


def test_a_run_without_requests_has_empty_tables():
    empty = run_trace(make_scenario(), [], horizon_s=100.0)
    streamed = StreamedTables(empty, metrics.energy_account(empty))
    assert streamed.summary()["requests"] == 0 and streamed.timeline().empty
    assert (streamed.per_workload()["requests"] == 0).all()
