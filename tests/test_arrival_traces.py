"""Arrivals from measured data: load-shape rate profiles and replayed (time-scaled, tiled, thinned) traces."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_scenario

from carbonsim import ArrivalConfig, ConfigError, build
from carbonsim.core.arrivals import arrival_times, draw_requests, hourly_multipliers
from carbonsim.data.workloads import load_llm_arrivals, load_load_shape
from carbonsim.inputs import arrival_inputs


def _cfg(**kw) -> ArrivalConfig:
    return build(ArrivalConfig, kw, "arrivals")


def test_load_shape_multipliers_are_the_shape_over_its_window_mean():
    shape = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    m = hourly_multipliers(_cfg(load_shape="alibaba_1", load_shape_offset_h=2), 3, shape)
    np.testing.assert_allclose(m, np.array([3.0, 4.0, 5.0]) / 4.0)


def test_load_shape_too_short_for_the_run_is_an_error():
    with pytest.raises(ValueError, match=r"alibaba_1 has 6 hours, the run needs hours 4\.\.8"):
        hourly_multipliers(_cfg(load_shape="alibaba_1", load_shape_offset_h=4), 5, np.ones(6))


def test_poisson_follows_a_real_load_shape():
    shape = load_load_shape("alibaba_1")
    cfg = _cfg(rate_per_s=2.0, load_shape="alibaba_1", load_shape_offset_h=24)
    times = arrival_times(cfg, 168.0, np.random.default_rng(1), load_shape=shape)
    counts = np.bincount((times // 3600).astype(int), minlength=168)
    expected = 2.0 * 3600 * shape[24:192] / shape[24:192].mean()
    assert counts.sum() == pytest.approx(2.0 * 3600 * 168, rel=0.01)
    # Hour by hour the counts track the shape (Poisson noise around 7,200 x multiplier).
    assert np.corrcoef(counts, expected)[0, 1] > 0.95


def test_replay_has_the_configured_rate_and_keeps_the_trace_burstiness():
    trace = load_llm_arrivals("conv")
    cfg = _cfg(kind="replay", trace="azure_llm_conv", rate_per_s=20.0)
    times = arrival_times(cfg, 2.0, np.random.default_rng(0), replay_s=trace)
    assert times.size == pytest.approx(20.0 * 7200, rel=0.02)
    assert (np.diff(times) >= 0).all()
    assert times.min() >= 0 and times.max() < 7200

    # Burstiness: the coefficient of variation of inter-arrival gaps is the trace's own (time scaling
    # does not change it), not the 1.0 of a Poisson process.
    def cv(x):
        gaps = np.diff(x)
        return gaps.std() / gaps.mean()

    assert cv(times) == pytest.approx(cv(trace), rel=0.05)


def test_replay_thinned_by_a_profile_gives_each_hour_its_rate():
    trace = load_llm_arrivals("code")
    profile = [1.0] * 12 + [0.25] * 12
    cfg = _cfg(kind="replay", trace="azure_llm_code", rate_per_s=10.0, hourly_profile=profile)
    times = arrival_times(cfg, 24.0, np.random.default_rng(0), replay_s=trace)
    counts = np.bincount((times // 3600).astype(int), minlength=24)
    assert counts[:12].mean() == pytest.approx(36_000, rel=0.03)
    assert counts[12:].mean() == pytest.approx(9_000, rel=0.05)


def test_replay_scenario_draws_requests_from_the_loaded_trace():
    scenario = make_scenario(arrivals={"kind": "replay", "trace": "azure_llm_code", "rate_per_s": 5.0})
    shape, replay = arrival_inputs(scenario)
    assert shape is None and replay is not None
    req = draw_requests(scenario, 0, 1.0, shape, replay)
    assert len(req) == pytest.approx(18_000, rel=0.03)
    again = draw_requests(scenario, 0, 1.0, shape, replay)
    np.testing.assert_array_equal(req.arrival_s, again.arrival_s)


@pytest.mark.parametrize(
    ("arrivals", "message"),
    [
        ({"kind": "replay"}, r"arrivals\.trace: expected one of azure_llm_code, azure_llm_conv"),
        ({"kind": "poisson", "trace": "azure_llm_code"}, r"arrivals\.trace: expected empty unless kind is replay"),
        ({"load_shape": "borg"}, r"arrivals\.load_shape: expected one of alibaba_1"),
        ({"load_shape": "google_1", "hourly_profile": [1.0] * 24}, r"arrivals\.hourly_profile: expected empty"),
    ],
)
def test_bad_arrival_settings_are_rejected(arrivals, message):
    with pytest.raises(ConfigError, match=message):
        build(ArrivalConfig, arrivals, "arrivals")


def test_hourly_profile_follows_the_utc_hour_of_the_start():
    from carbonsim.config import ArrivalConfig

    profile = tuple(float(h) for h in range(24))
    cfg = ArrivalConfig(kind="fixed_per_hour", rate_per_s=1.0, hourly_profile=profile)
    np.testing.assert_array_equal(hourly_multipliers(cfg, 3, first_hour_of_day=22), [22.0, 23.0, 0.0])


def test_runs_starting_after_midnight_use_the_profile_of_their_utc_hours():
    from helpers import make_scenario

    from carbonsim.core.arrivals import draw_requests

    profile = [0.0] * 24
    profile[6] = 1.0  # only 06:00-07:00 UTC has traffic
    common = {"arrivals": {"kind": "fixed_per_hour", "rate_per_s": 0.01, "hourly_profile": profile}}
    at_six = make_scenario(start_utc="2023-06-05T06:00:00Z", **common)
    at_midnight = make_scenario(start_utc="2023-06-05T00:00:00Z", **common)
    six = draw_requests(at_six, 0, 2.0).arrival_s
    midnight = draw_requests(at_midnight, 0, 8.0).arrival_s
    assert six.size == 36 and (six < 3600.0).all()
    assert midnight.size == 36 and ((midnight >= 6 * 3600.0) & (midnight < 7 * 3600.0)).all()
