"""Forecasters: what each predicts, that only the oracles read the future, and how they reach policies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_scenario, origin, region, run_trace

from carbonsim import ConfigError
from carbonsim.core.forecast import FORECASTERS, MAX_HORIZON_H, make_forecaster
from carbonsim.data.carbon import load_electricitymaps
from carbonsim.data.errors import DataError
from carbonsim.inputs import carbon_signal, price_signal

NON_ORACLES = ("persistence", "seasonal_naive_24", "seasonal_naive_168", "learned")


def _make(kind: str, values: np.ndarray, history: np.ndarray, **kw):
    if kind.startswith("seasonal_naive_"):
        kw["period_h"] = int(kind.rsplit("_", 1)[1])
        kind = "seasonal_naive"
    return make_forecaster(kind, values, history, "test signal", non_negative=False, **kw)


def _series(rng: np.random.Generator, regions: int, hours: int) -> np.ndarray:
    """A daily cycle with persistent (AR(1)) deviations, like a grid's intensity."""
    hod = np.arange(hours) % 24
    cycle = 300 + 80 * np.sin(2 * np.pi * hod / 24)
    dev = np.zeros((regions, hours))
    for t in range(1, hours):
        dev[:, t] = 0.8 * dev[:, t - 1] + rng.normal(0, 10, regions)
    return cycle[None, :] + dev


def test_perfect_returns_the_future_truncated_at_the_end_of_the_run():
    values = np.array([[1.0, 2.0, 3.0, 4.0]])
    f = make_forecaster("perfect", values, np.zeros((1, 0)), "x", non_negative=True)
    np.testing.assert_array_equal(f.forecast(0, 3700.0, 5), [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(f.forecast(0, 0.0, 2), [1.0, 2.0])


def test_persistence_repeats_the_current_hour():
    values = np.array([[5.0, 7.0, 9.0, 11.0]])
    f = make_forecaster("persistence", values, np.zeros((1, 0)), "x", non_negative=True)
    np.testing.assert_array_equal(f.forecast(0, 3600.0 * 1.5, 3), [7.0, 7.0, 7.0])


@pytest.mark.parametrize("period", [24, 168])
def test_seasonal_naive_uses_the_latest_hour_at_the_same_phase(period):
    # Values equal their own absolute hour index (history hours negative), so a forecast shows which hour it
    # copied: lead k from hour h copies h + k - period x ceil(k / period).
    history = np.arange(-period, 0, dtype=float)[None, :]
    values = np.arange(0, 100, dtype=float)[None, :]
    f = make_forecaster("seasonal_naive", values, history, "x", non_negative=False, period_h=period)
    h = 10
    got = f.forecast(0, h * 3600.0, MAX_HORIZON_H)
    k = np.arange(MAX_HORIZON_H)
    expected = np.where(k == 0, h, h + k - period * np.ceil(k / period))
    np.testing.assert_array_equal(got, expected)
    assert (got <= h).all()


def test_noisy_oracle_is_exact_now_reproducible_and_independent_of_who_asks_when():
    rng = np.random.default_rng(1)
    values = _series(rng, 3, 200)
    a = make_forecaster("noisy_oracle", values, np.zeros((3, 0)), "x", non_negative=True, mape_24h=0.1, seed=4)
    b = make_forecaster("noisy_oracle", values, np.zeros((3, 0)), "x", non_negative=True, mape_24h=0.1, seed=4)
    c = make_forecaster("noisy_oracle", values, np.zeros((3, 0)), "x", non_negative=True, mape_24h=0.1, seed=5)
    late_first = b.forecast(2, 50 * 3600.0, 48)
    b.forecast(0, 10 * 3600.0, 48)
    np.testing.assert_array_equal(a.forecast(2, 50 * 3600.0, 48), late_first)
    assert a.forecast(1, 7 * 3600.0, 1)[0] == values[1, 7]
    assert not np.array_equal(a.forecast(2, 50 * 3600.0, 48), c.forecast(2, 50 * 3600.0, 48))


def test_noisy_oracle_error_matches_the_configured_mape_and_grows_with_the_lead():
    hours, regions, mape = 2000, 5, 0.1
    values = np.full((regions, hours + MAX_HORIZON_H), 400.0)
    f = make_forecaster("noisy_oracle", values, np.zeros((regions, 0)), "x", non_negative=True, mape_24h=mape, seed=0)
    issued = np.stack([f.forecast_all(h) for h in range(hours)])  # (hours, regions, lead)
    ape = np.abs(issued / 400.0 - 1.0)
    by_lead = ape.mean(axis=(0, 1))
    # The log error at lead 24 is N(0, s^2) with s = mape sqrt(pi / 2); its absolute relative error has mean
    # close to mape (exactly mape in the small-error limit). 10,000 samples: the standard error is ~0.8 %.
    assert by_lead[24] == pytest.approx(mape, rel=0.05)
    assert by_lead[6] == pytest.approx(mape * math.sqrt(6 / 24), rel=0.05)
    assert by_lead[0] == 0.0
    assert np.all(np.diff(by_lead[1:]) > -0.01 * mape)


def test_learned_forecaster_is_exact_on_a_periodic_signal_and_tracks_deviations():
    hod = np.arange(30 * 24) % 24
    periodic = (100 + 10 * hod).astype(float)[None, :]
    f = make_forecaster("learned", periodic[:, 28 * 24 - 1 :], periodic[:, : 28 * 24 - 1], "x", non_negative=True)
    np.testing.assert_allclose(f.forecast(0, 5 * 3600.0, 48), periodic[0, 28 * 24 - 1 + 5 :][:48])

    rng = np.random.default_rng(0)
    series = _series(rng, 4, 60 * 24)
    split = 28 * 24 - 1
    learned = make_forecaster("learned", series[:, split:], series[:, :split], "x", non_negative=False)
    persist = make_forecaster("persistence", series[:, split:], series[:, :split], "x", non_negative=False)
    errors = {"learned": [], "persistence": []}
    for h in range(0, 24 * 28, 7):
        truth = series[:, split + h : split + h + 24]
        errors["learned"].append(np.abs(learned.forecast_all(h)[:, :24] - truth).mean())
        errors["persistence"].append(np.abs(persist.forecast_all(h)[:, :24] - truth).mean())
    # The daily cycle (amplitude 80) dominates: a model that learned it beats "same as now" by far.
    assert np.mean(errors["learned"]) < 0.5 * np.mean(errors["persistence"])


@pytest.mark.parametrize("kind", NON_ORACLES)
def test_non_oracle_forecasters_never_read_data_after_the_decision_time(kind):
    # For every issue hour h, the hours after h are replaced by NaN (which would spread into any result that
    # read them) or by unrelated random values; the forecast must be exactly the one made on the true data.
    rng = np.random.default_rng(7)
    history = _series(rng, 3, 28 * 24)
    values = _series(rng, 3, 120)
    reference = _make(kind, values, history)
    for h in range(0, 120, 5):
        for poison in (np.nan, rng.uniform(-1e6, 1e6, size=values[:, h + 1 :].shape)):
            future_unknown = values.copy()
            future_unknown[:, h + 1 :] = poison
            got = _make(kind, future_unknown, history).forecast_all(h)
            assert np.isfinite(got).all()
            np.testing.assert_array_equal(got, reference.forecast_all(h))


@pytest.mark.parametrize("kind", ["perfect", "noisy_oracle"])
def test_oracles_do_read_the_future(kind):
    # The counterpart of the test above: the same poisoning changes an oracle's forecast (so the test above
    # would catch a forecaster that looks ahead).
    values = _series(np.random.default_rng(0), 2, 100)
    future_unknown = values.copy()
    future_unknown[:, 11:] = 0.0
    a = _make(kind, values, np.zeros((2, 0))).forecast_all(10)
    b = _make(kind, future_unknown, np.zeros((2, 0))).forecast_all(10)
    assert not np.array_equal(a, b)


def test_forecaster_without_enough_history_and_bad_horizons_are_errors():
    values = np.ones((1, 10))
    with pytest.raises(ValueError, match=r"seasonal_naive forecaster needs 168 h of history .* got 24 h"):
        make_forecaster("seasonal_naive", values, np.ones((1, 24)), "x", non_negative=True, period_h=168)
    f = make_forecaster("perfect", values, np.zeros((1, 0)), "x", non_negative=True)
    with pytest.raises(ValueError, match=r"horizon_h must be in 1..48 hours, got 49"):
        f.forecast(0, 0.0, 49)
    with pytest.raises(ValueError, match="unknown forecaster 'crystal_ball'"):
        make_forecaster("crystal_ball", values, np.zeros((1, 0)), "x", non_negative=True)
    assert set(FORECASTERS) == {"perfect", "persistence", "seasonal_naive", "noisy_oracle", "learned"}


def test_forecast_config_is_validated():
    with pytest.raises(ConfigError, match=r"forecast\.period_h: expected 24 .* or 168"):
        make_scenario(forecast={"kind": "seasonal_naive", "period_h": 12})
    with pytest.raises(ConfigError, match=r"forecast\.kind: expected one of perfect"):
        make_scenario(forecast={"kind": "prophet"})


def _measured(kind: str, start: str = "2023-06-05T00:00:00Z"):
    return make_scenario(
        regions=[region(name="ontario", zone="CA-ON", price_market="CA-ON")],
        origins=[origin(rtt_ms={"ontario": 10.0})],
        carbon={"kind": "electricitymaps"},
        prices={"kind": "market"},
        start_utc=start,
        forecast={"kind": kind},
    )


def test_measured_history_is_the_data_before_the_start():
    scenario = _measured("learned")
    signal = carbon_signal(scenario, seed=0, hours=30)
    series = load_electricitymaps("CA-ON")
    start = pd.Timestamp("2023-06-05T00:00:00Z")
    expected = series[(series.index >= start - pd.Timedelta(hours=28 * 24 - 1)) & (series.index < start)]
    assert signal.history.shape == (1, 28 * 24 - 1)
    np.testing.assert_array_equal(signal.history[0], expected.to_numpy())
    assert price_signal(scenario, hours=30).history.shape == (1, 28 * 24 - 1)


def test_learned_forecaster_needs_data_before_the_start():
    first = load_electricitymaps("CA-ON").index[0]
    scenario = _measured("learned", start=(first + pd.Timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with pytest.raises(DataError, match=r"learned forecaster learns from the 671 h before start_utc.*data begin"):
        carbon_signal(scenario, seed=0, hours=30)


class _Forecasting:
    """Routes every request to region 0 and records the forecasts it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, np.ndarray, np.ndarray]] = []
        self.plans: list[np.ndarray] = []

    def reset(self, context) -> None:
        pass

    def plan(self, view) -> None:
        self.plans.append(view.forecast_gco2_per_kwh(1, 3))

    def decide(self, view) -> int:
        self.seen.append((view.now_s, view.forecast_gco2_per_kwh(1, 3), view.forecast_price_usd_per_kwh(0, 2)))
        return 0


def test_policies_see_the_scenarios_forecasts():
    scenario = make_scenario(
        regions=[region("a", "ZA", price=0.1), region("b", "ZB", price=0.3)],
        origins=[origin(rtt_ms={"a": 0.0, "b": 0.0})],
        forecast={"kind": "persistence"},
    )
    policy = _Forecasting()
    carbon = [[100.0, 300.0, 300.0, 300.0], [200.0, 50.0, 60.0, 70.0]]
    run_trace(scenario, [10.0, 3700.0], policy=policy, carbon=carbon, horizon_s=7200.0, max_drain_s=3600.0)
    (_, c0, p0), (_, c1, _) = policy.seen
    np.testing.assert_array_equal(c0, [200.0, 200.0, 200.0])
    np.testing.assert_array_equal(c1, [50.0, 50.0, 50.0])
    np.testing.assert_array_equal(p0, [0.1, 0.1])
    np.testing.assert_array_equal(policy.plans[0], [200.0, 200.0, 200.0])
