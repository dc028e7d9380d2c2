"""Electricity price loader on the real files and on corrupted copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_data_paths import assert_message, corrupt, set_cell, swap

from carbonsim.data import DataError, available_markets, load_price, require_span
from carbonsim.data.prices import price_path

MARKETS = [
    "AT", "AU-NSW", "AU-VIC", "BE", "BR-SP", "CA-ON", "CH", "CL-SIC", "DE-LU", "ES", "FR",
    "IN-WE", "JP-TK", "KR", "NL", "PT", "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA",
]  # fmt: skip
UTC = "UTC"
PRICE = 2  # price column


@pytest.fixture(scope="module")
def prices() -> dict[str, pd.Series]:
    return {market: load_price(market) for market in MARKETS}


def test_available_markets():
    assert available_markets() == MARKETS


def test_prices_span_five_years_hourly(prices):
    for market, s in prices.items():
        phase = pd.Timedelta(minutes=30 if market == "IN-WE" else 0)
        assert s.name == market
        assert len(s) == 43_848
        assert s.index[0] == pd.Timestamp("2020-01-01 00:00", tz=UTC) + phase
        assert s.index[-1] == pd.Timestamp("2024-12-31 23:00", tz=UTC) + phase
        assert (np.diff(s.index.asi8) == 3_600_000_000_000).all()
        assert s.dtype == np.float64
        require_span(s, "2021-01-01T00:00Z", "2024-12-31T00:00Z", market)


def test_price_known_values(prices):
    assert prices["AT"].iloc[0] == 43.364233600000006
    assert prices["DE-LU"].iloc[-1] == 5.161895599999985
    assert prices["DE-LU"].min() == -484.39918  # negative prices are real and kept
    assert prices["DE-LU"].idxmin() == pd.Timestamp("2023-07-02 13:00", tz=UTC)
    assert prices["IN-WE"][pd.Timestamp("2020-01-01 00:30", tz=UTC)] == 29.800628
    assert prices["AU-NSW"].max() == 15636.715416666666  # above 10,000: the NEM cap is in the thousands
    assert prices["US-TEX-ERCO"].idxmax() == pd.Timestamp("2021-02-17 07:00", tz=UTC)  # Winter Storm Uri


def test_in_we_floor_to_hour_is_explicit(prices):
    floored = load_price("IN-WE", floor_to_hour=True)
    assert floored.index[0] == pd.Timestamp("2020-01-01 00:00", tz=UTC)
    np.testing.assert_array_equal(floored.to_numpy(), prices["IN-WE"].to_numpy())
    assert floored.index.name == "time_utc"
    assert load_price("FR", floor_to_hour=True).equals(prices["FR"])


def test_unknown_market():
    with pytest.raises(DataError, match=r"no price file for market 'GB'; available markets: \['AT'"):
        load_price("GB")


SRC = price_path("DE-LU")


def test_price_naive_timestamp(tmp_path):
    path = corrupt(SRC, tmp_path, lambda lines: set_cell(lines, 5, 0, "2020-01-01 04:00:00"))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, str(path), "row 5 (line 6)", "naive timestamp '2020-01-01 04:00:00'", "'Datetime (UTC)'")


def test_price_nan_cell(tmp_path):
    path = corrupt(SRC, tmp_path, lambda lines: set_cell(lines, 30, PRICE, ""))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, str(path), "row 30 (line 31), 2020-01-02T05:00:00+00:00: empty cell (NaN)")


def test_price_absurd_magnitude(tmp_path):
    path = corrupt(SRC, tmp_path, lambda lines: set_cell(lines, 2, PRICE, "-40492.3"))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, "row 2 (line 3), 2020-01-01T01:00:00+00:00", "value -40492.3", "[-1000, 20000] USD/MWh")


def test_price_not_a_number(tmp_path):
    path = corrupt(SRC, tmp_path, lambda lines: set_cell(lines, 11, PRICE, "n/a?"))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, "row 11 (line 12)", "'n/a?' in column 'Price (USD/MWh)' is not a number")


def test_price_gap_duplicate_and_order(tmp_path):
    path = corrupt(SRC, tmp_path, lambda lines: [lines.pop(50) for _ in range(3)])
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, "first missing timestamp 2020-01-03T01:00:00+00:00", "3 timestamp(s) missing in total")
    path = corrupt(SRC, tmp_path, lambda lines: lines.__setitem__(8, lines[7]))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, "duplicated timestamp 2020-01-01T06:00:00+00:00 at rows 7, 8 (lines 8, 9)")
    path = corrupt(SRC, tmp_path, lambda lines: swap(lines, 100, 300))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, "not strictly increasing: row 101 (line 102) has 2020-01-05T04:00:00+00:00 after row 100")


def test_price_wrong_header(tmp_path):
    path = corrupt(SRC, tmp_path, lambda lines: lines.__setitem__(0, "Datetime (UTC),Datetime (Local),Price (EUR/MWh)"))
    with pytest.raises(DataError) as exc:
        load_price("DE-LU", path=path)
    assert_message(exc, str(path), "line 1: unexpected header", "'Price (EUR/MWh)'", "missing ['Price (USD/MWh)']")


def test_half_past_stamps_only_where_expected(tmp_path):
    # DE-LU shifted to hh:30 is off its on-the-hour grid; IN-WE moved onto the hour is off its hh:30 grid.
    def shift(lines):
        for r in range(1, len(lines)):
            set_cell(lines, r, 0, lines[r].split(",")[0].replace(":00:00+", ":30:00+"))

    path = corrupt(SRC, tmp_path, shift, rows=10)
    with pytest.raises(DataError, match=r"row 1 \(line 2\), 2020-01-01T00:30:00\+00:00: timestamp off the regular"):
        load_price("DE-LU", path=path)
    path = corrupt(price_path("IN-WE"), tmp_path, lambda lines: set_cell(lines, 3, 0, "2020-01-01 02:00:00+00:00"))
    with pytest.raises(DataError, match=r"row 3 \(line 4\), 2020-01-01T02:00:00\+00:00: .*phase 0 days 00:30:00"):
        load_price("IN-WE", path=path)
