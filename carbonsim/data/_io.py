"""Reading CSV files (plain or gzip'd) and formatting where in a file a problem is."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError


def at_row(row: int) -> str:
    """Location of a 1-based data row, with its file line (the header is line 1)."""
    return f"row {row} (line {row + 1})"


def at_rows(rows: Sequence[int]) -> str:
    """Location of several 1-based data rows, with their file lines."""
    return f"rows {', '.join(str(r) for r in rows)} (lines {', '.join(str(r + 1) for r in rows)})"


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file, exactly as written.

    Raises:
        DataError: if the file is missing, empty, not valid gzip or not UTF-8.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with _open_text(path) as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text at byte {exc.start}; expected a UTF-8 CSV file") from exc
    except (OSError, EOFError, zlib.error, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the header line: {exc}") from exc
    if header is None:
        raise DataError(f"{path}: file is empty; expected a header line")
    return header


def check_header(found: Sequence[str], expected: Sequence[str], source: Path | str) -> None:
    """Raises unless ``found`` is exactly ``expected`` (names, order and count).

    Raises:
        DataError: naming the header found, the expected one and the missing and unexpected names.
    """
    if list(found) == list(expected):
        return
    missing = [c for c in expected if c not in found]
    unexpected = [c for c in found if c not in expected]
    detail = f"missing {missing}, unexpected {unexpected}" if missing or unexpected else "columns out of order"
    raise DataError(f"{source}: line 1: unexpected header {list(found)}; expected {list(expected)} ({detail})")


def read_text(path: Path) -> str:
    """The whole text of a (possibly gzip'd) UTF-8 file.

    Raises:
        DataError: if it cannot be read, is truncated or corrupt gzip, or is not UTF-8.
    """
    try:
        with _open_text(path) as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        kind = "gzip" if path.suffix == ".gz" else "text"
        raise DataError(f"{path}: cannot parse as CSV: expected a complete {kind} file, got: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text at byte {exc.start}; expected a UTF-8 CSV file") from exc


def check_fields(text: str, n_fields: int, source: Path | str) -> None:
    """Raises unless every data line of a CSV text has exactly ``n_fields`` fields, like its header.

    pandas fills a short line with NaN and, when told to read some columns only, takes a long line's fields
    by position: either way a value lands in the wrong column without a word. This check runs first. Blank
    lines at the end of the file are allowed; a blank line between data lines is not (it would shift every
    row number after it).

    Args:
        text: The whole file, header included.
        n_fields: Fields of the header.
        source: File name for messages.

    Raises:
        DataError: naming the data row and file line, the number of fields found and expected.
    """
    if '"' not in text and "\r" not in text:
        _check_plain_fields(text, n_fields, source)
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 0
    blank_line: int | None = None
    try:
        next(reader, None)
        for fields in reader:
            if not fields:
                blank_line = blank_line or reader.line_num
                continue
            row += 1
            if blank_line is not None:
                raise DataError(
                    f"{source}: line {blank_line}: blank line between data rows; expected {n_fields} fields on"
                    " every line up to the end of the data"
                )
            if len(fields) != n_fields:
                raise DataError(
                    f"{source}: row {row} (line {reader.line_num}): {len(fields)} field(s); expected {n_fields},"
                    f" as many as the header"
                )
    except csv.Error as exc:
        raise DataError(f"{source}: line {reader.line_num + 1}: not valid CSV: {exc}") from exc


def _check_plain_fields(text: str, n_fields: int, source: Path | str) -> None:
    """:func:`check_fields` for a text without quotes or carriage returns: one line is one row (fast path)."""
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if data.size and data[-1] != ord("\n"):
        ends = np.append(ends, data.size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    commas = np.flatnonzero(data == ord(","))
    per_line = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    counts = np.where(ends == starts, 0, per_line + 1)[1:]  # fields per data line; 0 for a blank line
    wrong = np.flatnonzero(counts != n_fields)
    if not wrong.size:
        return
    bad = int(wrong[0])
    if not counts[bad:].any():  # only blank lines at the end
        return
    if counts[bad] == 0:
        raise DataError(
            f"{source}: line {bad + 2}: blank line between data rows; expected {n_fields} fields on every line up to"
            " the end of the data"
        )
    raise DataError(
        f"{source}: row {bad + 1} (line {bad + 2}): {counts[bad]} field(s); expected {n_fields}, as many as the header"
    )


def read_csv(
    path: Path,
    expected_header: Sequence[str],
    *,
    usecols: Sequence[str] | None = None,
    dtype: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Reads a CSV file whose header must be exactly ``expected_header``.

    Every data line must have as many fields as the header (:func:`check_fields`), before pandas reads
    it. Cells pandas reads as missing (empty, ``NaN``, ``NA``...) stay NaN here; the callers decide whether
    a column may hold them. The frame's index is the 0-based data row, so ``index + 1`` is the 1-based row.

    Raises:
        DataError: if the file is missing or unreadable, the header differs or a line has more or fewer
            fields than the header.
    """
    check_header(read_header(path), expected_header, path)
    text = read_text(path)
    check_fields(text, len(expected_header), path)
    try:
        return pd.read_csv(io.StringIO(text), usecols=list(usecols) if usecols is not None else None, dtype=dtype)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse as CSV: {exc}") from exc
