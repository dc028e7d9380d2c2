"""The region queue against queueing theory: M/M/1 and M/M/c waits vs the Erlang C formula.

One region, one origin with RTT 0 and no jitter, exponential service and Poisson arrivals, routed by
``latency_first``: the region is then exactly an M/M/c FIFO queue. Runs are long (about 260,000 customers)
with fixed seeds; the standard error of the mean wait is about 1.5 % at these loads, so 5 % is a tolerance
a correct simulator passes for any seed and a wrong queue discipline, server count or time unit does not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import pool, region, scenario_data, service, workload

from carbonsim import RunConfig, build, load_config
from carbonsim.analysis import metrics
from carbonsim.core.simulation import Simulation
from carbonsim.policies import make_policy
from carbonsim.runner import RunOutput, prepare, simulate_policy

MEAN_SERVICE_MS = 100.0


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``offered`` = lambda / mu."""
    below = sum(offered**k / math.factorial(k) for k in range(c))
    top = offered**c / math.factorial(c) * c / (c - offered)
    return top / (below + top)


def mmc_wait_ms(c: int, rate_per_s: float, mean_service_ms: float) -> float:
    """Mean wait in queue (before service) of an M/M/c queue, in ms."""
    mu = 1000.0 / mean_service_ms
    return erlang_c(c, rate_per_s / mu) / (c * mu - rate_per_s) * 1000.0


def test_erlang_c_reference_values():
    # Textbook values: M/M/1 waits with probability rho; M/M/2 with a = 1: C = 1/3.
    assert erlang_c(1, 0.6) == pytest.approx(0.6)
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    assert mmc_wait_ms(1, 6.0, 100.0) == pytest.approx(150.0)  # rho / (mu - lambda) = 0.6 / 4 s


def mmc_config(
    servers: int, rate_per_s: float, sim_hours: float, seed: int, distribution: str = "exponential"
) -> RunConfig:
    data = scenario_data(
        regions=[region(pools=[pool(count=servers)])],
        workloads=[workload(services={"gpu": service(distribution, MEAN_SERVICE_MS)})],
        arrivals={"kind": "poisson", "rate_per_s": rate_per_s},
    )
    return build(
        RunConfig,
        {"scenario": data, "policy": {"name": "latency_first"}, "seed": seed, "sim_hours": sim_hours, "baseline": ""},
        "",
    )


def run_queue(
    servers: int, rate_per_s: float, sim_hours: float, seed: int, distribution: str = "exponential"
) -> RunOutput:
    cfg = mmc_config(servers, rate_per_s, sim_hours, seed, distribution)
    world, requests, _ = prepare(cfg)
    return simulate_policy(cfg, cfg.policy, world, requests)


# (servers, arrival rate per s, hours): rho = 0.6 and 0.65, about 260,000 customers each.
CASES = {"M/M/1": (1, 6.0, 12.0), "M/M/3": (3, 19.5, 3.7)}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def mmc_run(request: pytest.FixtureRequest) -> tuple[int, float, RunOutput]:
    servers, rate, hours = CASES[request.param]
    return servers, rate, run_queue(servers, rate, hours, seed=1)


def test_run_is_long_and_complete(mmc_run):
    _servers, _rate, out = mmc_run
    assert out.summary["requests"] > 200_000
    assert out.summary["completed"] == out.summary["requests"]


def test_mean_wait_matches_erlang_c(mmc_run):
    servers, rate, out = mmc_run
    wait_ms = out.requests["queue_ms"].to_numpy()
    assert wait_ms.mean() == pytest.approx(mmc_wait_ms(servers, rate, MEAN_SERVICE_MS), rel=0.05)
    assert out.summary["mean_queue_ms"] == pytest.approx(wait_ms.mean())


def test_probability_of_waiting_matches_erlang_c(mmc_run):
    servers, rate, out = mmc_run
    waited = (out.requests["queue_ms"].to_numpy() > 1e-9).mean()
    assert waited == pytest.approx(erlang_c(servers, rate * MEAN_SERVICE_MS / 1000.0), abs=0.01)


def test_mean_service_time(mmc_run):
    _servers, _rate, out = mmc_run
    # The standard error of the mean of 260,000 exponential draws is 0.2 %.
    assert out.requests["service_ms"].mean() == pytest.approx(MEAN_SERVICE_MS, rel=0.01)


def test_queue_ms_is_start_minus_arrival(mmc_run):
    # RTT 0 and no jitter: the request reaches the region when it arrives at its origin.
    _servers, _rate, out = mmc_run
    df = out.requests
    assert (df["network_ms"] == 0.0).all()
    np.testing.assert_allclose(df["queue_ms"], (df["start_s"] - df["arrival_s"]) * 1e3, atol=1e-6)
    assert (df["queue_ms"] >= -1e-9).all()


def test_utilisation_matches_offered_load(mmc_run):
    servers, rate, out = mmc_run
    rho = rate * MEAN_SERVICE_MS / 1000.0 / servers
    assert out.per_region["utilization_pct"].iloc[0] == pytest.approx(rho * 100.0, rel=0.02)


@pytest.mark.slow
def test_md1_mean_wait_matches_pollaczek_khinchine():
    # Deterministic service: Wq = rho s / (2 (1 - rho)), half the M/M/1 wait.
    rate, hours = 7.0, 16.0
    out = run_queue(1, rate, hours, seed=3, distribution="deterministic")
    rho = rate * MEAN_SERVICE_MS / 1000.0
    expected = rho * MEAN_SERVICE_MS / (2.0 * (1.0 - rho))
    assert out.requests["queue_ms"].mean() == pytest.approx(expected, rel=0.03)
    assert out.requests["service_ms"].to_numpy() == pytest.approx(MEAN_SERVICE_MS)


@pytest.mark.slow
def test_mmc_high_load_mean_wait():
    # rho = 0.8 on 4 servers, about 1.15 million customers.
    servers, rate, hours = 4, 32.0, 10.0
    out = run_queue(servers, rate, hours, seed=4)
    assert out.requests["queue_ms"].mean() == pytest.approx(mmc_wait_ms(servers, rate, MEAN_SERVICE_MS), rel=0.05)


def test_request_table_and_records_agree():
    # A short run, read both ways: request_table's queue_ms equals start_s minus arrival at the region.
    cfg = mmc_config(2, 12.0, 0.05, seed=0)
    world, requests, _ = prepare(cfg)
    result = Simulation(world, requests, make_policy(cfg.policy), seed=0, horizon_s=cfg.sim_hours * 3600.0).run()
    df = metrics.request_table(result, metrics.energy_account(result))
    np.testing.assert_allclose(df["queue_ms"], (result.records.start_s - requests.arrival_s) * 1e3, atol=1e-6)


def test_unlimited_servers_never_queue():
    # The reference scenario: unlimited pools, network jitter, five regions. Every request starts service
    # the moment it reaches its region, so its latency is network + service exactly.
    cfg = load_config(["scenario=reference", "sim_hours=6", "policy=random", "baseline="])
    world, requests, _ = prepare(cfg)
    out = simulate_policy(cfg, cfg.policy, world, requests)
    df = out.requests
    assert (df["status"] == "completed").all()
    np.testing.assert_allclose(df["queue_ms"], 0.0, atol=1e-6)
    np.testing.assert_allclose(df["total_ms"], df["network_ms"] + df["service_ms"], atol=1e-6)
