"""Bad configuration is rejected with an error that names the field path and the offending value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import make_scenario, origin, pool, region, scenario_data, service, workload
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from carbonsim import ConfigError, RunConfig, build, policy_config, policy_names
from carbonsim._hydra import config_dir, register_configs
from carbonsim.cli import config_from_hydra
from carbonsim.core.arrivals import from_trace
from carbonsim.core.signals import HourlySignal


def run_config(scenario: dict[str, Any] | None = None, policy: dict[str, Any] | None = None, **top: Any) -> RunConfig:
    return build(
        RunConfig, {"scenario": scenario or scenario_data(), "policy": policy or {"name": "latency_first"}, **top}, ""
    )


def raises_config_error(*fragments: str):
    """Expects a ConfigError whose message contains every fragment literally."""
    return pytest.raises(ConfigError, match="".join(f"(?=[\\s\\S]*{re.escape(f)})" for f in fragments))


def test_valid_config_builds():
    cfg = run_config()
    assert cfg.scenario.region_names == ("r0",)


# --- policies ---------------------------------------------------------------------------------------------


def test_unknown_policy_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        policy_config({"name": "nope"})
    message = str(info.value)
    assert "policy.name" in message and "'nope'" in message
    for name in policy_names():
        assert name in message


def test_unknown_policy_in_run_config():
    with raises_config_error("policy.name", "'nope'", *policy_names()):
        run_config(policy={"name": "nope"})


def test_missing_policy_name():
    with raises_config_error("policy.name", "latency_first"):
        policy_config({"alpha": 0.3})


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan")])
def test_alpha_outside_unit_interval(alpha):
    with raises_config_error("policy.alpha", repr(alpha)):
        policy_config({"name": "hybrid", "alpha": alpha})


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_bounds_are_valid(alpha):
    assert policy_config({"name": "hybrid", "alpha": alpha}).alpha == alpha


def test_alpha_in_run_config_names_the_full_path():
    with raises_config_error("policy.alpha", "1.5"):
        run_config(policy={"name": "hybrid", "alpha": 1.5})


def test_typo_in_policy_parameter():
    with raises_config_error("policy", "alhpa", "alpha"):
        policy_config({"name": "hybrid", "alhpa": 0.3})


def test_parameter_of_another_policy_is_rejected():
    with raises_config_error("policy", "unknown field", "alpha"):
        policy_config({"name": "latency_first", "alpha": 0.3})


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"normalisation": "zscore"}, ("policy.normalisation", "'zscore'", "minmax", "global")),
        ({"latency_range_ms": [300.0, 0.0]}, ("policy.latency_range_ms", "300.0")),
        ({"alpha": "high"}, ("policy.alpha", "'high'")),
    ],
)
def test_bad_hybrid_parameters(params, fragments):
    with raises_config_error(*fragments):
        policy_config({"name": "hybrid", **params})


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"slo_margin": 1.0}, ("policy.slo_margin", "1.0")),
        ({"slo_margin": -0.2}, ("policy.slo_margin", "-0.2")),
        ({"service_estimate": "p42"}, ("policy.service_estimate", "'p42'", "p95", "clairvoyant")),
    ],
)
def test_bad_constrained_hybrid_parameters(params, fragments):
    with raises_config_error(*fragments):
        policy_config({"name": "constrained_hybrid", **params})


# --- scenarios --------------------------------------------------------------------------------------------


def test_unknown_region_in_rtt():
    data = scenario_data(origins=[origin(rtt_ms={"r0": 5.0, "mars": 300.0})])
    with raises_config_error("scenario.origins[0].rtt_ms", "mars", "r0"):
        run_config(data)


def test_origin_without_rtt_to_a_region():
    data = scenario_data(regions=[region("r0", "Z0"), region("r1", "Z1")], origins=[origin(rtt_ms={"r0": 5.0})])
    with raises_config_error("scenario.origins[0].rtt_ms", "'o0'", "r1"):
        run_config(data)


def test_unknown_workload_hardware():
    wl = workload(services={"gpu": service(), "tpu": service()})
    with raises_config_error("scenario.workloads[0].service", "tpu", "gpu"):
        run_config(scenario_data(workloads=[wl]))


def test_workload_missing_hardware():
    regions = [region(pools=[pool("gpu"), pool("cpu")])]
    with raises_config_error("scenario.workloads[0].service", "'w0'", "cpu"):
        run_config(scenario_data(regions=regions))


@pytest.mark.parametrize("rate", [-1.0, float("inf")])
def test_negative_or_infinite_rate(rate):
    with raises_config_error("scenario.arrivals.rate_per_s", repr(rate)):
        run_config(scenario_data(arrivals={"rate_per_s": rate}))


@pytest.mark.parametrize("slo", [0.0, -5.0])
def test_slo_not_positive(slo):
    with raises_config_error("scenario.workloads[0].slo_ms", repr(slo)):
        run_config(scenario_data(workloads=[workload(slo_ms=slo)]))


@pytest.mark.parametrize("pue", [0.9, 0.0])
def test_pue_below_one(pue):
    with raises_config_error("scenario.regions[0].pue", repr(pue)):
        run_config(scenario_data(regions=[region(pue=pue)]))


def test_pue_of_exactly_one_is_valid():
    assert run_config(scenario_data(regions=[region(pue=1.0)])).scenario.regions[0].pue == 1.0


@pytest.mark.parametrize("count", [0, -2])
def test_zero_or_negative_servers(count):
    with raises_config_error("scenario.regions[0].pools[0].count", repr(count)):
        run_config(scenario_data(regions=[region(pools=[pool(count=count)])]))


def test_workload_shares_must_sum_to_one():
    workloads = [workload("a", share=0.5), workload("b", share=0.4)]
    with raises_config_error("scenario.workloads", "0.9", "a=0.5", "b=0.4"):
        run_config(scenario_data(workloads=workloads))


def test_origin_shares_must_sum_to_one():
    origins = [origin("x", share=0.7), origin("y", share=0.7)]
    with raises_config_error("scenario.origins", "1.4", "x=0.7", "y=0.7"):
        run_config(scenario_data(origins=origins))


def test_shares_within_tolerance_are_accepted():
    workloads = [workload("a", share=0.1), workload("b", share=0.2), workload("c", share=0.7)]
    assert len(run_config(scenario_data(workloads=workloads)).scenario.workloads) == 3


@pytest.mark.parametrize(
    ("path", "value", "fragments"),
    [
        (("regions", 0, "pools", 0, "busy_w"), 50.0, ("scenario.regions[0].pools[0].busy_w", "50.0", "idle_w")),
        (("regions", 0, "pools", 0, "idle_w"), -1.0, ("scenario.regions[0].pools[0].idle_w", "-1.0")),
        (("regions", 0, "price_usd_per_kwh"), -0.1, ("scenario.regions[0].price_usd_per_kwh", "-0.1")),
        (("regions", 0, "max_queue_length"), -1, ("scenario.regions[0].max_queue_length", "-1")),
        (("origins", 0, "rtt_ms", "r0"), -3.0, ("scenario.origins[0].rtt_ms.r0", "-3.0")),
        (("workloads", 0, "share"), 1.5, ("scenario.workloads[0].share", "1.5")),
        (("workloads", 0, "service", "gpu", "mean_ms"), 0.0, ("scenario.workloads[0].service.gpu.mean_ms", "0.0")),
        (
            ("workloads", 0, "service", "gpu", "distribution"),
            "gamma",
            ("scenario.workloads[0].service.gpu.distribution", "'gamma'", "exponential"),
        ),
        (("arrivals", "kind"), "bursty", ("scenario.arrivals.kind", "'bursty'", "poisson")),
        (("arrivals", "hourly_profile"), [1.0] * 23, ("scenario.arrivals.hourly_profile", "24")),
        (("jitter_std_ms",), -1.0, ("scenario.jitter_std_ms", "-1.0")),
        (("carbon", "base_gco2_per_kwh"), {"Z9": 10.0}, ("scenario.carbon.base_gco2_per_kwh", "Z0")),
        (("carbon", "amplitude"), 2.0, ("scenario.carbon.amplitude", "2.0")),
    ],
)
def test_bad_scenario_values(path, value, fragments):
    data = scenario_data()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with raises_config_error(*fragments):
        run_config(data)


def test_batching_needs_batch_factors():
    regions = [region(pools=[pool(count=1, max_batch_size=4)])]
    with raises_config_error("scenario.regions[0].pools[0].max_batch_size", "4", "'w0'"):
        run_config(scenario_data(regions=regions))


def test_batch_factors_must_start_at_one():
    wl = workload(services={"gpu": service(batch_time_factor=[1.2, 1.5])})
    with raises_config_error("scenario.workloads[0].service.gpu.batch_time_factor", "1.2"):
        run_config(scenario_data(workloads=[wl]))


def test_duplicate_region_names():
    data = scenario_data(regions=[region("r0", "Z0"), region("r0", "Z1")])
    with raises_config_error("scenario.regions", "'r0'"):
        run_config(data)


# --- run config -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("sim_hours", 0.0, "sim_hours"),
        ("sim_hours", "abc", "sim_hours"),
        ("seed", -1, "seed"),
        ("seed", 1.5, "seed"),
        ("planning_interval_min", 0.0, "planning_interval_min"),
        ("drain", "yes", "drain"),
    ],
)
def test_bad_run_values(key, value, fragment):
    with raises_config_error(fragment, repr(value)):
        run_config(**{key: value})


def test_unknown_baseline_is_rejected_when_the_config_is_built():
    # The baseline is a policy name like policy.name: a typo must be caught before anything is simulated.
    with raises_config_error("baseline", "'nope'", *policy_names()):
        run_config(baseline="nope")


def test_empty_baseline_is_valid():
    assert run_config(baseline="").baseline == ""


def test_bad_experiment_run_is_rejected_when_the_config_is_built():
    experiment = {"name": "x", "runs": [{"name": "latency_first"}, {"name": "hybrid", "alpha": 1.5}]}
    with raises_config_error("experiment.runs[1]", "alpha", "1.5"):
        run_config(experiment=experiment)


def test_unknown_top_level_key():
    with raises_config_error("sim_hour", "sim_hours"):
        run_config(sim_hour=1.0)


def test_missing_required_value():
    with raises_config_error("scenario.name", "required"):
        data = scenario_data()
        del data["name"]
        run_config(data)


# --- data loaders -----------------------------------------------------------------------------------------


def test_from_trace_rejects_decreasing_times():
    with pytest.raises(ValueError, match=r"arrival_s: row 2"):
        from_trace(make_scenario(), 0, np.array([0.0, 2.0, 1.0]), np.zeros(3, int), np.zeros(3, int))


def test_from_trace_rejects_unknown_origin():
    with pytest.raises(ValueError, match=r"origin: row 1: index 3 is out of range 0\.\.0"):
        from_trace(make_scenario(), 0, np.array([0.0, 1.0]), np.array([0, 3]), np.zeros(2, int))


def test_from_trace_rejects_length_mismatch():
    with pytest.raises(ValueError, match=r"workload: expected 2 entries"):
        from_trace(make_scenario(), 0, np.array([0.0, 1.0]), np.zeros(2, int), np.zeros(3, int))


def test_signal_rejects_negative_values():
    with pytest.raises(ValueError, match=r"region index 0, hour 1.*-5"):
        HourlySignal(np.array([[1.0, -5.0]]), "carbon intensity (gCO2eq/kWh)")


# --- Hydra composition and the command line --------------------------------------------------------------


def hydra_compose(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_hydra_unknown_policy_lists_valid_names():
    with pytest.raises(MissingConfigException) as info:
        hydra_compose("policy=nope")
    for name in policy_names():
        assert name in str(info.value)


def test_hydra_unknown_scenario_lists_valid_names():
    with pytest.raises(MissingConfigException) as info:
        hydra_compose("scenario=nope")
    for name in ("default", "reference"):
        assert name in str(info.value)


def test_hydra_rejects_policy_parameter_typo():
    with pytest.raises(ConfigCompositionException, match="alhpa"):
        hydra_compose("policy.alhpa=0.3")


def test_hydra_appended_typo_is_rejected_on_validation():
    with raises_config_error("policy", "alhpa"):
        config_from_hydra(hydra_compose("+policy.alhpa=0.3"))


def test_hydra_bad_alpha_is_rejected_on_validation():
    with raises_config_error("policy.alpha", "1.5"):
        config_from_hydra(hydra_compose("policy.alpha=1.5"))


def test_hydra_bad_scenario_value_is_rejected_on_validation():
    with raises_config_error("scenario.regions[0].pue", "0.5"):
        config_from_hydra(hydra_compose("scenario.regions.0.pue=0.5"))


def run_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carbonsim", "sim_hours=0.1", f"hydra.run.dir={tmp_path / 'out'}", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_rejects_alpha_out_of_range(tmp_path):
    proc = run_cli(tmp_path, "policy.alpha=1.5")
    assert proc.returncode == 2
    assert proc.stderr == "carbonsim: policy.alpha: expected a weight in [0, 1], got 1.5\n"
    assert not (tmp_path / "out" / "summary.json").exists()


def test_cli_rejects_typo(tmp_path):
    proc = run_cli(tmp_path, "policy.alhpa=0.3")
    assert proc.returncode != 0
    assert "alhpa" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


def test_cli_rejects_unknown_baseline_before_running(tmp_path):
    proc = run_cli(tmp_path, "baseline=nope")
    assert proc.returncode == 2
    assert proc.stderr.startswith("carbonsim: baseline: expected a policy name") and "'nope'" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
