"""Configuration of the user's own inputs: signal sources (files and carbon APIs) and arrival trace files.

A region takes its carbon intensity, price or marginal emissions rate from a :class:`SignalSourceConfig`
(``regions[i].carbon_source``, ``price_source``, ``marginal_source``) instead of the shipped traces; the
arrival process replays a user's request log through an :class:`ArrivalTraceConfig`
(``arrivals.trace_file``). Frozen dataclasses validated like the rest of :mod:`carbonsim.config`; the data
layer reads the files (:mod:`carbonsim.data.user_signals`, :mod:`carbonsim.data.user_arrivals`) and the
carbon-API cache (:mod:`carbonsim.data.carbon_cache`). docs/own_data.md has a worked example of each.

Paths are the user's own files: a relative path is taken from the working directory (carbonsim's Hydra
configuration keeps ``hydra.job.chdir: false``), only that file is read, and only local files are accepted
(no URLs). Names that become part of a path in the cache (zones) are restricted to letters, digits, ``-``
and ``_``, so they cannot leave the cache folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from carbonsim._schema import ConfigError

if TYPE_CHECKING:
    from carbonsim.config import ArrivalConfig, RegionConfig, ScenarioConfig

SOURCE_KINDS = ("file", "electricitymaps_api", "watttime_api")
FILE_FORMATS = ("table", "electricitymaps", "watttime", "carbon_aware_sdk")
API_SIGNALS = ("history", "forecast")
TIME_UNITS = ("iso", "s", "ms")
ARRIVAL_TIME_UNITS = ("iso", "s", "ms", "us")

#: Grid zone / region ids as Electricity Maps and WattTime write them (``DE``, ``US-CAL-CISO``, ``CAISO_NORTH``).
ZONE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: IANA time-zone names (``UTC``, ``Europe/Berlin``, ``America/Argentina/Buenos_Aires``, ``Etc/GMT+5``).
TIMEZONE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


def check_local_path(name: str, path: str) -> None:
    """Raises unless ``path`` names a local file (not empty, not a URL, no NUL byte)."""
    _check(bool(path), name, path, "the path of a local file")
    _check("://" not in path and "\x00" not in path, name, path, "a local file path, not a URL")


def check_timezone(name: str, tz: str) -> None:
    """Raises unless ``tz`` is a time zone the standard library knows (an IANA name such as Europe/Berlin)."""
    from zoneinfo import ZoneInfo

    _check(bool(TIMEZONE_PATTERN.fullmatch(tz)) and ".." not in tz, name, tz, "an IANA time-zone name such as UTC")
    try:
        ZoneInfo(tz)
    except (ValueError, OSError):
        raise ConfigError(f"{name}: expected an IANA time-zone name such as UTC or Europe/Berlin, got {tz!r}") from None


def check_zone(name: str, zone: str) -> None:
    """Raises unless ``zone`` is a plain zone/region id (it names a folder of the carbon-API cache)."""
    _check(
        bool(ZONE_PATTERN.fullmatch(zone)),
        name,
        zone,
        "a zone id of letters, digits, '-' and '_' (e.g. DE, US-CAL-CISO, CAISO_NORTH)",
    )


@dataclass(frozen=True)
class SignalSourceConfig:
    """Where one signal of a region comes from when it is not a shipped trace.

    ``kind: file`` reads the user's file in one of four formats (docs/own_data.md):

    * ``table``: any CSV (``.csv``, ``.csv.gz``) or Parquet file with a timestamp column and a value column,
      named here with the value's ``unit``;
    * ``electricitymaps``: an Electricity Maps data-portal export (hourly or 5-minute CSV, the shape of
      the shipped ``traces/carbon_intensity/electricitymaps_hourly`` files); the intensity column follows
      ``carbon.metric`` (``direct`` or ``lca``);
    * ``watttime``: a WattTime historical MOER export: the v3 API's JSON response (``data`` + ``meta``), its
      CSV form (``point_time``, ``value``, as the WattTime Python client writes it) or the v2 CSV
      (``timestamp``, ``MOER``, ...); unit lbs CO2/MWh unless ``unit`` says otherwise;
    * ``carbon_aware_sdk``: the Green Software Foundation Carbon Aware SDK's emissions JSON (the response
      of ``/emissions/bylocations``: a list of ``{location, time, rating, duration}``, rating in g/kWh).

    ``kind: electricitymaps_api`` or ``watttime_api`` reads what ``carbonsim fetch-carbon`` stored in the
    cache for ``zone``; a run never fetches (docs/own_data.md).

    Any resolution from one hour down to seconds is accepted when it divides the hour; the hourly value is
    the time-weighted mean over each UTC hour (:func:`carbonsim.data.user_signals.hourly_means`).

    Attributes:
        kind: ``file``, ``electricitymaps_api`` or ``watttime_api``.
        path: The file (``kind: file``); relative paths start at the working directory.
        format: ``table``, ``electricitymaps``, ``watttime`` or ``carbon_aware_sdk``.
        timestamp_column: ``table``: the column of timestamps (each stamps the start of its interval).
        value_column: ``table``: the column of values.
        unit: Unit of the values: required for ``table`` (carbon: ``gCO2/kWh``, ``gCO2eq/kWh``, ``g/kWh``,
            ``kgCO2/MWh``, ``kgCO2/kWh``, ``tCO2/MWh``, ``lbsCO2/MWh``; price: ``USD/MWh``, ``USD/kWh`` or
            another currency with ``exchange_rate_usd``); ``watttime`` may override the lbs CO2/MWh default.
        timezone: Time zone of timestamps written without a UTC offset (an IANA name, default UTC);
            timestamps with an offset are converted to UTC whatever this says.
        time_unit: ``table``: ``iso`` for ISO 8601 text, ``s`` or ``ms`` for numbers since the Unix epoch.
        zone: The zone, location or region: for the API kinds the zone to read from the cache (Electricity
            Maps zone such as ``DE``, WattTime region such as ``CAISO_NORTH``); for files with several
            locations (Carbon Aware SDK JSON, WattTime v2 CSV, Electricity Maps exports) the one to keep, and
            for files with one, a check that it is this one.
        signal: API kinds: ``history`` (measured values) or ``forecast`` (a recorded forecast).
        cache_dir: API kinds: the cache folder (default: ``$CARBONSIM_CACHE``, else ``~/.cache/carbonsim``).
        exchange_rate_usd: Prices in another currency than USD: US dollars per unit of that currency (e.g.
            1.08 for EUR), stated by the user; 0 for USD.
    """

    kind: str = "file"
    path: str = ""
    format: str = "table"
    timestamp_column: str = ""
    value_column: str = ""
    unit: str = ""
    timezone: str = "UTC"
    time_unit: str = "iso"
    zone: str = ""
    signal: str = "history"
    cache_dir: str = ""
    exchange_rate_usd: float = 0.0

    def __post_init__(self) -> None:
        _check(self.kind in SOURCE_KINDS, "kind", self.kind, f"one of {', '.join(SOURCE_KINDS)}")
        _check(
            math.isfinite(self.exchange_rate_usd) and self.exchange_rate_usd >= 0,
            "exchange_rate_usd",
            self.exchange_rate_usd,
            "USD per unit of the file's currency (> 0), or 0 for USD",
        )
        check_timezone("timezone", self.timezone)
        if self.kind != "file":
            check_zone("zone", self.zone)
            _check(self.signal in API_SIGNALS, "signal", self.signal, f"one of {', '.join(API_SIGNALS)}")
            for name in ("path", "timestamp_column", "value_column", "unit"):
                _check(not getattr(self, name), name, getattr(self, name), f"empty for kind {self.kind}")
            if self.cache_dir:
                check_local_path("cache_dir", self.cache_dir)
            return
        check_local_path("path", self.path)
        _check(self.format in FILE_FORMATS, "format", self.format, f"one of {', '.join(FILE_FORMATS)}")
        _check(not self.cache_dir, "cache_dir", self.cache_dir, "empty for kind file")
        _check(self.time_unit in TIME_UNITS, "time_unit", self.time_unit, f"one of {', '.join(TIME_UNITS)}")
        if self.zone:
            check_zone("zone", self.zone)
        if self.format == "table":
            for name in ("timestamp_column", "value_column", "unit"):
                _check(bool(getattr(self, name)), name, getattr(self, name), "a value for format table")
        else:
            for name in ("timestamp_column", "value_column"):
                _check(not getattr(self, name), name, getattr(self, name), f"empty for format {self.format}")
            _check(self.time_unit == "iso", "time_unit", self.time_unit, f"iso for format {self.format}")
            _check(
                not self.unit or self.format == "watttime",
                "unit",
                self.unit,
                f"empty for format {self.format} (its unit is fixed by the format)",
            )


@dataclass(frozen=True)
class ArrivalTraceConfig:
    """A user's request log, replayed as the arrival process (``arrivals.kind: replay``).

    The recorded times are replayed with the same time scaling, tiling and thinning as the shipped Azure LLM
    traces (docs/model.md): only the gaps between requests matter, so the times may start anywhere. With a
    ``model_column`` each replayed request keeps its recorded model, mapped to a workload by ``models``;
    without one, workloads are drawn by their shares as for the other arrival processes. Token columns are
    read and validated (whole numbers >= 0) and returned by the Python loader
    (:func:`carbonsim.data.user_arrivals.load_arrival_trace`); service times still come from each
    workload's service-time model.

    Attributes:
        path: CSV (``.csv``, ``.csv.gz``) or Parquet file; relative paths start at the working directory.
        timestamp_column: The column of request times.
        time_unit: ``iso`` for ISO 8601 text, or ``s``, ``ms``, ``us`` for numbers (seconds, milliseconds,
            microseconds from any origin).
        timezone: Time zone of ISO timestamps without an offset (matters across a daylight-saving switch).
        model_column: Optional column naming each request's model.
        models: Model name in the file -> workload name (every model in the file must be mapped; empty maps
            each model to the workload of the same name).
        context_tokens_column: Optional column of input (prompt) tokens.
        generated_tokens_column: Optional column of output (generated) tokens.
    """

    path: str
    timestamp_column: str = "timestamp"
    time_unit: str = "iso"
    timezone: str = "UTC"
    model_column: str = ""
    models: dict[str, str] = field(default_factory=dict)
    context_tokens_column: str = ""
    generated_tokens_column: str = ""

    def __post_init__(self) -> None:
        check_local_path("path", self.path)
        _check(bool(self.timestamp_column), "timestamp_column", self.timestamp_column, "a column name")
        _check(
            self.time_unit in ARRIVAL_TIME_UNITS,
            "time_unit",
            self.time_unit,
            f"one of {', '.join(ARRIVAL_TIME_UNITS)}",
        )
        check_timezone("timezone", self.timezone)
        _check(not self.models or bool(self.model_column), "models", self.models, "empty unless model_column is set")
        named = (self.timestamp_column, self.model_column, self.context_tokens_column, self.generated_tokens_column)
        columns = [c for c in named if c]
        _check(len(set(columns)) == len(columns), "model_column", columns, "distinct columns for each field")


def check_region_sources(region: RegionConfig) -> None:
    """Checks that a region's sources fit their signal (API kinds only for carbon, units of the right kind).

    Raises:
        ConfigError: naming the source field (``carbon_source.unit`` ...).
    """
    from carbonsim.data.units import CARBON_UNITS, PRICE_UNITS, is_price_unit, normalise_unit

    for name in ("carbon_source", "marginal_source", "price_source"):
        source: SignalSourceConfig | None = getattr(region, name)
        if source is None:
            continue
        if name == "price_source":
            _check(source.kind == "file", f"{name}.kind", source.kind, "file (price APIs are not supported)")
            _check(
                source.format == "table",
                f"{name}.format",
                source.format,
                "table (the other formats hold carbon intensity)",
            )
            _check(
                is_price_unit(source.unit),
                f"{name}.unit",
                source.unit,
                f"a price unit: {', '.join(PRICE_UNITS)} or <currency>/MWh, <currency>/kWh with exchange_rate_usd",
            )
            currency = normalise_unit(source.unit).split("/")[0]
            if currency != "usd":
                _check(
                    source.exchange_rate_usd > 0,
                    f"{name}.exchange_rate_usd",
                    source.exchange_rate_usd,
                    f"USD per {currency.upper()} (> 0) for unit {source.unit}",
                )
            continue
        if source.unit:
            _check(
                normalise_unit(source.unit) in CARBON_UNITS,
                f"{name}.unit",
                source.unit,
                f"a carbon-intensity unit: {', '.join(sorted(CARBON_UNITS))}",
            )
        _check(source.exchange_rate_usd == 0, f"{name}.exchange_rate_usd", source.exchange_rate_usd, "0 for carbon")


def check_arrival_trace(arrivals: ArrivalConfig, workloads: tuple[str, ...]) -> None:
    """Checks that a trace's model mapping names the scenario's workloads.

    Raises:
        ConfigError: naming ``arrivals.trace_file.models``.
    """
    trace = arrivals.trace_file
    if trace is None:
        return
    unknown = sorted(set(trace.models.values()) - set(workloads))
    if unknown:
        raise ConfigError(
            f"arrivals.trace_file.models: unknown workload(s) {', '.join(unknown)}; workloads in this scenario: "
            f"{', '.join(workloads)}"
        )


def check_scenario_sources(scenario: ScenarioConfig) -> None:
    """Scenario-wide checks of the user's inputs: a start time for file signals, a known arrival mapping.

    Raises:
        ConfigError: naming ``start_utc`` or the arrival trace's field.
    """
    sourced = [r.name for r in scenario.regions if r.carbon_source or r.price_source or r.marginal_source]
    if sourced:
        _check(
            bool(scenario.start_utc),
            "start_utc",
            scenario.start_utc,
            f"the UTC time of simulated t = 0 (region(s) {', '.join(sourced)} take signals from a source)",
        )
    check_arrival_trace(scenario.arrivals, scenario.workload_names)


__all__ = [
    "API_SIGNALS",
    "ARRIVAL_TIME_UNITS",
    "FILE_FORMATS",
    "SOURCE_KINDS",
    "TIME_UNITS",
    "ZONE_PATTERN",
    "ArrivalTraceConfig",
    "SignalSourceConfig",
    "check_arrival_trace",
    "check_local_path",
    "check_region_sources",
    "check_scenario_sources",
    "check_timezone",
    "check_zone",
]
