"""Request streams: arrival counts and times, origin and workload mixes, service draws."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario, origin, region, service, workload

from carbonsim.config import ArrivalConfig, ServiceTimeConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.arrivals import arrival_times, draw_requests, from_trace
from carbonsim.core.service import profile, sample_ms


def test_fixed_per_hour_counts_exactly():
    # 200 per hour; the last half hour gets 100.
    cfg = ArrivalConfig(kind="fixed_per_hour", rate_per_s=200.0 / 3600.0)
    times = arrival_times(cfg, 2.5, np.random.default_rng(0))
    assert np.histogram(times, bins=[0, 3600, 7200, 9000])[0].tolist() == [200, 200, 100]
    assert (np.diff(times) >= 0).all()
    assert times[-1] < 9000.0


def test_hourly_profile_scales_each_hour():
    profile_ = [0.0, 2.0] + [1.0] * 22
    cfg = ArrivalConfig(kind="fixed_per_hour", rate_per_s=0.1, hourly_profile=tuple(profile_))
    times = arrival_times(cfg, 3.0, np.random.default_rng(0))
    assert np.histogram(times, bins=[0, 3600, 7200, 10800])[0].tolist() == [0, 720, 360]


def test_poisson_count_and_uniformity():
    cfg = ArrivalConfig(kind="poisson", rate_per_s=10.0)
    times = arrival_times(cfg, 10.0, np.random.default_rng(1))
    # Mean 360,000, standard deviation 600.
    assert abs(times.size - 360_000) < 3_000
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(0.1, rel=0.01)
    # Exponential gaps: the standard deviation equals the mean.
    assert gaps.std() == pytest.approx(0.1, rel=0.01)


def test_zero_rate_gives_no_requests():
    assert arrival_times(ArrivalConfig(rate_per_s=0.0), 2.0, np.random.default_rng(0)).size == 0


def test_origin_and_workload_mix_follow_the_shares():
    scenario = make_scenario(
        regions=[region()],
        workloads=[workload("a", share=0.7), workload("b", share=0.3)],
        origins=[origin("x", 0.25), origin("y", 0.75)],
        arrivals={"kind": "poisson", "rate_per_s": 20.0},
    )
    req = draw_requests(scenario, 0, 1.0)
    assert np.bincount(req.workload, minlength=2)[0] / len(req) == pytest.approx(0.7, abs=0.01)
    assert np.bincount(req.origin, minlength=2)[0] / len(req) == pytest.approx(0.25, abs=0.01)


def test_from_trace_keeps_the_given_arrivals():
    scenario = make_scenario(
        workloads=[workload("a", share=0.5), workload("b", share=0.5, services={"gpu": service(mean_ms=500.0)})]
    )
    req = from_trace(scenario, 0, np.array([0.0, 1.0, 1.0, 7.5]), np.zeros(4, int), np.array([0, 1, 1, 0]))
    np.testing.assert_array_equal(req.arrival_s, [0.0, 1.0, 1.0, 7.5])
    np.testing.assert_array_equal(req.service_ms["gpu"], [2000.0, 500.0, 500.0, 2000.0])
    np.testing.assert_array_equal(req.jitter_ms, np.zeros(4))


def test_jitter_is_non_negative_half_normal():
    scenario = make_scenario(jitter_std_ms=3.0)
    req = from_trace(scenario, 0, np.linspace(0.0, 100.0, 50_000), np.zeros(50_000, int), np.zeros(50_000, int))
    assert (req.jitter_ms >= 0).all()
    assert (req.jitter_ms == 0).mean() == pytest.approx(0.5, abs=0.01)
    # E[max(0, N(0, s))] = s / sqrt(2 pi).
    assert req.jitter_ms.mean() == pytest.approx(3.0 / np.sqrt(2 * np.pi), rel=0.02)


@pytest.mark.parametrize(
    ("cfg", "mean", "std"),
    [
        (ServiceTimeConfig("exponential", 50.0), 50.0, 50.0),
        (ServiceTimeConfig("lognormal", 40.0, std_ms=10.0), 40.0, 10.0),
        (ServiceTimeConfig("normal", 100.0, std_ms=5.0), 100.0, 5.0),
    ],
)
def test_service_distributions_have_the_configured_moments(cfg, mean, std):
    x = sample_ms(cfg, np.random.default_rng(0), 200_000)
    assert x.mean() == pytest.approx(mean, rel=0.01)
    assert x.std() == pytest.approx(std, rel=0.02)


def test_truncated_normal_stays_in_its_window():
    cfg = ServiceTimeConfig("truncated_normal", 50.0, std_ms=30.0, min_ms=40.0, max_ms=70.0)
    x = sample_ms(cfg, np.random.default_rng(0), 10_000)
    assert x.min() >= 40.0 and x.max() <= 70.0


def test_normal_is_floored_at_min():
    x = sample_ms(ServiceTimeConfig("normal", 10.0, std_ms=10.0, min_ms=2.0), np.random.default_rng(0), 10_000)
    assert x.min() == 2.0


def test_empirical_resamples_the_given_values():
    x = sample_ms(ServiceTimeConfig("empirical", samples_ms=(5.0, 7.0)), np.random.default_rng(0), 1_000)
    assert set(np.unique(x).tolist()) == {5.0, 7.0}


def test_deterministic_profile_is_exact():
    p = profile(ServiceTimeConfig("deterministic", 12.5), np.random.default_rng(0))
    assert (p.mean_ms, p.p50_ms, p.p99_ms) == (12.5, 12.5, 12.5)


def test_named_streams_are_independent_of_request_order():
    a1 = rngmod.stream(3, "arrivals").random(5)
    rngmod.stream(3, "service/gpu").random(100)
    a2 = rngmod.stream(3, "arrivals").random(5)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, rngmod.stream(3, "network").random(5))
    assert not np.array_equal(a1, rngmod.stream(4, "arrivals").random(5))
