"""Service times from NVIDIA's measured latencies: median estimate, lognormal fit, batch factors, resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import make_scenario, pool, region, workload

from carbonsim import ConfigError
from carbonsim.config import MeasuredProfileConfig, ServiceTimeConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.service import sample_ms
from carbonsim.data.errors import DataError
from carbonsim.data.profiles import load_inference_profiles, service_profile
from carbonsim.hardware import batch_factors, measured_service, median_latency_ms, resolve_profiles


def _measured(model: str, gpu: str, **kw) -> ServiceTimeConfig:
    return ServiceTimeConfig(distribution="measured", measured=MeasuredProfileConfig(model=model, gpu=gpu, **kw))


def test_median_estimate_from_p90_and_p99_is_close_to_the_published_p50():
    table = load_inference_profiles()
    with_p50 = table[table["latency_p50_ms"].notna() & (table["latency_p99_ms"] > table["latency_p90_ms"])]
    assert len(with_p50) >= 50
    hidden = with_p50.assign(latency_p50_ms=np.nan)
    estimate, _ = median_latency_ms(hidden)
    rel = estimate / with_p50["latency_p50_ms"].to_numpy() - 1.0
    # On the 70 rows with a published p50 the lognormal through p90 and p99 is off by 1.3 % in the median
    # row and by 7 % at worst.
    assert np.median(np.abs(rel)) < 0.02
    assert np.abs(rel).max() < 0.08


def test_measured_bert_base_on_t4_follows_the_published_table():
    table = service_profile("bert-base", "T4", precision="fp16", seq_len=128, serving_stack="framework_benchmark")
    spec = measured_service(_measured("bert-base", "T4"))
    assert spec.distribution == "lognormal"
    p50, p90, p99 = (float(table.loc[1, f"latency_{q}_ms"]) for q in ("p50", "p90", "p99"))
    sigma = math.log(p99 / p90) / (2.3263478740408408 - 1.2815515655446004)
    # Mean of a lognormal with the published median p50 and the fitted sigma.
    assert spec.mean_ms == pytest.approx(p50 * math.exp(sigma**2 / 2))
    draws = sample_ms(spec, rngmod.stream(0, "t"), 200_000)
    assert np.median(draws) == pytest.approx(p50, rel=0.01)
    # Batch factors: published p50 ratios at 2, 4, 8; interpolated at 3.
    f = spec.batch_time_factor
    assert len(f) == 8
    medians = table["latency_p50_ms"]
    for b in (2, 4, 8):
        assert f[b - 1] == pytest.approx(medians[b] / medians[1])
    assert f[2] == pytest.approx((f[1] + f[3]) / 2)


def test_batch_factors_never_fall_with_the_batch_size():
    got = batch_factors(np.array([1, 2, 4]), np.array([4.0, 4.6, 4.2]))
    np.testing.assert_allclose(got, [1.0, 1.15, 1.15, 1.15])


def test_every_default_stack_profile_resolves_for_the_three_models():
    for gpu, memory in (("T4", None), ("A100", None), ("V100", 16)):
        for model in ("bert-base", "bert-large", "resnet50-v1.5"):
            spec = measured_service(_measured(model, gpu, gpu_memory_gb=memory))
            assert spec.mean_ms > 0 and spec.batch_time_factor[0] == 1.0
            assert all(b >= a for a, b in zip(spec.batch_time_factor, spec.batch_time_factor[1:], strict=False))


def _scenario(spec: dict, max_batch_size: int = 1):
    pools = [pool("t4", count=1, idle_w=9.0, busy_w=70.0, max_batch_size=max_batch_size, max_queue_delay_ms=2.0)]
    return make_scenario(regions=[region(pools=pools)], workloads=[workload(services={"t4": spec})])


def test_resolution_replaces_measured_specs_and_rechecks_batching():
    spec = {"distribution": "measured", "measured": {"model": "bert-large", "gpu": "T4"}}
    resolved = resolve_profiles(_scenario(spec, max_batch_size=8))
    assert resolved.workloads[0].service["t4"].distribution == "lognormal"
    with pytest.raises(ConfigError, match=r"regions\[0\]\.pools\[0\]\.max_batch_size: 16 .* gives 8"):
        resolve_profiles(_scenario(spec, max_batch_size=16))


def test_ambiguous_or_unknown_measurements_are_errors_naming_the_workload():
    spec = {"distribution": "measured", "measured": {"model": "bert-base", "gpu": "V100"}}
    with pytest.raises(DataError, match=r"workloads\[0\]\.service\.t4: .*gpu_memory_gb in \['16', '32'\]"):
        resolve_profiles(_scenario(spec))
    spec = {"distribution": "measured", "measured": {"model": "bert-base", "gpu": "H100"}}
    with pytest.raises(DataError, match=r"workloads\[0\]\.service\.t4: no profile of 'bert-base' on GPU 'H100'"):
        resolve_profiles(_scenario(spec))


def test_measured_spec_is_validated_and_cannot_be_sampled_unresolved():
    with pytest.raises(ConfigError, match="measured: expected a measured configuration"):
        ServiceTimeConfig(distribution="measured")
    with pytest.raises(ConfigError, match="batch_time_factor: expected empty for measured"):
        ServiceTimeConfig(
            distribution="measured",
            measured=MeasuredProfileConfig(model="bert-base", gpu="T4"),
            batch_time_factor=(1.0, 1.5),
        )
    with pytest.raises(ConfigError, match="must be resolved"):
        sample_ms(_measured("bert-base", "T4"), rngmod.stream(0, "t"), 3)
