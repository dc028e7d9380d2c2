"""Validation shared by the time-series loaders (hourly or finer, indexed in UTC).

A loader hands the raw timestamp and value columns of a file to :func:`validate_series`, which checks, in
this order, and raises :class:`~carbonsim.data.errors.DataError` at the first problem:

1. every timestamp parses and is in UTC (an explicit ``+00:00``/``Z``; naive timestamps are rejected unless
   the loader states that the file's timestamps are UTC by definition);
2. no timestamp appears twice (the message names the timestamp and all its rows);
3. timestamps strictly increase (the message names the first row that goes back in time);
4. every timestamp lies on the expected grid (e.g. on the hour, or at hh:30 for a market stamped there);
5. no step of the grid is missing (the message names the first missing timestamp and how many are missing);
6. every value is a number, not NaN, and within the plausible range of its unit.

Nothing is repaired. Filling gaps is a separate, explicit step (:func:`fill_gaps`) that says how many points
it filled; :func:`require_span` checks that a series covers the window a run needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim.data._io import at_row, at_rows
from carbonsim.data.errors import DataError
from carbonsim.limits import CARBON_INTENSITY, PRICE, ValueRange

HOUR = pd.Timedelta(hours=1)
"""Step of an hourly series."""

ON_THE_HOUR = pd.Timedelta(0)
"""Grid phase of series stamped at whole multiples of their step (on the hour for hourly series)."""

FillMethod = Literal["linear", "ffill"]
"""How :func:`fill_gaps` fills a missing point: linear interpolation in time, or the last valid value."""

NaivePolicy = Literal["reject", "utc"]
"""What to do with timestamps without a UTC offset: reject them, or read them as UTC (for files whose
timestamps are UTC by definition, e.g. a column named ``Datetime (UTC)``)."""

TimeLike = str | datetime | pd.Timestamp
"""A point in time given by a caller; it must carry a time zone."""

RowNumbers = npt.NDArray[np.int64]

# ISO 8601 date and time with optional seconds, fraction and UTC offset; the offset alone; a zero offset.
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?"
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
_UTC_OFFSET = r"(?:Z|\+00:?00)$"


def _rows(n: int, rows: RowNumbers | None) -> RowNumbers:
    if rows is None:
        return np.arange(1, n + 1, dtype=np.int64)
    if len(rows) != n:
        raise ValueError(f"rows has {len(rows)} entries for {n} values")
    return rows


def _where(source: str, row: int, timestamp: pd.Timestamp | None = None) -> str:
    place = f"{source}: {at_row(row)}"
    return place if timestamp is None else f"{place}, {timestamp.isoformat()}"


def parse_utc(
    raw: pd.Series,
    *,
    source: str,
    column: str,
    naive: NaivePolicy = "reject",
    rows: RowNumbers | None = None,
) -> pd.DatetimeIndex:
    """Parses a column of ISO 8601 timestamp strings into a UTC index.

    Args:
        raw: The column as read (strings, NaN for empty cells).
        source: File name for messages.
        column: Column name for messages.
        naive: ``"reject"``: every timestamp must carry a zero UTC offset (``+00:00`` or ``Z``).
            ``"utc"``: timestamps without an offset are read as UTC (an explicit zero offset is accepted too).
        rows: 1-based data row of each entry (default ``1..n``), for files whose rows were filtered.

    Returns:
        A ``datetime64[ns, UTC]`` index, one entry per input, in input order.

    Raises:
        DataError: at the first empty, malformed, naive (if rejected), non-UTC or impossible timestamp.
    """
    row_numbers = _rows(len(raw), rows)
    text = raw.astype("str").where(raw.notna())
    missing = text.isna().to_numpy()
    if missing.any():
        i = int(np.argmax(missing))
        raise DataError(f"{_where(source, int(row_numbers[i]))}: empty timestamp in column {column!r}")
    # Vectorised regex checks (pyarrow-backed strings) first; a row is located only when one fails.
    bad_format = ~text.str.fullmatch(_TIMESTAMP).to_numpy(dtype=bool)
    if bad_format.any():
        i = int(np.argmax(bad_format))
        raise DataError(
            f"{_where(source, int(row_numbers[i]))}: cannot parse timestamp {text.iloc[i]!r} in column {column!r};"
            " expected ISO 8601 such as 2021-01-01 00:00:00+00:00"
        )
    has_offset = text.str.contains(_OFFSET).to_numpy(dtype=bool)
    if naive == "reject" and not has_offset.all():
        i = int(np.argmax(~has_offset))
        raise DataError(
            f"{_where(source, int(row_numbers[i]))}: naive timestamp {text.iloc[i]!r} (no UTC offset) in column"
            f" {column!r}; expected an explicit UTC offset such as +00:00"
        )
    non_utc = has_offset & ~text.str.contains(_UTC_OFFSET).to_numpy(dtype=bool)
    if non_utc.any():
        i = int(np.argmax(non_utc))
        raise DataError(
            f"{_where(source, int(row_numbers[i]))}: timestamp {text.iloc[i]!r} in column {column!r} is not in"
            " UTC; expected offset +00:00"
        )
    # Offsets are zero or absent (absent means UTC here), so utc=True changes no instant.
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    invalid = parsed.isna().to_numpy()
    if invalid.any():
        i = int(np.argmax(invalid))
        raise DataError(
            f"{_where(source, int(row_numbers[i]))}: impossible timestamp {text.iloc[i]!r} in column {column!r};"
            " expected a valid calendar date and time"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns")


def check_timeline(
    index: pd.DatetimeIndex,
    *,
    source: str,
    step: pd.Timedelta,
    phase: pd.Timedelta | None = ON_THE_HOUR,
    rows: RowNumbers | None = None,
) -> None:
    """Checks that timestamps are unique, strictly increasing, on a regular grid and without gaps.

    Args:
        index: Parsed UTC timestamps in file order.
        source: File name for messages.
        step: Expected spacing, e.g. :data:`HOUR`.
        phase: Expected offset of the grid from whole multiples of ``step`` since the Unix epoch, e.g.
            0 for timestamps on the hour, 30 minutes for hh:30. ``None`` anchors the grid on the first
            timestamp instead.
        rows: 1-based data row of each timestamp (default ``1..n``).

    Raises:
        DataError: at the first duplicate, backward step, off-grid timestamp or gap.
    """
    n = len(index)
    if n == 0:
        raise DataError(f"{source}: no data rows; expected at least one")
    row_numbers = _rows(n, rows)
    duplicated = index.duplicated(keep=False)
    if duplicated.any():
        first = int(np.argmax(duplicated))
        stamp = index[first]
        same = [int(r) for r in row_numbers[np.flatnonzero(index == stamp)]]
        raise DataError(
            f"{source}: duplicated timestamp {stamp.isoformat()} at {at_rows(same)}; expected each timestamp once"
        )
    ns = index.as_unit("ns").asi8
    backwards = np.flatnonzero(np.diff(ns) <= 0)
    if backwards.size:
        i = int(backwards[0]) + 1
        raise DataError(
            f"{source}: timestamps not strictly increasing: {at_row(int(row_numbers[i]))} has"
            f" {index[i].isoformat()} after {at_row(int(row_numbers[i - 1]))} with {index[i - 1].isoformat()}"
        )
    step_ns = int(step.value)
    anchor = int(ns[0]) if phase is None else int(phase.value)
    off_grid = np.flatnonzero((ns - anchor) % step_ns != 0)
    if off_grid.size:
        i = int(off_grid[0])
        expected = "the grid of the first timestamp" if phase is None else f"phase {phase} within each {step}"
        raise DataError(
            f"{_where(source, int(row_numbers[i]), index[i])}: timestamp off the regular {step} grid;"
            f" expected {expected}"
        )
    gaps = np.flatnonzero(np.diff(ns) > step_ns)
    if gaps.size:
        i = int(gaps[0])
        missing = int(((np.diff(ns)[gaps] // step_ns) - 1).sum())
        raise DataError(
            f"{source}: gap in the {step} series: first missing timestamp {(index[i] + step).isoformat()}"
            f" (between {at_row(int(row_numbers[i]))} at {index[i].isoformat()} and"
            f" {at_row(int(row_numbers[i + 1]))} at {index[i + 1].isoformat()}); {missing} timestamp(s) missing"
            f" in total in {len(gaps)} gap(s)"
        )


def check_values(
    raw: pd.Series,
    *,
    source: str,
    column: str,
    valid: ValueRange,
    index: pd.DatetimeIndex | None = None,
    rows: RowNumbers | None = None,
    allow_nan: bool = False,
) -> npt.NDArray[np.float64]:
    """Checks that every value is a number within ``valid``.

    Args:
        raw: The column as read.
        source: File name for messages.
        column: Column name for messages.
        valid: Plausible range and unit.
        index: Timestamp of each value, named in messages when given.
        rows: 1-based data row of each value (default ``1..n``).
        allow_nan: Let empty cells through as NaN (for a caller that fills them explicitly afterwards).

    Returns:
        The values as float64 (NaN only where ``allow_nan`` let an empty cell through).

    Raises:
        DataError: at the first non-numeric cell, empty cell (unless allowed), infinite value, negative value
            where the range starts at 0, or value outside the range.
    """
    row_numbers = _rows(len(raw), rows)

    def where(i: int) -> str:
        return _where(source, int(row_numbers[i]), None if index is None else index[i])

    numeric = pd.to_numeric(raw, errors="coerce")
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    present = raw.notna().to_numpy()
    not_number = present & np.isnan(values)
    if not_number.any():
        i = int(np.argmax(not_number))
        raise DataError(f"{where(i)}: {raw.iloc[i]!r} in column {column!r} is not a number; expected {valid.unit}")
    if not allow_nan and not present.all():
        i = int(np.argmax(~present))
        raise DataError(f"{where(i)}: empty cell (NaN) in column {column!r}; expected a number in {valid.describe()}")
    with np.errstate(invalid="ignore"):
        negative = values < 0
        below = values < valid.low
        above = (values > valid.high) | np.isinf(values)  # infinity is never plausible, whatever the range
    if valid.low >= 0 and negative.any():
        i = int(np.argmax(negative))
        raise DataError(
            f"{where(i)}: negative value {values[i]:g} in column {column!r}; expected a number in {valid.describe()}"
        )
    outside = below | above
    if outside.any():
        i = int(np.argmax(outside))
        raise DataError(
            f"{where(i)}: value {values[i]:g} in column {column!r} outside the plausible range {valid.describe()}"
        )
    return values


def validate_series(
    times: pd.Series,
    values: pd.Series,
    *,
    source: str,
    time_column: str,
    value_column: str,
    valid: ValueRange,
    name: str,
    step: pd.Timedelta = HOUR,
    phase: pd.Timedelta | None = ON_THE_HOUR,
    naive: NaivePolicy = "reject",
    rows: RowNumbers | None = None,
    allow_nan: bool = False,
) -> pd.Series:
    """Builds a validated series from a file's timestamp and value columns (all checks of this module).

    Args:
        times: Raw timestamp column.
        values: Raw value column, same length.
        source: File name for messages.
        time_column: Name of the timestamp column, for messages.
        value_column: Name of the value column, for messages.
        valid: Plausible range and unit of the values.
        name: Name of the returned series (e.g. the zone).
        step: Expected spacing of the timestamps.
        phase: Expected grid offset (see :func:`check_timeline`).
        naive: Policy for timestamps without offset (see :func:`parse_utc`).
        rows: 1-based data row of each entry (default ``1..n``).
        allow_nan: Let empty value cells through as NaN.

    Returns:
        float64 series on a ``datetime64[ns, UTC]`` index named ``time_utc``.

    Raises:
        DataError: at the first problem found.
    """
    index = parse_utc(times, source=source, column=time_column, naive=naive, rows=rows)
    check_timeline(index, source=source, step=step, phase=phase, rows=rows)
    data = check_values(
        values, source=source, column=value_column, valid=valid, index=index, rows=rows, allow_nan=allow_nan
    )
    return pd.Series(data, index=index.rename("time_utc"), name=name)


def _utc(t: TimeLike, what: str) -> pd.Timestamp:
    stamp = pd.Timestamp(t)
    if stamp.tzinfo is None:
        raise DataError(f"{what} {t!r} has no time zone; give a UTC time such as '2021-01-01T00:00:00Z'")
    return stamp.tz_convert("UTC")


def _step_of(index: pd.DatetimeIndex, name: str) -> pd.Timedelta:
    if len(index) < 2:
        raise DataError(f"series {name!r} has {len(index)} point(s); the step cannot be inferred, pass step=")
    diffs = np.diff(index.as_unit("ns").asi8)
    if (diffs <= 0).any():
        i = int(np.argmax(diffs <= 0)) + 1
        raise DataError(f"series {name!r}: timestamps not strictly increasing at position {i} ({index[i].isoformat()})")
    return pd.Timedelta(int(diffs.min()), unit="ns")


def require_span(
    series: pd.Series,
    start: TimeLike,
    end: TimeLike,
    name: str,
    *,
    step: pd.Timedelta | None = None,
) -> None:
    """Raises unless ``series`` has a valid value for every step of ``[start, end)``.

    A point at ``t`` stands for the interval ``[t, t + step)``; the series covers ``[start, end)`` if those
    intervals tile it without holes and none of the points involved is NaN. A series stamped at hh:30
    therefore covers ``[00:30, ...)`` and not the first half hour of a day that starts at 00:00.

    Args:
        series: Series on a UTC DatetimeIndex.
        start: First instant required, with a time zone (e.g. ``"2022-01-01T00:00Z"``).
        end: End of the window, exclusive, with a time zone.
        name: Name of the series for messages (file or zone).
        step: Spacing of the series; inferred as the smallest spacing between its timestamps if omitted.

    Raises:
        DataError: if the window is empty or reversed, or the series starts too late, ends too early, has a
            hole in the window or a NaN value in it.
    """
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    if t1 <= t0:
        raise DataError(f"series {name!r}: required window [{t0.isoformat()}, {t1.isoformat()}) is empty")
    index = pd.DatetimeIndex(series.index)
    if len(index) == 0:
        raise DataError(f"series {name!r} is empty; required [{t0.isoformat()}, {t1.isoformat()})")
    if index.tz is None:
        raise DataError(f"series {name!r} has a naive index; expected UTC timestamps")
    dt = step if step is not None else _step_of(index, name)
    covered = f"covers [{index[0].isoformat()}, {(index[-1] + dt).isoformat()})"
    if index[0] > t0:
        raise DataError(
            f"series {name!r} {covered}; required [{t0.isoformat()}, {t1.isoformat()}): missing from"
            f" {t0.isoformat()} to {index[0].isoformat()}"
        )
    if index[-1] + dt < t1:
        raise DataError(
            f"series {name!r} {covered}; required [{t0.isoformat()}, {t1.isoformat()}): missing from"
            f" {(index[-1] + dt).isoformat()} to {t1.isoformat()}"
        )
    inside = (index > t0 - dt) & (index < t1)
    window = index[inside]
    diffs = np.diff(window.as_unit("ns").asi8)
    holes = np.flatnonzero(diffs != dt.value)
    if holes.size:
        i = int(holes[0])
        raise DataError(
            f"series {name!r}: no value for [{(window[i] + dt).isoformat()}, {window[i + 1].isoformat()}),"
            f" inside the required window [{t0.isoformat()}, {t1.isoformat()})"
        )
    values = series.to_numpy(dtype=np.float64)[inside]
    nan = np.isnan(values)
    if nan.any():
        raise DataError(
            f"series {name!r}: NaN at {window[int(np.argmax(nan))].isoformat()} ({int(nan.sum())} NaN in total)"
            f" inside the required window [{t0.isoformat()}, {t1.isoformat()})"
        )


def fill_gaps(
    series: pd.Series,
    method: FillMethod = "linear",
    *,
    step: pd.Timedelta | None = None,
) -> tuple[pd.Series, int]:
    """Fills missing timestamps and NaN values of a regular series, explicitly and countably.

    Never called by the loaders on their own; a caller asks for it (e.g. ``load_eia930(..., fill_gaps=)``).

    Args:
        series: Series on a strictly increasing DatetimeIndex.
        method: ``"linear"`` interpolates linearly in time between the valid neighbours; ``"ffill"`` repeats
            the last valid value.
        step: Spacing of the regular grid; inferred as the smallest spacing between timestamps if omitted.

    Returns:
        ``(filled, n_filled)``: a new series on the complete grid from the first to the last timestamp, and
        how many points were filled (inserted timestamps plus NaN values replaced).

    Raises:
        DataError: if a timestamp is off the grid, or a point cannot be filled (NaN before the first valid
            value, or after the last one with ``"linear"``).
    """
    if method not in ("linear", "ffill"):
        raise DataError(f"fill_gaps: unknown method {method!r}; expected 'linear' or 'ffill'")
    name = str(series.name)
    index = pd.DatetimeIndex(series.index)
    dt = step if step is not None else _step_of(index, name)
    grid = pd.date_range(index[0], index[-1], freq=dt)
    off_grid = index.difference(grid)
    if len(off_grid):
        raise DataError(
            f"series {name!r}: timestamp {off_grid[0].isoformat()} is off the {dt} grid starting at"
            f" {index[0].isoformat()}; cannot fill"
        )
    full = series.astype(np.float64).reindex(grid)
    n_filled = int(full.isna().sum())
    filled = full.interpolate(method="linear", limit_area="inside") if method == "linear" else full.ffill()
    left = filled.isna().to_numpy()
    if left.any():
        i = int(np.argmax(left))
        raise DataError(
            f"series {name!r}: cannot fill {int(left.sum())} point(s) with {method!r}, first at"
            f" {grid[i].isoformat()}: no valid value on {'both sides' if method == 'linear' else 'the left'}"
        )
    filled.name = series.name
    filled.index.name = series.index.name
    return filled, n_filled


__all__ = [
    "CARBON_INTENSITY",
    "HOUR",
    "ON_THE_HOUR",
    "PRICE",
    "FillMethod",
    "NaivePolicy",
    "ValueRange",
    "check_timeline",
    "check_values",
    "fill_gaps",
    "parse_utc",
    "require_span",
    "validate_series",
]
