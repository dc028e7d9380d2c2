"""Hourly wholesale electricity prices (USD/MWh), 2020-2024, for 22 markets.

File: ``electricity_prices/hourly_usd_per_mwh/<MARKET>_2020-2024_hourly_prices.csv.gz``, the standardized
price series of HewlettPackard/sustain-cluster (MIT), compiled from AEMO, CAISO OASIS, PJM, NYISO, ERCOT,
ENTSO-E, OMIE, RTE, JEPX, EMC (Singapore) and others, converted to USD at fixed exchange rates (see
``traces/README.md`` 2 and ``docs/data/prices.md``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from carbonsim.data._io import read_csv
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike, check_name, names_with_suffix, trace_path
from carbonsim.data.timeseries import ON_THE_HOUR, PRICE, validate_series

PRICES_DIR = ("electricity_prices", "hourly_usd_per_mwh")
_SUFFIX = "_2020-2024_hourly_prices.csv.gz"
PRICE_HEADER = ("Datetime (UTC)", "Datetime (Local)", "Price (USD/MWh)")

PRICE_PHASE = {"IN-WE": pd.Timedelta(minutes=30)}
"""Markets whose hourly prices are stamped off the hour, and where: India's local hours (UTC+05:30) start at
hh:30 UTC. Every other market is stamped on the hour."""


def price_path(market: str, root: PathLike | None = None) -> Path:
    """Path of the price file of ``market`` below the trace folder ``root`` (default: shipped)."""
    return trace_path(*PRICES_DIR, f"{check_name(market, 'price market')}{_SUFFIX}", root=root)


def available_markets(root: PathLike | None = None) -> list[str]:
    """Markets with a price file in the trace folder.

    Args:
        root: Trace folder (default: :func:`~carbonsim.data.paths.traces_dir`).

    Returns:
        Market ids, sorted (e.g. ``["AT", "AU-NSW", ..., "ZA"]``).
    """
    return names_with_suffix(*PRICES_DIR, suffix=_SUFFIX, root=root)


def load_price(market: str, path: PathLike | None = None, *, floor_to_hour: bool = False) -> pd.Series:
    """Hourly electricity price of a market.

    Source: HewlettPackard/sustain-cluster standardized prices (``traces/README.md`` 2). Caveats stated by
    the source: gaps were filled upstream by time interpolation; currencies were converted at fixed rates
    (2025-03-27); CAISO is the day-ahead price, the EU markets ENTSO-E/OMIE/RTE day-ahead; **ZA is an Eskom
    time-of-use tariff, not a market price**. Negative prices are real and kept.

    ``IN-WE`` is stamped at hh:30 UTC (the start of India's local hours, UTC+05:30). By default the real
    timestamps are kept and validated as a regular hourly grid with a 30-minute phase (see
    :data:`PRICE_PHASE`); every other market must be on the hour. ``floor_to_hour=True`` moves each
    timestamp down to the start of its UTC hour after validation (IN-WE's price for 00:30-01:30 is then
    labelled 00:00), which lines the series up with the other hourly signals at the cost of a 30-minute
    shift; it changes nothing for markets stamped on the hour.

    The ``Datetime (Local)`` column is not used (it encodes the same instant with the local offset).

    Args:
        market: Market id, e.g. ``"DE-LU"`` (see :func:`available_markets`).
        path: File to read instead of the shipped one.
        floor_to_hour: Label each price with the start of its UTC hour (see above).

    Returns:
        Price in USD/MWh, float64, on an hourly ``datetime64[ns, UTC]`` index, named ``market``; the shipped
        files span 2020-01-01 00:00 (IN-WE 00:30) to 2024-12-31 23:00 (IN-WE 23:30) UTC, 43,848 hours.

    Raises:
        DataError: unknown market; unexpected header; a timestamp that is naive (no offset), non-UTC,
            malformed, duplicated, out of order, off the expected hourly grid or missing; an empty,
            non-numeric or implausible value (outside -1,000 to 20,000 USD/MWh).
    """
    file = Path(path) if path is not None else price_path(market)
    if path is None and not file.is_file():
        raise DataError(f"{file}: no price file for market {market!r}; available markets: {available_markets()}")
    df = read_csv(file, PRICE_HEADER, usecols=("Datetime (UTC)", "Price (USD/MWh)"), dtype={"Datetime (UTC)": str})
    series = validate_series(
        df["Datetime (UTC)"],
        df["Price (USD/MWh)"],
        source=str(file),
        time_column="Datetime (UTC)",
        value_column="Price (USD/MWh)",
        valid=PRICE,
        name=market,
        phase=PRICE_PHASE.get(market, ON_THE_HOUR),
    )
    if floor_to_hour:
        series.index = pd.DatetimeIndex(series.index).floor("h").rename(series.index.name)
    return series


__all__ = ["PRICE_PHASE", "available_markets", "load_price", "price_path"]
