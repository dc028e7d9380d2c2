"""Hourly signals: lookup, forecast, exact integrals and the synthetic diurnal generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import make_scenario, region

from carbonsim.core.signals import HourlySignal, synthetic_diurnal
from carbonsim.core.world import carbon_signal, signal_hours


@pytest.fixture
def signal() -> HourlySignal:
    return HourlySignal(np.array([[100.0, 300.0, 500.0], [10.0, 20.0, 30.0]]), "carbon")


def test_lookup_is_constant_within_the_hour(signal):
    assert signal.at(0, 0.0) == 100.0
    assert signal.at(0, 3599.999) == 100.0
    assert signal.at(0, 3600.0) == 300.0
    assert signal.all_at(7300.0) == (500.0, 30.0)
    assert (signal.hours, signal.horizon_s) == (3, 10800.0)


def test_lookup_outside_the_signal_raises(signal):
    with pytest.raises(ValueError, match="hour 3"):
        signal.at(0, 10800.0)
    with pytest.raises(ValueError, match="hour -1"):
        signal.at(0, -1.0)


def test_integral_splits_at_hour_boundaries(signal):
    # Region 0 over [3000, 7400]: 600 s x 100 + 3600 s x 300 + 200 s x 500.
    got = signal.integral(np.array([0, 1, 0]), np.array([3000.0, 0.0, 10.0]), np.array([7400.0, 10800.0, 10.0]))
    np.testing.assert_allclose(got, [600 * 100 + 3600 * 300 + 200 * 500, 3600 * 60.0, 0.0])


def test_integral_beyond_the_signal_raises(signal):
    with pytest.raises(ValueError, match="beyond"):
        signal.integral(np.array([0]), np.array([0.0]), np.array([10801.0]))


def test_signal_values_are_read_only(signal):
    with pytest.raises(ValueError):
        signal.values[0, 0] = 1.0


def test_synthetic_diurnal_without_noise():
    values = synthetic_diurnal(
        np.array([100.0, 2.0]), 24, np.random.default_rng(0), amplitude=0.5, phase_h=6.0, noise=0.0, floor=5.0
    )
    hod = np.arange(24)
    expected = 100.0 * (1 + 0.5 * np.sin(2 * math.pi * (hod - 6.0) / 24.0))
    np.testing.assert_allclose(values[0], expected)
    assert values[0, 12] == pytest.approx(150.0)  # the peak, six hours after the upward zero crossing
    np.testing.assert_array_equal(values[1], np.full(24, 5.0))  # floored


def test_synthetic_noise_stays_in_its_band():
    values = synthetic_diurnal(np.array([100.0]), 240, np.random.default_rng(0), amplitude=0.0, noise=0.1)
    assert values.min() >= 90.0 and values.max() <= 110.0
    assert values.std() > 1.0


def test_regions_in_one_zone_share_a_series():
    scenario = make_scenario(
        regions=[region("a", "Z1"), region("b", "Z2"), region("c", "Z1")],
        origins=[{"name": "o", "share": 1.0, "rtt_ms": {"a": 1.0, "b": 1.0, "c": 1.0}}],
        base={"Z1": 300.0, "Z2": 50.0},
    )
    sig = carbon_signal(scenario, 0, 24)
    np.testing.assert_array_equal(sig.values[0], sig.values[2])
    assert sig.values[1].max() < sig.values[0].min()


def test_signal_hours_cover_the_drain():
    assert signal_hours(24.0, True, 24.0) == 49
    assert signal_hours(0.5, False, 24.0) == 2
