"""The fleet scenario (10,000 GPU servers, >= 10 million requests per simulated hour) and the scale benchmarks.

The benchmark scripts are not a package: they are loaded from their files, and run on tiny sizes here (their
figures are not checked; timing belongs in the benchmarks, not in the tests).
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import carbonsim

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"carbonsim_benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_fleet_composes_with_10000_servers_in_at_least_8_regions():
    scenario = carbonsim.load_config(["scenario=fleet"]).scenario
    assert scenario.name == "fleet"
    assert len(scenario.regions) >= 8
    counts = [pool.count for region in scenario.regions for pool in region.pools]
    assert None not in counts
    assert sum(counts) == 10_000
    assert {pool.hardware for region in scenario.regions for pool in region.pools} <= {"t4", "a100"}


def test_fleet_rate_gives_10_million_requests_per_simulated_hour():
    arrivals = carbonsim.load_config(["scenario=fleet"]).scenario.arrivals
    # A flat Poisson rate: every simulated hour has the same mean, and even 5 standard deviations below it
    # an hour holds 10 million requests.
    assert (arrivals.kind, arrivals.load_shape, arrivals.hourly_profile) == ("poisson", "", ())
    mean = arrivals.rate_per_s * 3600.0
    assert mean - 5.0 * math.sqrt(mean) >= 10_000_000


def test_tiny_fleet_run_accounts_for_every_request():
    # 3.6 simulated seconds: about 10,800 requests.
    cfg = carbonsim.load_config(
        ["scenario=fleet", "sim_hours=0.001", "policy=latency_first", "baseline=", "write_requests=false"]
    )
    out = carbonsim.run(cfg)
    s = out.summary
    assert s["requests"] > 0
    assert s["requests"] == s["completed"] + s["rejected"] + s["failed"] + s["in_flight"]
    # Drained, with room to spare: everything completes.
    assert s["completed"] == s["requests"]
    # Latency-first sends every origin to its own region: every region serves.
    served = out.per_region.set_index("region")["requests"]
    assert set(served.index) == set(cfg.scenario.region_names)
    assert (served > 0).all()


def test_scale_benchmark_compares_the_same_requests_at_the_same_utilisation():
    scale = benchmark("scale")
    small = scale.scale_config(1_000, scale.SMALL_PER_REGION, "least_latency", 0, 0.7)
    large = scale.scale_config(1_000, scale.LARGE_PER_REGION, "least_latency", 0, 0.7)
    servers = [sum(p.count for r in cfg.scenario.regions for p in r.pools) for cfg in (small, large)]
    assert servers == [40, 10_000]
    rates = [cfg.scenario.arrivals.rate_per_s for cfg in (small, large)]
    assert rates[1] / rates[0] == pytest.approx(250.0)
    # The headline comparison gives the large fleet the small one's request stream.
    same = scale.scale_config(1_000, scale.LARGE_PER_REGION, "least_latency", 0, 0.7, load_per_region=8)
    assert same.scenario.arrivals.rate_per_s == pytest.approx(rates[0])
    for cfg in (small, large, same):
        assert cfg.scenario.arrivals.rate_per_s * cfg.sim_hours * 3600.0 == pytest.approx(1_000)
        assert cfg.scenario.workloads == small.scenario.workloads
        assert cfg.scenario.origins == small.scenario.origins


def test_scale_benchmark_runs_on_a_tiny_size(capsys):
    benchmark("scale").main(["--requests", "300", "--memory-requests", "300"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "300 requests, 300 completed" in "\n".join(lines)
    assert re.fullmatch(r"ratio_10000_vs_40_same_utilisation \d+\.\d{3}", lines[-2])
    assert re.fullmatch(r"ratio_10000_vs_40 \d+\.\d{3}", lines[-1])


def test_overhead_benchmark_runs_on_a_tiny_grid(tmp_path, capsys):
    # A planning, a learned and a heuristic policy (every policy runs on every scenario in test_configs).
    policies = ["casper", "ppo", "least_latency"]
    overhead = benchmark("overhead")
    table = overhead.main(
        [
            "--policies",
            ",".join(policies),
            "--decisions",
            "100",
            "--fleet",
            "10,20",
            "--regions",
            "3,4",
            "--servers-per-region",
            "2",
            "--isolated",
            "200",
            "--out",
            str(tmp_path),
        ]
    )
    assert list(dict.fromkeys(table["policy"])) == policies
    assert len(table) == 4 * len(policies)
    assert (table["decisions"] == 100).all()
    assert (table["decision_us"] > 0).all()
    assert (table["isolated_us"] > 0).all()
    assert table.loc[table["policy"] == "casper", "plan_ms"].notna().all()
    assert table.loc[table["policy"] != "casper", "plan_ms"].isna().all()
    written = pd.read_csv(tmp_path / "overhead.csv")
    assert list(written["policy"]) == list(table["policy"])
    assert (tmp_path / "overhead.png").stat().st_size > 0
    assert (tmp_path / "overhead.pdf").stat().st_size > 0
    assert "decision overhead in us per decision" in capsys.readouterr().out


def test_overhead_benchmark_regions_are_synthetic_and_symmetric():
    overhead = benchmark("overhead")
    data = overhead.synthetic_scenario(30, 2, 100.0)
    scenario = carbonsim.build(carbonsim.ScenarioConfig, data, "scenario")
    assert len(scenario.regions) == 30
    assert len(set(data["carbon"]["base_gco2_per_kwh"].values())) == 30
    for origin in scenario.origins:
        assert min(origin.rtt_ms.values()) >= 5.0 and max(origin.rtt_ms.values()) <= 205.0
    assert overhead.ring_rtt_ms(0.1, 0.9) == overhead.ring_rtt_ms(0.9, 0.1) == pytest.approx(85.0)
    with pytest.raises(ValueError, match="does not split evenly"):
        overhead.sizes([12], 5, [3], 2)
