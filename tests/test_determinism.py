"""Same seed, same results: byte-identical CLI outputs and identical in-process records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import origin, region, scenario_data, service, workload

from carbonsim import RunConfig, build
from carbonsim.core.arrivals import draw_requests
from carbonsim.core.simulation import SimResult, Simulation
from carbonsim.policies import make_policy, policy_config
from carbonsim.runner import prepare

#: Files of a run that must not depend on anything but the configuration (timing.json holds wall-clock).
DETERMINISTIC_FILES = ("summary.json", "per_workload.csv", "per_region.csv", "hourly.csv", "routing.csv")


def start_cli(out: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carbonsim",
            "sim_hours=0.5",
            "write_requests=false",
            f"hydra.run.dir={out}",
            *overrides,
        ],
        cwd=out.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three CLI runs (seeds 7, 7 and 8), started together to use both cores."""
    tmp = tmp_path_factory.mktemp("cli")
    seeds = {"a": 7, "b": 7, "c": 8}
    procs = {name: start_cli(tmp / name, f"seed={seed}") for name, seed in seeds.items()}
    for name, proc in procs.items():
        _stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"run {name}: {stderr}"
    return {name: tmp / name for name in seeds}


def test_cli_same_seed_gives_identical_files(cli_runs):
    for name in DETERMINISTIC_FILES:
        assert (cli_runs["a"] / name).read_bytes() == (cli_runs["b"] / name).read_bytes(), name


def test_cli_different_seed_gives_different_summary(cli_runs):
    assert (cli_runs["a"] / "summary.json").read_bytes() != (cli_runs["c"] / "summary.json").read_bytes()


def test_cli_writes_the_expected_files(cli_runs):
    for name in (*DETERMINISTIC_FILES, "timing.json"):
        assert (cli_runs["a"] / name).is_file(), name
    assert not (cli_runs["a"] / "requests.parquet").exists()


def small_config(seed: int, jitter_ms: float = 2.0) -> RunConfig:
    regions = [region("a", "ZA"), region("b", "ZB"), region("c", "ZC")]
    wl = workload(services={"gpu": service("exponential", 300.0)})
    data = scenario_data(
        regions=regions,
        workloads=[wl],
        origins=[
            origin("x", 0.5, {"a": 10.0, "b": 40.0, "c": 80.0}),
            origin("y", 0.5, {"a": 60.0, "b": 15.0, "c": 30.0}),
        ],
        base={"ZA": 300.0, "ZB": 100.0, "ZC": 50.0},
        arrivals={"kind": "poisson", "rate_per_s": 5.0},
        jitter_std_ms=jitter_ms,
    )
    data["carbon"].update(noise=0.1, amplitude=0.2)
    return build(RunConfig, {"scenario": data, "policy": {"name": "random"}, "seed": seed, "sim_hours": 0.2}, "")


def simulate(cfg: RunConfig, policy: str = "random") -> SimResult:
    world, requests, _ = prepare(cfg)
    sim = Simulation(
        world, requests, make_policy(policy_config({"name": policy})), seed=cfg.seed, horizon_s=cfg.sim_hours * 3600.0
    )
    return sim.run()


RECORD_COLUMNS = ("region", "pool", "status", "batch_size", "start_s", "end_s")


@pytest.mark.parametrize("policy", ["random", "least_latency", "hybrid"])
def test_same_seed_gives_identical_records(policy):
    a, b = simulate(small_config(3), policy), simulate(small_config(3), policy)
    for col in RECORD_COLUMNS:
        np.testing.assert_array_equal(getattr(a.records, col), getattr(b.records, col), err_msg=col)
    np.testing.assert_array_equal(a.requests.arrival_s, b.requests.arrival_s)
    np.testing.assert_array_equal(a.requests.jitter_ms, b.requests.jitter_ms)
    np.testing.assert_array_equal(a.world.carbon.values, b.world.carbon.values)
    assert a.end_s == b.end_s


def test_different_seed_gives_different_records():
    a, b = simulate(small_config(3)), simulate(small_config(4))
    assert len(a.requests) != len(b.requests) or not np.array_equal(a.requests.arrival_s, b.requests.arrival_s)
    assert not np.array_equal(a.world.carbon.values, b.world.carbon.values)


def test_requests_do_not_depend_on_the_policy():
    # Common random numbers: the request stream is drawn before and independently of any policy.
    cfg = small_config(5)
    a, b = simulate(cfg, "random"), simulate(cfg, "carbon_first")
    np.testing.assert_array_equal(a.requests.arrival_s, b.requests.arrival_s)
    np.testing.assert_array_equal(a.requests.service_ms["gpu"], b.requests.service_ms["gpu"])
    assert not np.array_equal(a.records.region, b.records.region)


def test_arrivals_do_not_depend_on_jitter_setting():
    # Streams are keyed by name: turning jitter on must not shift the arrivals or the service draws.
    with_jitter, without = small_config(6, jitter_ms=5.0), small_config(6, jitter_ms=0.0)
    ra = draw_requests(with_jitter.scenario, 6, 0.2)
    rb = draw_requests(without.scenario, 6, 0.2)
    np.testing.assert_array_equal(ra.arrival_s, rb.arrival_s)
    np.testing.assert_array_equal(ra.service_ms["gpu"], rb.service_ms["gpu"])
    assert (rb.jitter_ms == 0).all()
    assert (ra.jitter_ms > 0).any()
