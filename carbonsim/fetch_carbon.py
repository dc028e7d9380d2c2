r"""``carbonsim fetch-carbon``: fill the carbon-API cache, so that scenarios run offline from it.

Examples (docs/own_data.md)::

    ELECTRICITYMAPS_API_KEY=... carbonsim fetch-carbon electricitymaps --zone DE \
        --start 2024-03-01T00:00Z --end 2024-03-15T00:00Z
    WATTTIME_USERNAME=... WATTTIME_PASSWORD=... carbonsim fetch-carbon watttime --zone CAISO_NORTH \
        --start 2024-03-01T00:00Z --end 2024-03-15T00:00Z
    carbonsim fetch-carbon electricitymaps --zone DE --forecast     # the forecast made now
    carbonsim fetch-carbon watttime --zone CAISO_NORTH --signal-index   # prints the current index only

``python -m carbonsim.fetch_carbon ...`` is the same command. A scenario then names the source
(``carbon_source: {kind: electricitymaps_api, zone: DE}``) and its runs read only the cache. Errors (no key,
no network, an error response, a range the API leaves incomplete) print one line ``carbonsim: ...`` and exit
with status 2; nothing is written to the cache unless the whole range arrived.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from carbonsim.data.carbon_api import ApiSeries, CarbonApiError, ElectricityMapsClient, WattTimeClient
from carbonsim.data.carbon_cache import PROVIDERS, cache_folder, cache_root, iso, signal_name, store
from carbonsim.data.errors import DataError


def _utc(text: str, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise DataError(f"{name}: cannot read {text!r}; expected a UTC time such as 2024-03-01T00:00Z") from None
    if stamp.tzinfo is None or stamp.utcoffset() != pd.Timedelta(0):
        raise DataError(f"{name}: expected a time in UTC (suffix Z or +00:00), got {text!r}")
    return stamp.tz_convert("UTC")


def _complete(got: ApiSeries, start: pd.Timestamp, end: pd.Timestamp, what: str) -> pd.Timedelta:
    """The step of a fetched series that must hold a value for every step of ``[start, end)``."""
    values = got.values
    step = got.step
    if step is None:
        if len(values) < 2:
            raise CarbonApiError(f"{what}: the API returned {len(values)} point(s); cannot tell their step")
        step = pd.Timedelta(int(pd.Series(values.index).diff().min().value), unit="ns")
    expected = pd.date_range(start, end, freq=step, inclusive="left")
    missing = expected.difference(pd.DatetimeIndex(values.index))
    if len(missing):
        raise CarbonApiError(
            f"{what}: the API returned no value for {iso(missing[0])} ({len(missing)} of {len(expected)} points of"
            f" {step} missing in [{iso(start)}, {iso(end)})); nothing was cached"
        )
    extra = pd.DatetimeIndex(values.index).difference(expected)
    if len(extra):
        raise CarbonApiError(
            f"{what}: the API returned a point at {iso(extra[0])}, off the {step} grid from {iso(start)}"
        )
    return step


def fetch(
    provider: str,
    zone: str,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    forecast: bool = False,
    last_day: bool = False,
    metric: str = "direct",
    cache: str | Path | None = None,
    base_url: str | None = None,
) -> Path:
    """Fetches a range (or the last day, or the current forecast) and stores it in the cache.

    Args:
        provider: ``electricitymaps`` or ``watttime``.
        zone: Electricity Maps zone (``DE``) or WattTime region (``CAISO_NORTH``).
        start: First instant of a historical range (UTC).
        end: End of the range, exclusive (UTC).
        forecast: Fetch the current forecast instead.
        last_day: Electricity Maps: fetch the last 24 hours (``/history``) instead of a range.
        metric: Electricity Maps emission factors: ``direct`` or ``lca``.
        cache: Cache folder (default :func:`carbonsim.data.carbon_cache.cache_root`).
        base_url: API root to use instead of the public one.

    Returns:
        The cache file written.

    Raises:
        DataError: bad arguments; :class:`CarbonApiError` for a missing key, network or error response.
    """
    if provider not in PROVIDERS:
        raise DataError(f"unknown provider {provider!r}; expected one of {list(PROVIDERS)}")
    root = cache_root(cache)
    modes = sum([forecast, last_day, start is not None or end is not None])
    if modes != 1:
        raise DataError("give exactly one of --start/--end, --history or --forecast")
    signal = signal_name(provider, "forecast" if forecast else "history", metric)
    signal_name(provider, "history", metric)  # validates the metric for WattTime too
    what = f"{provider} {zone} {signal}"
    cache_folder(root, provider, zone, signal)  # rejects a zone that is no plain id before any request
    if provider == "electricitymaps":
        em = ElectricityMapsClient(base_url=base_url)
        if forecast:
            got = em.forecast(zone, metric)
        elif last_day:
            got = em.history(zone, metric)
        else:
            t0, t1 = _range(start, end)
            got = em.past_range(zone, t0, t1, metric)
    else:
        if last_day:
            raise DataError("watttime: --history is for Electricity Maps; give --start and --end")
        wt = WattTimeClient(base_url=base_url)
        if forecast:
            got = wt.forecast(zone)
        else:
            t0, t1 = _range(start, end)
            got = wt.historical(zone, t0, t1)
    if forecast or last_day:
        if len(got.values) == 0:
            raise CarbonApiError(f"{what}: the API returned no points")
        t0 = pd.Timestamp(got.values.index[0])
        step = got.step or pd.Timedelta(hours=1)
        t1 = pd.Timestamp(got.values.index[-1]) + step
    _complete(got, t0, t1, what)
    return store(root, provider, zone, signal, got.values, got.unit, t0, t1)


def _range(start: str | pd.Timestamp | None, end: str | pd.Timestamp | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    if start is None or end is None:
        raise DataError("give both --start and --end (UTC, e.g. 2024-03-01T00:00Z)")
    t0 = start if isinstance(start, pd.Timestamp) else _utc(start, "--start")
    t1 = end if isinstance(end, pd.Timestamp) else _utc(end, "--end")
    if not t1 > t0:
        raise DataError(f"--end {iso(t1)} is not after --start {iso(t0)}")
    if t0 != t0.floor("h") or t1 != t1.floor("h"):
        raise DataError(f"--start and --end must be whole UTC hours (the simulator's step), got {iso(t0)}, {iso(t1)}")
    return t0, t1


def parser() -> argparse.ArgumentParser:
    """The command line of ``carbonsim fetch-carbon``."""
    p = argparse.ArgumentParser(
        prog="carbonsim fetch-carbon",
        description="Fetch carbon intensity from Electricity Maps or WattTime into carbonsim's cache; runs then"
        " read the cache offline. Keys come from the environment: ELECTRICITYMAPS_API_KEY; WATTTIME_USERNAME and"
        " WATTTIME_PASSWORD.",
    )
    p.add_argument("provider", choices=PROVIDERS)
    p.add_argument("--zone", "--region", required=True, help="Electricity Maps zone (DE) or WattTime region")
    p.add_argument("--start", help="first UTC hour of the range, e.g. 2024-03-01T00:00Z")
    p.add_argument("--end", help="end of the range (exclusive), a UTC hour")
    p.add_argument("--metric", choices=("direct", "lca"), default="direct", help="Electricity Maps emission factors")
    p.add_argument("--history", action="store_true", help="Electricity Maps: the last 24 hours")
    p.add_argument("--forecast", action="store_true", help="the forecast made now")
    p.add_argument("--signal-index", action="store_true", help="WattTime: print the current signal index only")
    p.add_argument("--cache", help="cache folder (default $CARBONSIM_CACHE, else ~/.cache/carbonsim)")
    p.add_argument("--base-url", help="API root (default the public API, or $CARBONSIM_<PROVIDER>_URL)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit status (0, or 2 after a one-line error)."""
    args = parser().parse_args(argv)
    try:
        if args.signal_index:
            if args.provider != "watttime":
                raise DataError("--signal-index is a WattTime signal")
            got = WattTimeClient(base_url=args.base_url).signal_index(args.zone)
            point = got.values.index[-1]
            print(
                f"carbonsim: WattTime signal index of {args.zone} at {iso(point)}: {got.values.iloc[-1]:g} ({got.unit})"
            )
            return 0
        path = fetch(
            args.provider,
            args.zone,
            start=args.start,
            end=args.end,
            forecast=args.forecast,
            last_day=args.history,
            metric=args.metric,
            cache=args.cache,
            base_url=args.base_url,
        )
    except DataError as exc:
        print(f"carbonsim: {exc}", file=sys.stderr)
        return 2
    print(f"carbonsim: cached {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
