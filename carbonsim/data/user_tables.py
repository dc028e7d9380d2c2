"""Reading the user's own tables (CSV, gzip'd CSV, Parquet, JSON) strictly, and parsing their timestamps.

Only the one file named is opened, and only local files: a path must name an existing regular file (not a
folder, which pyarrow would read as a data set, and not a URL, which pandas would download). CSV files are
read with the standard library's ``csv`` module so that every line can be checked: a line with more or
fewer fields than the header is an error naming the line, never a silently shifted or missing value.

Rows are numbered like the shipped loaders do (:func:`carbonsim.data._io.at_row`): the 1-based data row and,
for CSV, its line. For Parquet and JSON there are no lines, and messages say ``row N`` or ``entry N``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim.data._io import at_row
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike
from carbonsim.data.timeseries import ValueRange, check_values

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".json",)

# ISO 8601 date and time with optional seconds, fraction (up to 9 digits) and UTC offset.
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?"
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
_NS_PER = {"s": 1e9, "ms": 1e6, "us": 1e3}
_ROW = re.compile(r"row (\d+) \(line \d+\)")
_ROWS = re.compile(r"rows ([\d, ]+) \(lines [\d, ]+\)")

RowNumbers = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Table:
    """A user's table as read: its columns as text (CSV, JSON) or typed (Parquet), with where rows came from.

    Attributes:
        path: The file.
        frame: One column per field, in file order; the index is the 0-based data row.
        rows: 1-based data row (or JSON entry) of each row of ``frame``.
        entry: What a row is called in messages for files without lines: ``row`` or ``entry``; empty for CSV
            (whose messages name the line too).
    """

    path: Path
    frame: pd.DataFrame
    rows: RowNumbers
    entry: str = ""

    def where(self, i: int) -> str:
        """Location of row ``i`` of ``frame`` for a message (``file: row 3 (line 4)``)."""
        row = int(self.rows[i])
        return f"{self.path}: {f'{self.entry} {row}' if self.entry else at_row(row)}"

    def column(self, name: str, what: str = "column") -> pd.Series:
        """The column ``name``.

        Raises:
            DataError: naming the file, the column asked for and the columns the file has.
        """
        if name not in self.frame.columns:
            raise DataError(
                f"{self.path}: no {what} {name!r}; the file has columns {[str(c) for c in self.frame.columns]}"
            )
        return self.frame[name]

    def subset(self, mask: npt.NDArray[np.bool_]) -> Table:
        """The rows where ``mask`` holds (their row numbers kept)."""
        return Table(self.path, self.frame[mask].reset_index(drop=True), self.rows[mask], self.entry)


@contextlib.contextmanager
def located(table: Table) -> Iterator[None]:
    """Rewrites the shared validators' ``row N (line M)`` into ``entry N`` for files without lines."""
    try:
        yield
    except DataError as exc:
        if not table.entry:
            raise
        text = _ROWS.sub(lambda m: f"{table.entry}s {m.group(1)}", str(exc))
        text = _ROW.sub(lambda m: f"{table.entry} {m.group(1)}", text)
        raise DataError(text) from None


def local_file(path: PathLike, what: str = "file") -> Path:
    """The path of an existing local regular file.

    Raises:
        DataError: if ``path`` is a URL, does not exist or is not a regular file.
    """
    text = str(path)
    if "://" in text:
        raise DataError(f"{text}: expected a local {what}, not a URL")
    file = Path(text)
    if not file.exists():
        raise DataError(f"{file}: {what} not found (relative paths start at the working directory {Path.cwd()})")
    if not file.is_file():
        raise DataError(f"{file}: expected a {what}, found a folder or special file")
    return file


def _suffix(file: Path) -> str:
    name = file.name.lower()
    return ".csv.gz" if name.endswith(".csv.gz") else file.suffix.lower()


def _open_text(file: Path) -> IO[str]:
    # utf-8-sig: spreadsheet programs write a byte-order mark at the start of CSV files.
    if file.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(file, "rb"), encoding="utf-8-sig", newline="")
    return file.open(encoding="utf-8-sig", newline="")


def read_csv_strict(file: Path) -> Table:
    """Reads a CSV file whose every line must have as many fields as its header.

    Empty cells become missing values; everything else stays text (the caller parses each column).
    Blank lines at the end of the file are ignored; a blank line between rows is an error.

    Raises:
        DataError: unreadable file, no header, an empty or repeated column name, or a line with the wrong
            number of fields (naming the line, the count found and the count expected).
    """
    try:
        with _open_text(file) as fh:
            reader = csv.reader(fh, strict=True)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{file}: file is empty; expected a header line")
            header = [h.strip() for h in header]
            if any(not h for h in header):
                raise DataError(f"{file}: line 1: empty column name in header {header}")
            repeated = sorted({h for h in header if header.count(h) > 1})
            if repeated:
                raise DataError(f"{file}: line 1: column(s) {repeated} appear twice in the header")
            lines: list[list[str]] = []
            blank_at = 0
            for fields in reader:
                if not fields:
                    blank_at = blank_at or reader.line_num
                    continue
                if blank_at:
                    raise DataError(f"{file}: line {blank_at}: blank line between rows; expected {len(header)} fields")
                if len(fields) != len(header):
                    row = len(lines) + 1
                    raise DataError(
                        f"{file}: {at_row(row)}: {len(fields)} field(s); expected {len(header)} as in the header"
                        f" {header}"
                    )
                lines.append(fields)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{file}: cannot read as CSV: {exc}") from exc
    if not lines:
        raise DataError(f"{file}: no data rows; expected at least one")
    columns = list(zip(*lines, strict=True))
    frame = pd.DataFrame(
        {h: pd.Series([v or None for v in col], dtype=object) for h, col in zip(header, columns, strict=True)}
    )
    return Table(file, frame, np.arange(1, len(lines) + 1, dtype=np.int64))


def read_parquet(file: Path) -> Table:
    """Reads a Parquet file (opened here, so that only this file is read).

    Raises:
        DataError: if the file is not valid Parquet or has no rows.
    """
    import pyarrow.parquet as pq

    try:
        with file.open("rb") as fh:
            frame = pq.read_table(fh).to_pandas()
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError...) for a bad file
        raise DataError(f"{file}: cannot read as Parquet: {exc}") from exc
    if len(frame) == 0:
        raise DataError(f"{file}: no data rows; expected at least one")
    frame.columns = [str(c) for c in frame.columns]
    return Table(file, frame.reset_index(drop=True), np.arange(1, len(frame) + 1, dtype=np.int64), "row")


def read_json(file: Path) -> Any:
    """Parses a JSON file.

    Raises:
        DataError: naming the line and column of a syntax error.
    """
    try:
        with file.open(encoding="utf-8-sig") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}: line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot read as JSON: {exc}") from exc


def json_table(file: Path, entries: Any, where: str, fields: Sequence[str]) -> Table:
    """A table from a JSON list of objects, one row per entry.

    Args:
        file: The JSON file, for messages.
        entries: The parsed list.
        where: Where the list sits in the file, for messages (e.g. ``'data'``).
        fields: Fields every entry must have.

    Raises:
        DataError: if ``entries`` is not a non-empty list of objects each with ``fields``.
    """
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{file}: {where}: expected a non-empty list of objects, got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(f"{file}: {where}: entry {i + 1} is {type(entry).__name__}; expected an object")
        missing = [f for f in fields if f not in entry]
        if missing:
            raise DataError(f"{file}: {where}: entry {i + 1} has no field(s) {missing}; it has {sorted(entry)}")
    frame = pd.DataFrame({f: pd.Series([e[f] for e in entries], dtype=object) for f in fields})
    return Table(file, frame, np.arange(1, len(entries) + 1, dtype=np.int64), "entry")


def read_table(path: PathLike, what: str = "file") -> Table:
    """Reads a CSV (``.csv``, ``.csv.gz``, ``.txt``) or Parquet (``.parquet``, ``.pq``) file.

    Raises:
        DataError: see :func:`local_file`, :func:`read_csv_strict` and :func:`read_parquet`, or an unknown
            file type.
    """
    file = local_file(path, what)
    suffix = _suffix(file)
    if suffix in CSV_SUFFIXES:
        return read_csv_strict(file)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(file)
    raise DataError(f"{file}: unknown file type {suffix!r}; expected .csv, .csv.gz or .parquet")


def _localise(naive: pd.DatetimeIndex, timezone: str, table: Table, positions: np.ndarray, column: str) -> pd.Series:
    stamps = naive.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    bad = np.flatnonzero(stamps.isna())
    if bad.size:
        i = int(positions[bad[0]])
        raise DataError(
            f"{table.where(i)}: timestamp {naive[bad[0]]} in column {column!r} does not exist or is ambiguous in"
            f" {timezone} (a daylight-saving switch); write it with a UTC offset"
        )
    return pd.Series(stamps.tz_convert("UTC"), index=positions)


def parse_times(table: Table, column: str, *, timezone: str = "UTC", time_unit: str = "iso") -> pd.DatetimeIndex:
    """Parses a column of timestamps into UTC.

    ISO 8601 text with a UTC offset (``Z``, ``+01:00``) is converted to UTC; text without one is read in
    ``timezone``. Numbers (``time_unit`` ``s``, ``ms`` or ``us``) count from the Unix epoch. Parquet
    timestamp columns are taken as typed (naive ones in ``timezone``).

    Returns:
        ``datetime64[ns, UTC]`` index, one entry per row, in row order.

    Raises:
        DataError: at the first empty, malformed, impossible, non-existent or ambiguous timestamp.
    """
    raw = table.column(column, "timestamp column")
    if time_unit != "iso":
        with located(table):
            numbers = check_values(
                raw,
                source=str(table.path),
                column=column,
                valid=ValueRange(-np.inf, np.inf, f"time in {time_unit}"),
                rows=table.rows,
            )
        ns = np.rint(numbers * _NS_PER[time_unit]).astype(np.int64)
        return pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).as_unit("ns")
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(raw).tz_convert("UTC").as_unit("ns")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        index = pd.DatetimeIndex(raw)
        return pd.DatetimeIndex(_localise(index, timezone, table, np.arange(len(raw)), column)).as_unit("ns")
    text = raw.astype("str").where(raw.notna()).str.strip()
    missing = text.isna().to_numpy()
    if missing.any():
        raise DataError(f"{table.where(int(np.argmax(missing)))}: empty timestamp in column {column!r}")
    bad = ~text.str.fullmatch(_TIMESTAMP).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{table.where(i)}: cannot parse timestamp {text.iloc[i]!r} in column {column!r}; expected ISO 8601"
            " such as 2024-01-01T00:00:00Z"
        )
    has_offset = text.str.contains(_OFFSET).to_numpy(dtype=bool)
    parsed = pd.Series(pd.NaT, index=np.arange(len(text)), dtype="datetime64[ns, UTC]")
    if has_offset.any():
        with_offset = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
        parsed[has_offset] = with_offset.to_numpy()
    if (~has_offset).any():
        positions = np.flatnonzero(~has_offset)
        naive = pd.to_datetime(text[~has_offset], format="ISO8601", errors="coerce")
        invalid = np.flatnonzero(naive.isna().to_numpy())
        if invalid.size:
            i = int(positions[invalid[0]])
            raise DataError(f"{table.where(i)}: impossible timestamp {text.iloc[i]!r} in column {column!r}")
        parsed[~has_offset] = _localise(pd.DatetimeIndex(naive), timezone, table, positions, column).to_numpy()
    invalid = np.flatnonzero(parsed.isna().to_numpy())
    if invalid.size:
        i = int(invalid[0])
        raise DataError(f"{table.where(i)}: impossible timestamp {text.iloc[i]!r} in column {column!r}")
    return pd.DatetimeIndex(parsed).as_unit("ns")


__all__ = [
    "Table",
    "json_table",
    "local_file",
    "located",
    "parse_times",
    "read_csv_strict",
    "read_json",
    "read_parquet",
    "read_table",
]
