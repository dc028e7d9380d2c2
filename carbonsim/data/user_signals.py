"""Carbon-intensity, marginal-emissions and price signals from the user's own files.

Four formats (``format``), each loaded without editing the file:

* ``table``: any CSV or Parquet file; the timestamp column, value column, unit and time zone are named by
  the caller (``SignalSourceConfig``).
* ``electricitymaps``: an Electricity Maps data-portal export, hourly or 5-minute: ``Datetime (UTC)``, the
  zone id and the intensity columns ``Carbon Intensity gCO₂eq/kWh (direct)`` and ``... (LCA)`` (or
  ``(Life cycle)``), matched without case (the portal's capitalisation has changed between exports).
* ``watttime``: a WattTime MOER history: the v3 ``/v3/historical`` JSON response (``data`` of
  ``{point_time, value}`` plus ``meta`` with ``units`` and ``data_point_period_seconds``; a list of such
  responses, as the WattTime Python client's ``get_historical_jsons`` returns, is accepted too), its CSV form
  (``point_time``, ``value``) or the v2 CSV (``timestamp``, ``MOER``, optionally ``ba``).
* ``carbon_aware_sdk``: the Green Software Foundation Carbon Aware SDK's ``EmissionsData`` list as returned
  by ``GET /emissions/bylocations``: ``[{"location", "time", "rating", "duration"}]`` with ``rating`` in
  gCO2/kWh and ``duration`` a .NET time span (``"00:05:00"``, ``"1.00:00:00"``).

Validation is that of the shipped traces (:mod:`carbonsim.data.timeseries`): parseable timestamps, no
duplicates, strictly increasing, on a regular grid without gaps, numeric values in the plausible range of
the quantity (checked in the file's own unit, so the message shows the value as written). Every error
names the file, the row (and line) and the column.

**Resampling rule.** The simulator's signals are hourly. A series may be hourly or finer, on a regular
grid whose step divides the hour (e.g. 5, 15 or 30 minutes) and is aligned to it (a point at every whole
hour); coarser or irregular series are rejected. Each value holds from its timestamp to the next one, so
the hourly value is the **time-weighted mean over each UTC hour** [h, h + 1), which on a regular grid is
the plain mean of the hour's points. A first or last hour that the file only partly covers is left out
(its mean would stand for part of the hour only); gaps inside the series are errors, never filled.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike
from carbonsim.data.timeseries import (
    CARBON_INTENSITY,
    HOUR,
    ON_THE_HOUR,
    PRICE,
    ValueRange,
    check_timeline,
    check_values,
)
from carbonsim.data.units import carbon_factor, normalise_unit, price_factor
from carbonsim.data.user_tables import (
    JSON_SUFFIXES,
    Table,
    json_table,
    local_file,
    located,
    parse_times,
    read_json,
    read_table,
)

Quantity = Literal["carbon", "marginal", "price"]
SIGNAL_FORMATS = ("table", "electricitymaps", "watttime", "carbon_aware_sdk")
WATTTIME_DEFAULT_UNIT = "lbs_co2_per_mwh"
"""Unit of WattTime's ``co2_moer`` signal (``meta.units`` of the v3 API; v2 data were in lbs/MWh too)."""

_EM_TIME = "datetime (utc)"
_EM_ZONE = ("zone id", "zone_id", "zone")
_EM_METRIC = {"direct": ("(direct)",), "lca": ("(lca)", "(life cycle)", "(lifecycle)")}
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?")


def target_range(quantity: Quantity) -> ValueRange:
    """Plausible range of a quantity in carbonsim's unit (gCO2eq/kWh, or USD/MWh for prices)."""
    return PRICE if quantity == "price" else CARBON_INTENSITY


def unit_factor(quantity: Quantity, unit: str, exchange_rate_usd: float, source: str) -> float:
    """Factor from ``unit`` to carbonsim's unit of ``quantity``.

    Raises:
        DataError: for an unknown unit or one of the wrong kind.
    """
    if quantity == "price":
        return price_factor(unit, exchange_rate_usd, source)
    return carbon_factor(unit, source)


def validate_signal(
    table: Table,
    times: pd.DatetimeIndex,
    values: pd.Series,
    *,
    value_column: str,
    quantity: Quantity,
    unit: str,
    factor: float,
    name: str,
    step: pd.Timedelta | None = None,
) -> tuple[pd.Series, pd.Timedelta]:
    """Checks a signal's timeline and values and converts the values to carbonsim's unit.

    Args:
        table: The file's rows (for messages).
        times: UTC timestamps, one per row.
        values: The value column as read.
        value_column: Its name, for messages.
        quantity: What the values are.
        unit: The file's unit, for messages.
        factor: Factor to carbonsim's unit.
        name: Name of the returned series.
        step: The spacing the file declares (e.g. WattTime's ``data_point_period_seconds``); inferred as the
            smallest spacing when ``None``.

    Returns:
        ``(series, step)``: values in gCO2eq/kWh or USD/MWh on the UTC index, and the grid step.

    Raises:
        DataError: at the first duplicate, backward, off-grid or missing timestamp, a spacing that is
            coarser than an hour or does not divide it, or a value that is empty, not a number or outside the
            quantity's plausible range (stated in the file's unit).
    """
    source = str(table.path)
    if len(times) < 2:
        raise DataError(f"{source}: {len(times)} timestamp(s); expected at least two to know the series' step")
    ns = times.asi8
    diffs = np.diff(ns)
    with located(table):
        if (diffs <= 0).any():
            # Reports the first duplicate or backward step, naming its rows.
            check_timeline(times, source=source, step=HOUR, phase=None, rows=table.rows)
        spacing = pd.Timedelta(int(diffs.min()), unit="ns") if step is None else step
        if spacing > HOUR:
            i = int(np.argmin(diffs))
            raise DataError(
                f"{table.where(i + 1)}: timestamps are {spacing} apart; expected hourly or finer data (a coarser"
                " series cannot be resampled to the simulator's hours without inventing values)"
            )
        if HOUR.value % spacing.value:
            raise DataError(
                f"{source}: step of {spacing} does not divide an hour; expected 1 h or a divisor of it such as"
                " 30, 15 or 5 min (an irregular series is not resampled)"
            )
        check_timeline(times, source=source, step=spacing, phase=ON_THE_HOUR, rows=table.rows)
        target = target_range(quantity)
        valid = ValueRange(target.low / factor, target.high / factor, unit)
        data = check_values(values, source=source, column=value_column, valid=valid, index=times, rows=table.rows)
    return pd.Series(data * factor, index=times.rename("time_utc"), name=name), spacing


def hourly_means(series: pd.Series, step: pd.Timedelta, source: str) -> pd.Series:
    """The time-weighted mean of a validated regular series over each whole UTC hour it covers.

    Args:
        series: Values on a gap-free grid of ``step`` (dividing an hour), aligned to the hour.
        step: The grid step.
        source: File name for messages.

    Returns:
        Hourly series stamped at the start of each hour; a partly covered first or last hour is left out.

    Raises:
        DataError: if the series covers no whole hour.
    """
    per_hour = int(HOUR / step)
    index = pd.DatetimeIndex(series.index)
    offset = int((index[0].ceil("h") - index[0]) / step) % per_hour if per_hour > 1 else 0
    usable = (len(series) - offset) // per_hour * per_hour
    if usable <= 0:
        raise DataError(
            f"{source}: covers no whole UTC hour ({len(series)} points of {step} from {index[0].isoformat()});"
            " expected at least one"
        )
    values = series.to_numpy(dtype=np.float64)[offset : offset + usable].reshape(-1, per_hour).mean(axis=1)
    hours = index[offset : offset + usable : per_hour]
    return pd.Series(values, index=hours.rename("time_utc"), name=series.name)


def _match_column(table: Table, wanted: tuple[str, ...], contains: tuple[str, ...], what: str) -> str:
    """The column whose lower-case name equals one of ``wanted`` or contains all of ``contains``."""
    for c in table.frame.columns:
        low = str(c).lower()
        if low in wanted or (contains and all(part in low for part in contains)):
            return str(c)
    raise DataError(f"{table.path}: no {what} column; the file has columns {[str(c) for c in table.frame.columns]}")


def _zone_rows(table: Table, column: str | None, zone: str, what: str) -> Table:
    """The rows of ``zone`` (all rows when the file has one zone and ``zone`` is empty)."""
    if column is None:
        return table
    values = table.frame[column].astype("str").where(table.frame[column].notna())
    found = sorted(str(v) for v in values.dropna().unique())
    if not zone:
        if len(found) > 1:
            raise DataError(f"{table.path}: {len(found)} {what}s in column {column!r} ({found}); name one as zone")
        return table
    mask = (values == zone).to_numpy(dtype=bool)
    if not mask.any():
        raise DataError(f"{table.path}: no rows for {what} {zone!r} in column {column!r}; the file has {found}")
    return table.subset(mask)


def _electricitymaps(file: PathLike, zone: str, metric: str, timezone: str) -> tuple[Table, pd.DatetimeIndex, str]:
    if metric not in _EM_METRIC:
        raise DataError(f"unknown Electricity Maps metric {metric!r}; expected one of {sorted(_EM_METRIC)}")
    if timezone != "UTC":
        raise DataError(f"{file}: Electricity Maps exports are stamped in UTC ('Datetime (UTC)'); set timezone: UTC")
    table = read_table(file, "Electricity Maps export")
    time_column = _match_column(table, (_EM_TIME,), (), "'Datetime (UTC)'")
    value_column = ""
    for option in _EM_METRIC[metric]:
        try:
            value_column = _match_column(table, (), ("carbon intensity", option), f"carbon intensity {option}")
            break
        except DataError:
            continue
    if not value_column:
        _match_column(table, (), ("carbon intensity", _EM_METRIC[metric][0]), f"carbon intensity {metric}")
    zone_column = next((str(c) for c in table.frame.columns if str(c).lower() in _EM_ZONE), None)
    table = _zone_rows(table, zone_column, zone, "zone")
    return table, parse_times(table, time_column, timezone="UTC"), value_column


def _watttime_json(file: Any, data: Any, zone: str, unit: str) -> tuple[Table, str, pd.Timedelta | None]:
    responses = data if isinstance(data, list) else [data]
    entries: list[Any] = []
    units: set[str] = set()
    periods: set[int] = set()
    for k, response in enumerate(responses):
        if not isinstance(response, dict) or "data" not in response:
            raise DataError(f"{file}: response {k + 1}: expected a WattTime v3 response with 'data' and 'meta'")
        meta = response.get("meta") or {}
        if meta.get("units"):
            units.add(str(meta["units"]))
        if meta.get("data_point_period_seconds"):
            periods.add(int(meta["data_point_period_seconds"]))
        region = meta.get("region")
        if zone and region and region != zone:
            raise DataError(f"{file}: response {k + 1}: meta.region {region!r}; expected zone {zone!r}")
        entries.extend(response["data"] if isinstance(response["data"], list) else [response["data"]])
    if len(units) > 1 or len(periods) > 1:
        raise DataError(f"{file}: responses disagree on meta.units {sorted(units)} or period {sorted(periods)}")
    found = next(iter(units), "")
    if found == "percentile":
        raise DataError(
            f"{file}: meta.units 'percentile': this is WattTime's signal index (0-100), not an emissions rate;"
            " export /v3/historical"
        )
    if unit and found and normalise_unit(unit) != normalise_unit(found):
        raise DataError(f"{file}: meta.units {found!r} but the configuration says unit {unit!r}")
    table = json_table(file, entries, "data", ("point_time", "value"))
    step = pd.Timedelta(seconds=next(iter(periods))) if periods else None
    return table, unit or found or WATTTIME_DEFAULT_UNIT, step


def _watttime(file: PathLike, zone: str, unit: str, timezone: str) -> tuple[Table, pd.DatetimeIndex, str, str, Any]:
    path = local_file(file, "WattTime export")
    if path.suffix.lower() in JSON_SUFFIXES:
        table, unit, step = _watttime_json(path, read_json(path), zone, unit)
        return table, parse_times(table, "point_time", timezone=timezone), "value", unit, step
    table = read_table(path, "WattTime export")
    columns = {str(c).lower(): str(c) for c in table.frame.columns}
    if "point_time" in columns and "value" in columns:
        time_column, value_column = columns["point_time"], columns["value"]
    elif "timestamp" in columns and "moer" in columns:
        time_column, value_column = columns["timestamp"], columns["moer"]
    else:
        raise DataError(
            f"{path}: not a WattTime export: expected columns point_time and value (v3) or timestamp and MOER"
            f" (v2); the file has {list(table.frame.columns)}"
        )
    zone_column = next((columns[c] for c in ("ba", "region") if c in columns), None)
    table = _zone_rows(table, zone_column, zone, "region")
    times = parse_times(table, time_column, timezone=timezone)
    return table, times, value_column, unit or WATTTIME_DEFAULT_UNIT, None


def _timespan(text: Any) -> pd.Timedelta | None:
    match = _TIMESPAN.fullmatch(str(text))
    if match is None:
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    return pd.Timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(7, "0")) // 10,
    )


def _carbon_aware_sdk(file: PathLike, zone: str, timezone: str) -> tuple[Table, pd.DatetimeIndex, pd.Timedelta | None]:
    path = local_file(file, "Carbon Aware SDK emissions file")
    data = read_json(path)
    fields = ("location", "time", "rating")
    table = json_table(path, data, "the emissions list", fields)
    with_duration = isinstance(data, list) and all(isinstance(e, dict) and "duration" in e for e in data)
    durations = pd.Series([e.get("duration") for e in data], dtype=object) if with_duration else None
    table = _zone_rows(table, "location", zone, "location")
    times = parse_times(table, "time", timezone=timezone)
    if durations is None:
        return table, times, None
    spans = [_timespan(d) for d in durations.iloc[table.rows - 1]]
    for i, span in enumerate(spans):
        if span is None:
            raise DataError(
                f"{table.where(i)}: duration {durations.iloc[int(table.rows[i]) - 1]!r}; expected a time span such"
                " as '00:05:00'"
            )
    step = spans[0]
    assert step is not None
    for i, span in enumerate(spans):
        if span != step:
            raise DataError(f"{table.where(i)}: duration {span} differs from the first entry's {step}")
    return table, times, step


def read_signal_file(
    path: PathLike,
    *,
    format: str = "table",
    quantity: Quantity = "carbon",
    timestamp_column: str = "",
    value_column: str = "",
    unit: str = "",
    timezone: str = "UTC",
    time_unit: str = "iso",
    zone: str = "",
    metric: str = "direct",
    exchange_rate_usd: float = 0.0,
) -> tuple[pd.Series, pd.Timedelta]:
    """Reads and validates a signal file at its own resolution, in carbonsim's unit.

    Args:
        path: The user's file.
        format: ``table``, ``electricitymaps``, ``watttime`` or ``carbon_aware_sdk`` (module docstring).
        quantity: ``carbon`` or ``marginal`` (gCO2eq/kWh) or ``price`` (USD/MWh).
        timestamp_column: ``table``: column of timestamps.
        value_column: ``table``: column of values.
        unit: Unit of the values (``table``; ``watttime`` to override lbs CO2/MWh).
        timezone: Time zone of timestamps without an offset.
        time_unit: ``table``: ``iso``, or ``s``/``ms`` since the Unix epoch.
        zone: The zone/location/region to keep or check (multi-location files need it).
        metric: ``electricitymaps``: ``direct`` or ``lca``.
        exchange_rate_usd: Prices in another currency: USD per unit of it.

    Returns:
        ``(series, step)``: float64 values in gCO2eq/kWh (carbon, marginal) or USD/MWh (price) on a UTC
        index, named after the file, and the series' step.

    Raises:
        DataError: naming the file, row and column of the first problem.
    """
    if format not in SIGNAL_FORMATS:
        raise DataError(f"{path}: unknown signal format {format!r}; expected one of {list(SIGNAL_FORMATS)}")
    if format != "table" and quantity == "price":
        raise DataError(f"{path}: format {format!r} holds carbon intensity, not prices; use format table")
    step: pd.Timedelta | None = None
    if format == "table":
        table = read_table(path, "signal file")
        values = table.column(value_column, "value column")
        times = parse_times(table, timestamp_column, timezone=timezone, time_unit=time_unit)
        column = value_column
    elif format == "electricitymaps":
        table, times, column = _electricitymaps(path, zone, metric, timezone)
        values, unit = table.frame[column], "gCO2eq/kWh"
    elif format == "watttime":
        table, times, column, unit, step = _watttime(path, zone, unit, timezone)
        values = table.frame[column]
    else:
        table, times, step = _carbon_aware_sdk(path, zone, timezone)
        column, unit = "rating", "gCO2/kWh"
        values = table.frame[column]
    factor = unit_factor(quantity, unit, exchange_rate_usd, f"{table.path}: column {column!r}")
    return validate_signal(
        table,
        times,
        values,
        value_column=column,
        quantity=quantity,
        unit=unit,
        factor=factor,
        name=str(table.path),
        step=step,
    )


def load_signal_file(path: PathLike, **options: Any) -> pd.Series:
    """A user's signal file as an hourly series (time-weighted mean per UTC hour; module docstring).

    Args:
        path: The user's file.
        **options: As :func:`read_signal_file` (``format``, ``quantity``, ``timestamp_column``, ...).

    Returns:
        Hourly float64 series in gCO2eq/kWh or USD/MWh, stamped at the start of each UTC hour.

    Raises:
        DataError: see :func:`read_signal_file` and :func:`hourly_means`.
    """
    series, step = read_signal_file(path, **options)
    return hourly_means(series, step, str(path))


__all__ = [
    "SIGNAL_FORMATS",
    "WATTTIME_DEFAULT_UNIT",
    "Quantity",
    "hourly_means",
    "load_signal_file",
    "read_signal_file",
    "target_range",
    "unit_factor",
    "validate_signal",
]
