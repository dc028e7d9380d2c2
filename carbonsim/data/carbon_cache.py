"""The on-disk cache of carbon-API responses: fetched once with ``carbonsim fetch-carbon``, read by runs offline.

Layout, below the cache folder::

    <provider>/<zone>/<signal>/<start>--<end>.csv

one file per fetch, named by the UTC range ``[start, end)`` it covers completely (e.g.
``electricitymaps/DE/carbon_intensity_direct/20240101T0000Z--20240108T0000Z.csv``). Each file has the
columns ``time_utc`` (ISO 8601, UTC), ``value`` and ``unit`` (the provider's unit, unconverted). Files are
written whole (to a temporary name, then renamed), so an interrupted fetch leaves no partial entry.

The folder is, in this order: the one the caller names (``--cache``, ``cache_dir``), ``$CARBONSIM_CACHE``,
``$XDG_CACHE_HOME/carbonsim``, ``~/.cache/carbonsim``. Provider, zone and signal are checked against
fixed patterns before they become path components, and every path is checked to lie inside the folder: a
zone such as ``../x`` is rejected, never followed.

A run reads the files whose ranges overlap its window and fails, printing the ``fetch-carbon`` command to
run, if they do not cover it; it never fetches.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike
from carbonsim.data.user_signals import hourly_means, unit_factor, validate_signal
from carbonsim.data.user_tables import parse_times, read_csv_strict

CACHE_ENV = "CARBONSIM_CACHE"
PROVIDERS = ("electricitymaps", "watttime")
CACHE_HEADER = ("time_utc", "value", "unit")
_ZONE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SIGNAL = re.compile(r"[a-z][a-z0-9_]{0,63}")
_STAMP = "%Y%m%dT%H%MZ"
_NAME = re.compile(r"(\d{8}T\d{4}Z)--(\d{8}T\d{4}Z)\.csv")


class CacheMissError(DataError):
    """The cache does not cover the window a run needs (the message says which command fills it)."""


def cache_root(folder: PathLike | None = None) -> Path:
    """The cache folder: ``folder``, else $CARBONSIM_CACHE, else $XDG_CACHE_HOME/carbonsim or ~/.cache/carbonsim."""
    if folder:
        return Path(folder)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "carbonsim"
    return Path.home() / ".cache" / "carbonsim"


def signal_name(provider: str, signal: str, metric: str = "direct") -> str:
    """The cache's name of a provider's signal.

    Args:
        provider: ``electricitymaps`` or ``watttime``.
        signal: ``history`` (measured values) or ``forecast``.
        metric: Electricity Maps emission factors: ``direct`` or ``lca`` (life cycle).

    Returns:
        ``carbon_intensity_direct``, ``carbon_intensity_lifecycle``, ``carbon_intensity_forecast_direct`` ...
        for Electricity Maps; ``co2_moer`` or ``co2_moer_forecast`` for WattTime.
    """
    if provider not in PROVIDERS:
        raise DataError(f"unknown carbon-API provider {provider!r}; expected one of {list(PROVIDERS)}")
    if signal not in ("history", "forecast"):
        raise DataError(f"unknown signal {signal!r}; expected 'history' or 'forecast'")
    if provider == "watttime":
        return "co2_moer" if signal == "history" else "co2_moer_forecast"
    if metric not in ("direct", "lca"):
        raise DataError(f"unknown Electricity Maps metric {metric!r}; expected 'direct' or 'lca'")
    factor = "lifecycle" if metric == "lca" else "direct"
    return f"carbon_intensity_{factor}" if signal == "history" else f"carbon_intensity_forecast_{factor}"


def cache_folder(root: Path, provider: str, zone: str, signal: str) -> Path:
    """The folder of a signal in the cache, after checking that each name is a plain id.

    Raises:
        DataError: for an unknown provider, or a zone or signal that is not a plain id.
    """
    if provider not in PROVIDERS:
        raise DataError(f"unknown carbon-API provider {provider!r}; expected one of {list(PROVIDERS)}")
    if not _ZONE.fullmatch(zone):
        raise DataError(f"zone {zone!r}: expected letters, digits, '-' and '_' only (e.g. DE, CAISO_NORTH)")
    if not _SIGNAL.fullmatch(signal):
        raise DataError(f"signal {signal!r}: expected lower-case letters, digits and '_' only")
    folder = root / provider / zone / signal
    # Belt and braces: the patterns above already exclude separators and '..'.
    if not folder.resolve().is_relative_to(root.resolve()):
        raise DataError(f"{folder}: outside the cache folder {root}")
    return folder


def _utc(t: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(t)
    if stamp.tzinfo is None:
        raise DataError(f"time {t!r} has no time zone; give a UTC time such as 2024-01-01T00:00Z")
    return stamp.tz_convert("UTC")


def iso(t: pd.Timestamp) -> str:
    """A UTC time as ``2024-01-01T00:00:00Z``."""
    return _utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CacheEntry:
    """One cached fetch.

    Attributes:
        path: Its file.
        start: First instant covered (UTC).
        end: End of the covered range, exclusive.
    """

    path: Path
    start: pd.Timestamp
    end: pd.Timestamp


def store(
    root: Path,
    provider: str,
    zone: str,
    signal: str,
    series: pd.Series,
    unit: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> Path:
    """Writes one fetch into the cache.

    Args:
        root: Cache folder.
        provider: ``electricitymaps`` or ``watttime``.
        zone: Zone or region id.
        signal: Cache signal name (:func:`signal_name`).
        series: Values in ``unit`` on a UTC index, covering ``[start, end)`` completely.
        unit: The provider's unit (``gCO2eq/kWh``, ``lbs_co2_per_mwh``).
        start: First instant of the range (UTC).
        end: End of the range, exclusive.

    Returns:
        The file written.
    """
    start, end = _utc(start), _utc(end)
    if not end > start or start != start.floor("min") or end != end.floor("min"):
        raise DataError(f"cache range [{iso(start)}, {iso(end)}): expected start < end, on whole minutes")
    folder = cache_folder(root, provider, zone, signal)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{start.strftime(_STAMP)}--{end.strftime(_STAMP)}.csv"
    index = pd.DatetimeIndex(series.index).tz_convert("UTC")
    frame = pd.DataFrame(
        {"time_utc": index.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": series.to_numpy(dtype=np.float64), "unit": unit}
    )
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def entries(root: Path, provider: str, zone: str, signal: str) -> list[CacheEntry]:
    """The cached fetches of a signal, by start time (files not named like the cache's are ignored)."""
    folder = cache_folder(root, provider, zone, signal)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.fullmatch(path.name)
        if match and path.is_file():
            start, end = (pd.Timestamp(datetime.strptime(m, _STAMP), tz="UTC") for m in match.groups())
            found.append(CacheEntry(path, start, end))
    return sorted(found, key=lambda e: (e.start, e.end, e.path.name))


def _read_entry(entry: CacheEntry, provider: str) -> tuple[pd.Series, pd.Timedelta]:
    table = read_csv_strict(entry.path)
    missing = [c for c in CACHE_HEADER if c not in table.frame.columns]
    if missing:
        raise DataError(f"{entry.path}: not a carbonsim cache file (no column(s) {missing}); delete it and fetch again")
    units = sorted(str(u) for u in table.frame["unit"].dropna().unique())
    if len(units) != 1:
        raise DataError(f"{entry.path}: column 'unit' holds {units}; expected one unit")
    times = parse_times(table, "time_utc")
    factor = unit_factor("carbon", units[0], 0.0, f"{entry.path}: column 'unit'")
    return validate_signal(
        table,
        times,
        table.frame["value"],
        value_column="value",
        quantity="carbon",
        unit=units[0],
        factor=factor,
        name=f"{provider} cache",
    )


def load_cached(
    root: Path,
    provider: str,
    zone: str,
    signal: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    fetch_hint: str,
) -> pd.Series:
    """The cached signal over ``[start, end)`` as an hourly series in gCO2eq/kWh (mean per UTC hour).

    Args:
        root: Cache folder.
        provider: ``electricitymaps`` or ``watttime``.
        zone: Zone or region id.
        signal: Cache signal name.
        start: First hour needed (UTC, on the hour).
        end: End of the window, exclusive (on the hour).
        fetch_hint: The command that fills the cache, printed when it lacks the window.

    Raises:
        CacheMissError: if the cached ranges do not cover ``[start, end)``.
        DataError: if a cache file is corrupt, or two fetches disagree about a value.
    """
    start, end = _utc(start), _utc(end)
    folder = cache_folder(root, provider, zone, signal)
    overlapping = [e for e in entries(root, provider, zone, signal) if e.start < end and e.end > start]
    covered_to = start
    for e in overlapping:
        if e.start > covered_to:
            break
        covered_to = max(covered_to, e.end)
    if covered_to < end:
        have = ", ".join(f"[{iso(e.start)}, {iso(e.end)})" for e in entries(root, provider, zone, signal)) or "nothing"
        raise CacheMissError(
            f"{folder}: the cache has no {signal} for {zone} from {iso(covered_to)} (the run needs "
            f"[{iso(start)}, {iso(end)}); cached: {have}); runs never fetch, so fill it first: {fetch_hint}"
        )
    parts: list[pd.Series] = []
    steps: set[pd.Timedelta] = set()
    for e in overlapping:
        series, step = _read_entry(e, provider)
        steps.add(step)
        parts.append(series[(series.index >= start) & (series.index < end)].rename(str(e.path)))
    if len(steps) > 1:
        raise DataError(f"{folder}: cached fetches have different steps {sorted(map(str, steps))}; delete one")
    merged = pd.concat(parts)
    dup = merged.index.duplicated(keep=False)
    if dup.any():
        frame = pd.DataFrame({"t": merged.index[dup], "v": merged.to_numpy()[dup]})
        disagree = frame.groupby("t")["v"].nunique()
        if (disagree > 1).any():
            t = disagree[disagree > 1].index[0]
            raise DataError(
                f"{folder}: two cached fetches disagree at {iso(t)}; delete the older file and keep one (files "
                f"{[e.path.name for e in overlapping]})"
            )
        merged = merged[~merged.index.duplicated(keep="first")]
    merged = merged.sort_index()
    step = steps.pop()
    expected = pd.date_range(start, end, freq=step, inclusive="left")
    if len(merged) != len(expected) or not (merged.index == expected).all():
        raise DataError(f"{folder}: cached values do not fill [{iso(start)}, {iso(end)}) on a {step} grid")
    merged.name = f"{provider} {zone} {signal}"
    return hourly_means(merged, step, str(folder))


def fetch_command(
    provider: str,
    zone: str,
    signal: str,
    metric: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    root: Path,
) -> str:
    """The ``carbonsim fetch-carbon`` command that fills the cache for a window (for error messages)."""
    parts = ["carbonsim", "fetch-carbon", provider, "--zone", zone]
    if provider == "electricitymaps" and metric != "direct":
        parts += ["--metric", metric]
    if signal == "forecast":
        parts += ["--forecast", "--cache", str(root)]
        return (
            " ".join(shlex.quote(p) for p in parts) + " (records the forecast made now; a past one cannot be fetched)"
        )
    parts += ["--start", iso(start), "--end", iso(end), "--cache", str(root)]
    return " ".join(shlex.quote(p) for p in parts)


__all__ = [
    "CACHE_ENV",
    "PROVIDERS",
    "CacheEntry",
    "CacheMissError",
    "cache_folder",
    "cache_root",
    "entries",
    "fetch_command",
    "iso",
    "load_cached",
    "signal_name",
    "store",
]
