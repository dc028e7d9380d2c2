"""Grid carbon intensity: Electricity Maps (average), EIA-930 (average, US) and WattTime MOER (marginal).

Files (see ``traces/README.md`` and ``docs/data/``):

* ``carbon_intensity/electricitymaps_hourly/<ZONE>_2021-2024_hourly.csv.gz``: Electricity Maps hourly
  consumption-based intensity, 2021-2024, from HewlettPackard/sustain-cluster (MIT; data from the Electricity
  Maps data portal, attribute "Electricity Maps").
* ``carbon_intensity/eia930_sustaindc_hourly_2022.csv.gz``: average intensity of eight US balancing
  authorities in 2022, computed by the SustainDC authors (HewlettPackard/dc-rl, MIT) from EIA-930 hourly
  generation by fuel (US public domain).
* ``carbon_intensity/watttime_moer_caiso_north_2023-06-08_2023-07-08_5min.csv.gz``: WattTime marginal
  operating emissions rate for CAISO_NORTH at 5-minute resolution, from dos-group/vessim (MIT; WattTime terms
  apply to the data).
"""

from __future__ import annotations

from pathlib import Path
from typing import overload

import pandas as pd

from carbonsim.data._io import at_row, read_csv
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike, check_name, names_with_suffix, trace_path
from carbonsim.data.timeseries import (
    CARBON_INTENSITY,
    HOUR,
    FillMethod,
    validate_series,
)
from carbonsim.data.timeseries import (
    fill_gaps as _fill_gaps,
)
from carbonsim.limits import MARGINAL_EMISSIONS

ELECTRICITYMAPS_DIR = ("carbon_intensity", "electricitymaps_hourly")
_EM_SUFFIX = "_2021-2024_hourly.csv.gz"
ELECTRICITYMAPS_HEADER = (
    "Datetime (UTC)",
    "Country",
    "Zone Name",
    "Zone Id",
    "Carbon Intensity gCO₂eq/kWh (direct)",
    "Carbon Intensity gCO₂eq/kWh (LCA)",
    "Low Carbon Percentage",
    "Renewable Percentage",
    "Data Source",
    "Data Estimated",
    "Data Estimation Method",
)
ELECTRICITYMAPS_KINDS = {
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
    "lca": "Carbon Intensity gCO₂eq/kWh (LCA)",
}
"""Intensity kind -> column: ``direct`` is operational (combustion) emissions, ``lca`` life-cycle emissions."""

# Three files carry a ``Zone Id`` different from the zone in their file name; these are the ids found in
# them (Electricity Maps' own zone ids at the time of export). Any other mismatch is an error.
ELECTRICITYMAPS_ZONE_IDS = {"BR-SP": "BR-CS", "CL-SIC": "CL-SEN", "DE-LU": "DE"}

EIA930_FILE = ("carbon_intensity", "eia930_sustaindc_hourly_2022.csv.gz")
EIA930_HEADER = (
    "balancing_authority",
    "timestamp_utc",
    "WND",
    "SUN",
    "WAT",
    "OIL",
    "NG",
    "COL",
    "NUC",
    "OTH",
    "avg_CI",
)

WATTTIME_FILE = ("carbon_intensity", "watttime_moer_caiso_north_2023-06-08_2023-07-08_5min.csv.gz")
WATTTIME_HEADER = ("oootime", "Caiso_North")
WATTTIME_STEP = pd.Timedelta(minutes=5)
MOER = MARGINAL_EMISSIONS
"""Wide enough for either candidate unit of the WattTime file (:data:`carbonsim.limits.MARGINAL_EMISSIONS`)."""


def electricitymaps_path(zone: str, root: PathLike | None = None) -> Path:
    """Path of the Electricity Maps file of ``zone`` below the trace folder ``root`` (default: shipped)."""
    return trace_path(*ELECTRICITYMAPS_DIR, f"{check_name(zone, 'Electricity Maps zone')}{_EM_SUFFIX}", root=root)


def available_zones(root: PathLike | None = None) -> list[str]:
    """Electricity Maps zones with a file in the trace folder.

    Args:
        root: Trace folder (default: :func:`~carbonsim.data.paths.traces_dir`).

    Returns:
        Zone ids, sorted (e.g. ``["AU-NSW", ..., "ZA"]``).
    """
    return names_with_suffix(*ELECTRICITYMAPS_DIR, suffix=_EM_SUFFIX, root=root)


def load_electricitymaps(zone: str, kind: str = "direct", path: PathLike | None = None) -> pd.Series:
    """Hourly average grid carbon intensity of an Electricity Maps zone, 2021-2024.

    Source: Electricity Maps data portal via HewlettPackard/sustain-cluster (``traces/README.md`` 1.1). The
    intensity is the consumption-based (flow-traced) **average**, not the marginal rate. ``JP-TK`` and
    ``IN-WE`` are Electricity Maps model estimates for every hour (``Data Estimated = true``).

    The file's ``Datetime (UTC)`` column holds naive timestamps; the header declares them UTC, so they are
    read as UTC (timestamps with a non-zero offset are rejected). The file's ``Zone Id`` must equal ``zone``,
    except for the three files listed in :data:`ELECTRICITYMAPS_ZONE_IDS`.

    Args:
        zone: Electricity Maps zone id, e.g. ``"DE-LU"`` (see :func:`available_zones`).
        kind: ``"direct"`` (operational emissions) or ``"lca"`` (life-cycle emissions).
        path: File to read instead of the shipped one.

    Returns:
        Intensity in gCO2eq/kWh, float64, on an hourly ``datetime64[ns, UTC]`` index (on the hour), named
        ``zone``. The shipped files span 2021-01-01 00:00 to 2024-12-31 23:00 UTC (35,064 hours).

    Raises:
        DataError: unknown zone or kind; unexpected header; a timestamp that is malformed, non-UTC,
            duplicated, out of order, off the hour or missing (gap); a ``Zone Id`` other than expected; an
            empty, non-numeric, negative or implausible (> 2,000 gCO2eq/kWh) value in the chosen column.
    """
    if kind not in ELECTRICITYMAPS_KINDS:
        raise DataError(f"unknown Electricity Maps kind {kind!r}; expected one of {sorted(ELECTRICITYMAPS_KINDS)}")
    file = Path(path) if path is not None else electricitymaps_path(zone)
    if path is None and not file.is_file():
        raise DataError(f"{file}: no Electricity Maps file for zone {zone!r}; available zones: {available_zones()}")
    column = ELECTRICITYMAPS_KINDS[kind]
    df = read_csv(
        file,
        ELECTRICITYMAPS_HEADER,
        usecols=("Datetime (UTC)", "Zone Id", column),
        dtype={"Datetime (UTC)": str, "Zone Id": str},
    )
    expected_id = ELECTRICITYMAPS_ZONE_IDS.get(zone, zone)
    wrong = (df["Zone Id"] != expected_id).to_numpy()
    if wrong.any():
        i = int(wrong.argmax())
        raise DataError(
            f"{file}: {at_row(i + 1)}: Zone Id {df['Zone Id'].iloc[i]!r}; expected {expected_id!r} for zone {zone!r}"
        )
    return validate_series(
        df["Datetime (UTC)"],
        df[column],
        source=str(file),
        time_column="Datetime (UTC)",
        value_column=column,
        valid=CARBON_INTENSITY,
        name=zone,
        naive="utc",
    )


@overload
def load_eia930(ba: str, path: PathLike | None = None, *, fill_gaps: None = None) -> pd.Series: ...


@overload
def load_eia930(ba: str, path: PathLike | None = None, *, fill_gaps: FillMethod) -> tuple[pd.Series, int]: ...


def load_eia930(
    ba: str, path: PathLike | None = None, *, fill_gaps: FillMethod | None = None
) -> pd.Series | tuple[pd.Series, int]:
    """Hourly average carbon intensity (``avg_CI``) of a US balancing authority in 2022, from EIA-930.

    Source: computed by the SustainDC authors (HewlettPackard/dc-rl) from EIA-930 hourly net generation by
    fuel (``traces/README.md`` 1.2); an independent second source for the US regions.

    The file has empty cells: ``avg_CI`` (and the generation columns) are empty for 3 hours of ``CISO``, 3 of
    ``MISO`` and 23 of ``PJM`` (22 of them in a row from 2022-03-13 07:00 UTC, the US daylight-saving switch).
    They raise :class:`DataError` unless ``fill_gaps`` is given; then they are filled with
    :func:`~carbonsim.data.timeseries.fill_gaps` and the count is returned.

    Args:
        ba: Balancing authority: ``AZPS``, ``BPAT``, ``CISO``, ``ERCO``, ``MISO``, ``NYIS``, ``PJM``, ``SOCO``.
        path: File to read instead of the shipped one.
        fill_gaps: ``None`` (default) to reject empty cells, or ``"linear"``/``"ffill"`` to fill them.

    Returns:
        Without ``fill_gaps``: intensity in gCO2eq/kWh, float64, on an hourly ``datetime64[ns, UTC]`` index,
        named ``ba`` (the shipped file spans 2022-01-01 00:00 to 2022-12-31 23:00 UTC, 8,760 hours).
        With ``fill_gaps``: ``(series, n_filled)``, where ``n_filled`` is the number of hours filled.

    Raises:
        DataError: unknown balancing authority; unexpected header; a timestamp that is naive (no offset),
            non-UTC, malformed, duplicated, out of order, off the hour or missing; an empty cell (without
            ``fill_gaps``), non-numeric, negative or implausible value.
    """
    file = Path(path) if path is not None else trace_path(*EIA930_FILE)
    df = read_csv(
        file,
        EIA930_HEADER,
        usecols=("balancing_authority", "timestamp_utc", "avg_CI"),
        dtype={"balancing_authority": str, "timestamp_utc": str},
    )
    # A row without a balancing authority would silently belong to none; reject it instead.
    unnamed = df["balancing_authority"].isna().to_numpy()
    if unnamed.any():
        i = int(unnamed.argmax())
        raise DataError(f"{file}: {at_row(i + 1)}: empty cell in column 'balancing_authority'; expected a BA code")
    mask = (df["balancing_authority"] == ba).to_numpy()
    if not mask.any():
        found = sorted(str(b) for b in df["balancing_authority"].dropna().unique())
        raise DataError(f"{file}: no rows for balancing authority {ba!r}; the file has {found}")
    rows = df.index.to_numpy()[mask] + 1
    sub = df[mask]
    series = validate_series(
        sub["timestamp_utc"],
        sub["avg_CI"],
        source=str(file),
        time_column="timestamp_utc",
        value_column="avg_CI",
        valid=CARBON_INTENSITY,
        name=ba,
        rows=rows,
        allow_nan=fill_gaps is not None,
    )
    if fill_gaps is None:
        return series
    return _fill_gaps(series, fill_gaps, step=HOUR)


def load_watttime_moer(path: PathLike | None = None) -> pd.Series:
    """WattTime marginal operating emissions rate (MOER) for CAISO_NORTH, 2023-06-08 to 2023-07-08, 5-minute.

    Source: dos-group/vessim ``datasets/watttime_example.csv`` (``traces/README.md`` 1.3). This is a
    **marginal** signal, unlike the average intensities of :func:`load_electricitymaps` and
    :func:`load_eia930`.

    **Unit unverified.** The file states no unit. Its values (35 to 463, median 421) fit gCO2/kWh with gas on
    the margin better than WattTime's API unit of lbs CO2/MWh, and vessim documents its later WattTime data
    set for the same period as converted from lbs/MWh to g/kWh; the value is returned unchanged, so check
    this before mixing it with the gCO2eq/kWh series. The plausible-range check (0 to 2,500) holds for either
    unit.

    The timestamps (column ``oootime``, verbatim from the source) are naive; they are read as UTC, which is
    what WattTime's API reports and what the data show (the MOER drops between 14:00 and 24:00 UTC, i.e.
    during Californian daylight, when solar is on the margin).

    Args:
        path: File to read instead of the shipped one.

    Returns:
        MOER as float64 on a 5-minute ``datetime64[ns, UTC]`` index, named ``"CAISO_NORTH"``; the shipped
        file spans 2023-06-08 00:00 to 2023-07-08 23:55 UTC (8,928 points).

    Raises:
        DataError: unexpected header; a timestamp that is malformed, non-UTC, duplicated, out of order, off
            the 5-minute grid or missing; an empty, non-numeric, negative or implausible value.
    """
    file = Path(path) if path is not None else trace_path(*WATTTIME_FILE)
    df = read_csv(file, WATTTIME_HEADER, dtype={"oootime": str})
    return validate_series(
        df["oootime"],
        df["Caiso_North"],
        source=str(file),
        time_column="oootime",
        value_column="Caiso_North",
        valid=MOER,
        name="CAISO_NORTH",
        step=WATTTIME_STEP,
        naive="utc",
    )


__all__ = [
    "ELECTRICITYMAPS_KINDS",
    "ELECTRICITYMAPS_ZONE_IDS",
    "available_zones",
    "electricitymaps_path",
    "load_eia930",
    "load_electricitymaps",
    "load_watttime_moer",
]
