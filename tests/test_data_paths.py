"""Trace folder discovery, the DataError contract, and the helpers the other data tests use to write
corrupted copies of the real files."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from pathlib import Path

import pytest

import carbonsim
from carbonsim.data import DataError, traces_dir
from carbonsim.data.paths import trace_path

TRACES = traces_dir()

Lines = list[str]


def read_lines(path: Path) -> Lines:
    """The file's lines (header first), gzip'd or not."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return raw.decode("utf-8").splitlines()


def write_lines(path: Path, lines: Lines) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
    return path


def corrupt(src: Path, tmp_path: Path, edit: Callable[[Lines], object], rows: int | None = 400) -> Path:
    """A copy of ``src`` in ``tmp_path`` (same name), cut to its first ``rows`` data rows and passed to ``edit``."""
    lines = read_lines(src)
    if rows is not None:
        lines = lines[: rows + 1]
    edit(lines)
    return write_lines(tmp_path / src.name, lines)


def set_cell(lines: Lines, row: int, column: int, value: str) -> None:
    """Sets one cell of 1-based data row ``row`` (line ``row + 1``) to ``value``."""
    fields = next(csv.reader([lines[row]]))
    fields[column] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    lines[row] = out.getvalue()


def cell(lines: Lines, row: int, column: int) -> str:
    return next(csv.reader([lines[row]]))[column]


def swap(lines: Lines, row_a: int, row_b: int) -> None:
    lines[row_a], lines[row_b] = lines[row_b], lines[row_a]


def assert_message(exc: pytest.ExceptionInfo[DataError], *parts: str) -> None:
    message = str(exc.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_traces_dir_is_the_checkout_folder_with_the_readme():
    package = Path(carbonsim.__file__).parent
    expected = package / "traces" if (package / "traces").is_dir() else package.parent / "traces"
    assert expected == TRACES
    assert (TRACES / "README.md").is_file()
    assert trace_path("network", "x.csv") == TRACES / "network" / "x.csv"
    assert trace_path("a", root="/elsewhere") == Path("/elsewhere/a")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_corrupt_copy_round_trips_gzip_and_plain(tmp_path):
    src = TRACES / "workloads" / "gaia_batch_jobs_pai_1k.csv.gz"
    copy = corrupt(src, tmp_path, lambda lines: None, rows=3)
    assert read_lines(copy) == read_lines(src)[:4]
    plain = TRACES / "network" / "azure_inter_region_rtt_p50_ms_2026-07-30_long.csv"
    lines = read_lines(corrupt(plain, tmp_path, lambda lines: set_cell(lines, 1, 2, "99"), rows=2))
    assert lines[1] == "Australia Central,Australia Central 2,99"
