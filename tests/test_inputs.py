"""Measured carbon and price signals cut to a run's window (carbonsim.inputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_scenario, region

from carbonsim import ConfigError
from carbonsim.data.carbon import load_electricitymaps
from carbonsim.data.errors import DataError
from carbonsim.data.prices import load_price
from carbonsim.inputs import carbon_signal, hourly_window, price_signal


def _series(n: int, start: str = "2023-01-01T00:00:00Z") -> pd.Series:
    index = pd.date_range(start, periods=n, freq="h", tz="UTC")
    return pd.Series(np.arange(n, dtype=float), index=index)


def test_window_starts_at_the_requested_hour():
    s = _series(48)
    out = hourly_window(s, pd.Timestamp("2023-01-01T05:00:00Z"), 10, wrap=False, what="x")
    assert out.tolist() == list(range(5, 15))


def test_window_past_the_end_fails_naming_the_end_unless_wrapping():
    s = _series(24)
    with pytest.raises(DataError, match=r"x: .*2023-01-01T23:00:00\+00:00.*wrap"):
        hourly_window(s, pd.Timestamp("2023-01-01T20:00:00Z"), 6, wrap=False, what="x")
    out = hourly_window(s, pd.Timestamp("2023-01-01T20:00:00Z"), 6, wrap=True, what="x")
    assert out.tolist() == [20, 21, 22, 23, 0, 1]


def test_window_start_outside_the_data_is_an_error():
    s = _series(24)
    with pytest.raises(DataError, match=r"start 2022-12-31T23:00:00\+00:00 is not an hour of the data"):
        hourly_window(s, pd.Timestamp("2022-12-31T23:00:00Z"), 2, wrap=False, what="x")


def test_window_matches_series_stamped_within_the_hour():
    s = _series(5, start="2023-01-01T00:30:00Z")
    out = hourly_window(s, pd.Timestamp("2023-01-01T02:00:00Z"), 2, wrap=False, what="x")
    assert out.tolist() == [2.0, 3.0]


def _measured(metric: str = "direct"):
    regions = [
        region(name="virginia", zone="US-MIDA-PJM", price_market="US-MIDA-PJM"),
        region(name="ontario", zone="CA-ON", price_market="CA-ON"),
    ]
    origins = [{"name": "o0", "share": 1.0, "rtt_ms": {"virginia": 10.0, "ontario": 20.0}}]
    return make_scenario(
        regions=regions,
        origins=origins,
        carbon={"kind": "electricitymaps", "metric": metric},
        prices={"kind": "market"},
        start_utc="2023-06-05T00:00:00Z",
    )


def test_carbon_signal_is_the_zone_series_from_the_start():
    scenario = _measured()
    signal = carbon_signal(scenario, seed=0, hours=48)
    start = pd.Timestamp("2023-06-05T00:00:00Z")
    for row, zone in enumerate(["US-MIDA-PJM", "CA-ON"]):
        expected = load_electricitymaps(zone, kind="direct").loc[start:].iloc[:48].to_numpy()
        np.testing.assert_array_equal(signal.values[row], expected)
    # Ontario's grid is far cleaner than PJM's.
    assert signal.values[1].mean() < 0.5 * signal.values[0].mean()


def test_life_cycle_metric_reads_the_lca_column():
    lca = carbon_signal(_measured("lca"), seed=0, hours=24)
    direct = carbon_signal(_measured("direct"), seed=0, hours=24)
    # Life-cycle intensity adds upstream emissions to the operational ones.
    assert (lca.values >= direct.values).all()
    assert (lca.values > direct.values).any()


def test_price_signal_is_the_market_price_in_usd_per_kwh():
    scenario = _measured()
    signal = price_signal(scenario, hours=24)
    start = pd.Timestamp("2023-06-05T00:00:00Z")
    expected = load_price("CA-ON").loc[start:].iloc[:24].to_numpy() / 1000.0
    np.testing.assert_allclose(signal.values[1], expected, rtol=1e-12)


def test_run_past_the_data_fails_unless_wrap():
    scenario = make_scenario(
        regions=[region(name="virginia", zone="US-MIDA-PJM")],
        origins=[{"name": "o0", "share": 1.0, "rtt_ms": {"virginia": 10.0}}],
        carbon={"kind": "electricitymaps"},
        start_utc="2024-12-31T00:00:00Z",
    )
    with pytest.raises(DataError, match=r"US-MIDA-PJM.*2024-12-31T23:00:00\+00:00"):
        carbon_signal(scenario, seed=0, hours=48)


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("", "start_utc: expected an ISO 8601"),
        ("2023-06-05", "start_utc: expected a time in UTC"),
        ("2023-06-05T00:30:00Z", "start_utc: expected a whole hour"),
        ("2023-06-05T00:00:00+02:00", "start_utc: expected a time in UTC"),
    ],
)
def test_start_utc_is_validated_for_measured_signals(start, message):
    with pytest.raises(ConfigError, match=message):
        make_scenario(carbon={"kind": "electricitymaps"}, start_utc=start)


def test_market_prices_need_a_price_market_per_region():
    with pytest.raises(ConfigError, match=r"regions\[0\]\.price_market"):
        make_scenario(prices={"kind": "market"}, start_utc="2023-06-05T00:00:00Z")
