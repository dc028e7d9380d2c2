"""Shared time-series validation, require_span and fill_gaps, on small in-memory columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbonsim.data import DataError, fill_gaps, require_span
from carbonsim.data.timeseries import (
    CARBON_INTENSITY,
    HOUR,
    PRICE,
    check_timeline,
    check_values,
    parse_utc,
    validate_series,
)

SRC = "file.csv"


def hours(*stamps: str) -> pd.Series:
    return pd.Series(list(stamps), dtype="str")


def series(values, start="2022-01-01T00:00Z", step=HOUR, name="Z"):
    index = pd.date_range(start, periods=len(values), freq=step, name="time_utc")
    return pd.Series(np.asarray(values, dtype=float), index=index, name=name)


def test_parse_utc_accepts_explicit_utc_and_keeps_sub_ms_resolution():
    index = parse_utc(
        hours("2022-01-01 00:00:00+00:00", "2022-01-01T01:00:00Z", "2022-01-01 02:00:00.1234567+0000"),
        source=SRC,
        column="t",
    )
    assert str(index.dtype) == "datetime64[ns, UTC]"
    assert index[2] == pd.Timestamp("2022-01-01 02:00:00.1234567", tz="UTC")


@pytest.mark.parametrize(
    ("stamp", "problem"),
    [
        ("2022-01-01 01:00:00", "naive timestamp '2022-01-01 01:00:00' (no UTC offset)"),
        ("2022-01-01 01:00:00+01:00", "is not in UTC"),
        ("01/01/2022 01:00", "cannot parse timestamp"),
        ("2022-02-30 01:00:00+00:00", "impossible timestamp"),
        (None, "empty timestamp"),
    ],
)
def test_parse_utc_rejects_with_row_and_line(stamp, problem):
    raw = pd.Series(["2022-01-01 00:00:00+00:00", stamp], dtype="str")
    with pytest.raises(DataError, match=r"file.csv: row 2 \(line 3\)") as exc:
        parse_utc(raw, source=SRC, column="t")
    assert problem in str(exc.value)


def test_parse_utc_reads_naive_as_utc_only_when_told():
    index = parse_utc(hours("2022-01-01 00:00:00", "2022-01-01 01:00:00+00:00"), source=SRC, column="t", naive="utc")
    assert list(index) == [pd.Timestamp("2022-01-01 00:00", tz="UTC"), pd.Timestamp("2022-01-01 01:00", tz="UTC")]
    with pytest.raises(DataError, match=r"row 1 .*not in UTC"):
        parse_utc(hours("2022-01-01 00:00:00-05:00"), source=SRC, column="t", naive="utc")


def test_row_numbers_of_a_filtered_file_are_reported():
    raw = hours("2022-01-01 00:00:00+00:00", "2022-01-01 01:00:00")
    with pytest.raises(DataError, match=r"row 41 \(line 42\)"):
        parse_utc(raw, source=SRC, column="t", rows=np.array([40, 41]))


def timeline(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps), tz="UTC")


def test_timeline_duplicate_names_the_timestamp_and_all_its_rows():
    index = timeline("2022-01-01 00:00", "2022-01-01 01:00", "2022-01-01 01:00", "2022-01-01 02:00")
    with pytest.raises(DataError) as exc:
        check_timeline(index, source=SRC, step=HOUR)
    assert str(exc.value) == (
        "file.csv: duplicated timestamp 2022-01-01T01:00:00+00:00 at rows 2, 3 (lines 3, 4); "
        "expected each timestamp once"
    )


def test_timeline_backward_step_names_both_rows():
    index = timeline("2022-01-01 00:00", "2022-01-01 02:00", "2022-01-01 01:00")
    with pytest.raises(DataError) as exc:
        check_timeline(index, source=SRC, step=HOUR)
    assert str(exc.value) == (
        "file.csv: timestamps not strictly increasing: row 3 (line 4) has 2022-01-01T01:00:00+00:00 "
        "after row 2 (line 3) with 2022-01-01T02:00:00+00:00"
    )


def test_timeline_gap_names_first_missing_timestamp_and_count():
    index = timeline("2022-01-01 00:00", "2022-01-01 03:00", "2022-01-01 04:00", "2022-01-01 06:00")
    with pytest.raises(DataError) as exc:
        check_timeline(index, source=SRC, step=HOUR)
    message = str(exc.value)
    assert "first missing timestamp 2022-01-01T01:00:00+00:00" in message
    assert "row 1 (line 2) at 2022-01-01T00:00:00+00:00 and row 2 (line 3) at 2022-01-01T03:00:00+00:00" in message
    assert "3 timestamp(s) missing in total in 2 gap(s)" in message


def test_timeline_phase_on_the_hour_and_at_half_past():
    half_past = timeline("2022-01-01 00:30", "2022-01-01 01:30")
    check_timeline(half_past, source=SRC, step=HOUR, phase=pd.Timedelta(minutes=30))
    check_timeline(half_past, source=SRC, step=HOUR, phase=None)
    with pytest.raises(DataError, match=r"row 1 \(line 2\), 2022-01-01T00:30:00\+00:00: timestamp off the"):
        check_timeline(half_past, source=SRC, step=HOUR)
    mixed = timeline("2022-01-01 00:00", "2022-01-01 00:30", "2022-01-01 02:00")
    with pytest.raises(DataError, match=r"row 2 .*off the regular"):
        check_timeline(mixed, source=SRC, step=HOUR, phase=None)


def test_check_values_reports_each_problem_with_row_and_timestamp():
    index = timeline("2022-01-01 00:00", "2022-01-01 01:00")
    cases = [
        (pd.Series([1.0, np.nan]), "row 2 (line 3), 2022-01-01T01:00:00+00:00: empty cell (NaN) in column 'v'"),
        (pd.Series([1.0, -5.0]), "negative value -5 in column 'v'; expected a number in [0, 2000] gCO2eq/kWh"),
        (pd.Series([1.0, 2500.0]), "value 2500 in column 'v' outside the plausible range [0, 2000] gCO2eq/kWh"),
        (pd.Series(["1.0", "abc"], dtype="str"), "'abc' in column 'v' is not a number"),
        (pd.Series([1.0, np.inf]), "value inf in column 'v' outside"),
    ]
    for raw, problem in cases:
        with pytest.raises(DataError) as exc:
            check_values(raw, source=SRC, column="v", valid=CARBON_INTENSITY, index=index)
        assert problem in str(exc.value)
        assert str(exc.value).startswith("file.csv: row 2 (line 3), 2022-01-01T01:00:00+00:00")


def test_prices_may_be_negative_but_not_absurd():
    values = check_values(pd.Series([-500.0, 15000.0]), source=SRC, column="p", valid=PRICE)
    np.testing.assert_array_equal(values, [-500.0, 15000.0])
    with pytest.raises(DataError, match=r"value -5000 in column 'p' outside the plausible range \[-1000, 20000\]"):
        check_values(pd.Series([1.0, -5000.0]), source=SRC, column="p", valid=PRICE)


def test_nan_can_be_let_through_for_explicit_filling():
    values = check_values(pd.Series([1.0, np.nan]), source=SRC, column="v", valid=CARBON_INTENSITY, allow_nan=True)
    assert np.isnan(values[1])


def test_validate_series_builds_a_named_utc_series():
    s = validate_series(
        hours("2022-01-01 00:00:00+00:00", "2022-01-01 01:00:00+00:00"),
        pd.Series([100.0, 200.0]),
        source=SRC,
        time_column="t",
        value_column="v",
        valid=CARBON_INTENSITY,
        name="DE",
    )
    assert s.name == "DE"
    assert s.index.name == "time_utc"
    assert s.to_dict() == {
        pd.Timestamp("2022-01-01 00:00", tz="UTC"): 100.0,
        pd.Timestamp("2022-01-01 01:00", tz="UTC"): 200.0,
    }


def test_require_span_passes_on_a_covered_window_and_names_what_is_missing():
    s = series(range(48))  # 2022-01-01 00:00 .. 2022-01-02 23:00, covers [01-01, 01-03)
    require_span(s, "2022-01-01T00:00Z", "2022-01-03T00:00Z", "Z")
    require_span(s, pd.Timestamp("2022-01-01 05:00", tz="UTC"), "2022-01-01T06:00Z", "Z")
    with pytest.raises(DataError, match=r"missing from 2021-12-31T23:00:00\+00:00 to 2022-01-01T00:00:00\+00:00"):
        require_span(s, "2021-12-31T23:00Z", "2022-01-02T00:00Z", "Z")
    with pytest.raises(DataError, match=r"'Z' covers .*missing from 2022-01-03T00:00:00\+00:00 to 2022-01-03T01:00"):
        require_span(s, "2022-01-01T00:00Z", "2022-01-03T01:00Z", "Z")
    with pytest.raises(DataError, match=r"is empty"):
        require_span(s, "2022-01-02T00:00Z", "2022-01-01T00:00Z", "Z")
    with pytest.raises(DataError, match=r"has no time zone"):
        require_span(s, "2022-01-01 00:00", "2022-01-02 00:00", "Z")


def test_require_span_finds_holes_and_nan_inside_the_window():
    s = series(range(10))
    holed = s.drop(s.index[4])
    with pytest.raises(DataError, match=r"no value for \[2022-01-01T04:00:00\+00:00, 2022-01-01T05:00:00\+00:00\)"):
        require_span(holed, "2022-01-01T00:00Z", "2022-01-01T10:00Z", "Z", step=HOUR)
    require_span(holed, "2022-01-01T05:00Z", "2022-01-01T10:00Z", "Z", step=HOUR)  # the hole is outside
    with_nan = s.copy()
    with_nan.iloc[[3, 7]] = np.nan
    with pytest.raises(DataError, match=r"NaN at 2022-01-01T03:00:00\+00:00 \(2 NaN in total\)"):
        require_span(with_nan, "2022-01-01T00:00Z", "2022-01-01T10:00Z", "Z")


def test_require_span_of_a_half_past_series():
    s = series(range(24), start="2022-01-01T00:30Z")
    require_span(s, "2022-01-01T01:00Z", "2022-01-02T00:00Z", "IN-WE")
    with pytest.raises(DataError, match=r"missing from 2022-01-01T00:00:00\+00:00 to 2022-01-01T00:30:00"):
        require_span(s, "2022-01-01T00:00Z", "2022-01-02T00:00Z", "IN-WE")


def test_fill_gaps_linear_reports_inserted_and_nan_points():
    s = series([0.0, 10.0, np.nan, 30.0, 40.0, 50.0])
    s = s.drop(s.index[4])  # a missing timestamp besides the NaN
    filled, n = fill_gaps(s, "linear")
    assert n == 2
    np.testing.assert_allclose(filled.to_numpy(), [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    assert filled.name == "Z"
    assert filled.index.name == "time_utc"
    assert len(filled) == 6


def test_fill_gaps_ffill_and_nothing_to_fill():
    filled, n = fill_gaps(series([1.0, np.nan, np.nan, 4.0]), "ffill")
    assert n == 2
    np.testing.assert_array_equal(filled.to_numpy(), [1.0, 1.0, 1.0, 4.0])
    same, zero = fill_gaps(series([1.0, 2.0]))
    assert zero == 0
    pd.testing.assert_series_equal(same, series([1.0, 2.0]), check_freq=False)


def test_fill_gaps_refuses_what_it_cannot_fill():
    with pytest.raises(DataError, match=r"cannot fill 1 point\(s\) with 'linear', first at 2022-01-01T03:00:00"):
        fill_gaps(series([1.0, 2.0, 3.0, np.nan]), "linear")
    with pytest.raises(DataError, match=r"cannot fill 1 point\(s\) with 'ffill', first at 2022-01-01T00:00:00"):
        fill_gaps(series([np.nan, 2.0]), "ffill")
    with pytest.raises(DataError, match=r"unknown method 'cubic'"):
        fill_gaps(series([1.0, 2.0]), "cubic")  # type: ignore[arg-type]
    odd = pd.Series([1.0, 2.0, 3.0], index=timeline("2022-01-01 00:00", "2022-01-01 01:00", "2022-01-01 02:30"))
    with pytest.raises(DataError, match=r"off the 0 days 01:00:00 grid"):
        fill_gaps(odd, step=HOUR)
