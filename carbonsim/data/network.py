"""Round-trip latency between Azure regions (P50, ms).

File: ``network/azure_inter_region_rtt_p50_ms_2026-07-30_matrix.csv``, Microsoft's published median
round-trip latency between 54 Azure regions over the 30 days ending 2026-07-30, from the azure-docs page
``articles/networking/azure-network-latency.md`` (CC-BY-4.0, attribute Microsoft; see
``traces/README.md`` 4.1 and ``docs/data/azure_rtt.md``).
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from carbonsim.data._io import at_row, check_fields, read_header, read_text
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike, trace_path
from carbonsim.limits import RTT

RTT_MATRIX_FILE = ("network", "azure_inter_region_rtt_p50_ms_2026-07-30_matrix.csv")


def load_rtt_matrix(path: PathLike | None = None) -> pd.DataFrame:
    """P50 round-trip latency between Azure regions.

    Source: azure-docs ``azure-network-latency.md`` (``ms.date: 07/30/2026``), re-tabulated from the page's
    CSV without changing values. Values are slightly asymmetric (up to 18 ms), exactly as published.

    Validation: the first header cell is ``Source``; region names are non-empty and unique; the rows and the
    columns name the same regions (columns are reordered to the row order if needed); the diagonal is empty
    (Microsoft publishes no intra-region value); every other cell is a number in [0, 1000] ms.

    Args:
        path: File to read instead of the shipped one.

    Returns:
        float64 frame, source region rows (index ``source``) by destination region columns (``destination``),
        in ms; the diagonal is NaN by design. The shipped file has 54 regions.

    Raises:
        DataError: on any violation above, naming the row (and file line) and column.
    """
    file = Path(path) if path is not None else trace_path(*RTT_MATRIX_FILE)
    header = read_header(file)
    if not header or header[0] != "Source":
        raise DataError(f"{file}: line 1: unexpected header {header[:3]}...; expected first cell 'Source'")
    columns = header[1:]
    _check_names(columns, file, "header (line 1)")
    text = read_text(file)
    check_fields(text, len(header), file)
    try:
        raw = pd.read_csv(io.StringIO(text), index_col=0, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{file}: cannot parse as CSV: {exc}") from exc
    rows = [str(r) for r in raw.index]
    _check_names(rows, file, "first column")
    if set(rows) != set(columns):
        raise DataError(
            f"{file}: rows and columns name different regions; only in rows: {sorted(set(rows) - set(columns))},"
            f" only in columns: {sorted(set(columns) - set(rows))}; expected a square matrix"
        )
    raw = raw[rows]
    values = np.full((len(rows), len(rows)), np.nan)
    for i, source in enumerate(rows):
        for j, dest in enumerate(rows):
            cell = str(raw.iat[i, j]).strip()
            where = f"{file}: {at_row(i + 1)}, source {source!r}, destination {dest!r}"
            if i == j:
                if cell:
                    raise DataError(f"{where}: diagonal cell holds {cell!r}; expected it empty")
                continue
            if not cell:
                raise DataError(f"{where}: empty cell; expected a round-trip time in {RTT.describe()}")
            try:
                value = float(cell)
            except ValueError:
                raise DataError(f"{where}: {cell!r} is not a number; expected {RTT.unit}") from None
            if not math.isfinite(value):
                raise DataError(f"{where}: {cell!r} is not a finite number; expected a round-trip time in {RTT.unit}")
            if not RTT.low <= value <= RTT.high:
                kind = "negative value" if value < 0 else "value"
                raise DataError(f"{where}: {kind} {value:g} outside the plausible range {RTT.describe()}")
            values[i, j] = value
    return pd.DataFrame(
        values,
        index=pd.Index(rows, name="source"),
        columns=pd.Index(rows, name="destination"),
    )


def _check_names(names: list[str], file: Path, where: str) -> None:
    seen: set[str] = set()
    for k, name in enumerate(names):
        if not name.strip():
            raise DataError(f"{file}: {where}: region name {k + 1} is empty; expected a region name")
        if name in seen:
            raise DataError(f"{file}: {where}: region {name!r} appears twice; expected unique region names")
        seen.add(name)


@lru_cache(maxsize=1)
def _shipped_matrix() -> pd.DataFrame:
    # Read once for rtt_ms lookups; never handed out, so callers cannot modify the cached copy.
    return load_rtt_matrix()


def regions(matrix: pd.DataFrame | None = None) -> list[str]:
    """Azure regions of the RTT matrix (of ``matrix``, or of the shipped file)."""
    m = matrix if matrix is not None else _shipped_matrix()
    return [str(r) for r in m.index]


def rtt_ms(
    source: str,
    dest: str,
    *,
    matrix: pd.DataFrame | None = None,
    same_region_ms: float | None = None,
) -> float:
    """Published P50 round-trip time from ``source`` to ``dest``, in ms.

    Args:
        source: Azure region name as published, e.g. ``"West US"``.
        dest: Azure region name, e.g. ``"Germany West Central"``.
        matrix: A frame from :func:`load_rtt_matrix` (default: the shipped file, read once).
        same_region_ms: Value to return when ``source == dest``; the data have none, so without it such a
            lookup raises rather than invent one.

    Returns:
        Round-trip time in ms.

    Raises:
        DataError: unknown region (listing the valid ones), or ``source == dest`` without ``same_region_ms``.
    """
    m = matrix if matrix is not None else _shipped_matrix()
    for role, name in (("source", source), ("destination", dest)):
        if name not in m.index:
            raise DataError(f"unknown {role} region {name!r}; valid regions: {[str(r) for r in m.index]}")
    if source == dest:
        if same_region_ms is None:
            raise DataError(
                f"no intra-region round-trip time for {source!r} in the Azure data (the diagonal is empty);"
                " pass same_region_ms= to choose one"
            )
        return float(same_region_ms)
    return float(cast(float, m.at[source, dest]))


__all__ = ["load_rtt_matrix", "regions", "rtt_ms"]
