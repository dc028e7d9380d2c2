"""Pieces every importer shares.

Finding the files, streaming rows with exact field counts, converting fields with messages that name
the file, line and field, time windows, home regions, GPU types, and building the validated stage table
with its skip counts.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from carbonsim.data._io import read_csv, read_header
from carbonsim.data.errors import DataError
from carbonsim.data.job_trace import STAGE_COLUMNS, JobTrace, validate_stages
from carbonsim.data.paths import PathLike, trace_path
from carbonsim.job_source_config import JobImportOptions

#: Rows converted at a time: bounds the memory of a stream to a few hundred MB whatever the file's size.
CHUNK_ROWS = 200_000
_GLOB_CHARS = re.compile(r"[*?\[]")


def expand_paths(paths: PathLike | Sequence[PathLike], what: str) -> list[Path]:
    """The files named by ``paths``: each a file, or a ``*`` / ``?`` pattern in its last component.

    Args:
        paths: One path or several, in reading order. A pattern expands to its matches in sorted order.
        what: The table they hold, for messages.

    Raises:
        DataError: no path given, a file that does not exist, or a pattern that matches nothing.
    """
    items: list[PathLike] = [paths] if isinstance(paths, str | Path) else list(paths)  # type: ignore[arg-type]
    if not items:
        raise DataError(f"{what}: no file given")
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if _GLOB_CHARS.search(p.name):
            matches = sorted(m for m in p.parent.glob(p.name) if m.is_file())
            if not matches:
                raise DataError(f"{p}: no file matches this pattern ({what})")
            out.extend(matches)
        elif not p.is_file():
            raise DataError(f"{p}: file not found ({what})")
        else:
            out.append(p)
    return out


def describe(fmt: str, files: Sequence[Path]) -> str:
    """A short name for what was read: the format and the first file (and how many more)."""
    more = f" and {len(files) - 1} more" if len(files) > 1 else ""
    return f"{fmt} {files[0]}{more}"


def open_text(path: Path) -> IO[str]:
    """A text stream of a plain or gzip'd UTF-8 file."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)


@dataclass
class Chunk:
    """Consecutive rows of one file, as strings, with the file line of each row."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray

    def where(self, i: int) -> str:
        """Location of row ``i`` of the chunk."""
        return f"{self.path}: line {int(self.lines[i])}"

    def text(self, col: str) -> np.ndarray:
        """A column as an object array of stripped strings."""
        return self.frame[col].astype(str).str.strip().to_numpy(dtype=object)

    def number(
        self, col: str, *, empty: float | None = None, lo: float = -math.inf, integer: bool = False
    ) -> np.ndarray:
        """A column as float64, every cell a finite number (``empty`` stands for empty cells if given).

        Raises:
            DataError: naming the file, line, field and value of the first cell that is not a number, is
                empty (without ``empty``), is below ``lo`` or is not whole (with ``integer``).
        """
        raw = self.frame[col].astype(str).str.strip()
        blank = (raw == "").to_numpy()
        values = pd.to_numeric(raw.where(~blank, "0"), errors="coerce").to_numpy(dtype=np.float64, copy=True)
        bad = ~np.isfinite(values) | (values < lo)
        if integer:
            bad |= np.isfinite(values) & (values != np.round(values))
        if empty is None:
            bad |= blank
        else:
            bad &= ~blank
            values[blank] = empty
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = "a whole number" if integer else "a number"
            bound = f" >= {lo:g}" if lo > -math.inf else ""
            raise DataError(f"{self.where(i)}: field {col} {str(raw.iloc[i])!r}; expected {kind}{bound}")
        return values


def iter_chunks(
    path: Path,
    columns: Sequence[str],
    *,
    delimiter: str = ",",
    header: Sequence[Sequence[str]] = (),
    header_required: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[Chunk]:
    """Streams a delimited file in chunks, every row with exactly ``len(columns)`` fields.

    Args:
        path: The file (plain or gzip'd).
        columns: Names of the fields in order (the published schema).
        delimiter: Field separator.
        header: Header lines the file may start with (each a list of names); one that matches is skipped.
        header_required: The first line must be one of ``header``.
        chunk_rows: Rows per chunk.

    Raises:
        DataError: naming the file and line: a row with too many or too few fields, an unknown header,
            bad quoting, or a file that cannot be read (not gzip, not UTF-8).
    """
    n = len(columns)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with open_text(path) as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            first = True
            for row in reader:
                line = reader.line_num
                if first:
                    first = False
                    if any(list(row) == list(h) for h in header):
                        continue
                    if header_required or (row and row[0].strip() == columns[0]):
                        expected = " or ".join(str(list(h)) for h in header) or str(list(columns))
                        raise DataError(f"{path}: line 1: unexpected header {row}; expected {expected}")
                if len(row) != n:
                    raise DataError(f"{path}: line {line}: {len(row)} fields; expected {n} ({', '.join(columns)})")
                rows.append(row)
                lines.append(line)
                if len(rows) >= chunk_rows:
                    yield Chunk(path, pd.DataFrame(rows, columns=list(columns)), np.asarray(lines, np.int64))
                    rows, lines = [], []
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: cannot parse as CSV: {exc}") from exc
    except READ_ERRORS as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    if rows:
        yield Chunk(path, pd.DataFrame(rows, columns=list(columns)), np.asarray(lines, np.int64))


def read_header_line(path: Path, delimiter: str) -> list[str]:
    """The first line's fields (for formats whose header names the columns).

    Raises:
        DataError: if the file is empty or cannot be read.
    """
    try:
        with open_text(path) as fh:
            row = next(csv.reader(fh, delimiter=delimiter, strict=True), None)
    except (csv.Error, *READ_ERRORS) as exc:
        raise DataError(f"{path}: cannot read the header line: {exc}") from exc
    if row is None:
        raise DataError(f"{path}: file is empty; expected a header line")
    return [c.strip() for c in row]


@dataclass(frozen=True)
class Window:
    """The time window of a trace to replay, in seconds after its origin (end exclusive)."""

    start_s: float
    end_s: float | None

    @classmethod
    def of(cls, options: JobImportOptions) -> Window:
        return cls(options.start_s, options.end_s)

    def outside(self, t_s: float) -> str | None:
        """The skip reason for a job submitted at ``t_s``, or None if it is inside the window."""
        if t_s < self.start_s:
            return "submitted before the time window"
        if self.end_s is not None and t_s >= self.end_s:
            return "submitted after the time window"
        return None


def home_of(pool: str, options: JobImportOptions, where: str) -> str:
    """Region of a job from its pool (partition, cluster) with ``options.homes`` / ``options.home``.

    Raises:
        DataError: if ``homes`` is given, does not name the pool, and there is no ``home`` fallback.
    """
    if pool in options.homes:
        return options.homes[pool]
    if options.homes and not options.home:
        raise DataError(
            f"{where}: pool {pool!r} is not in options.homes ({sorted(options.homes)}); map it or set options.home"
        )
    return options.home


def catalog_gpus(root: PathLike | None = None) -> tuple[str, ...]:
    """GPU names of the hardware catalog ``traces/catalog/gpus.csv``."""
    path = trace_path("catalog", "gpus.csv", root=root)
    try:
        # Every line as many fields as the header (usecols alone would let a long line shift its values).
        frame = read_csv(path, read_header(path), usecols=["gpu"], dtype={"gpu": str})
    except (*READ_ERRORS, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read the GPU catalog: {exc}") from exc
    return tuple(frame["gpu"].str.strip())


#: Trace GPU types that are catalog GPUs under another name (PAI 2020's 32 GB V100 is a V100).
GPU_ALIASES = {"V100M32": "V100"}


class GpuTypes:
    """Maps a trace's GPU type names to catalog GPUs (see ``JobImportOptions.gpu_types``)."""

    def __init__(self, options: JobImportOptions, catalog: Iterable[str] | None = None) -> None:
        names = tuple(catalog) if catalog is not None else catalog_gpus()
        self.catalog = names
        self.unknown = options.unknown_gpu
        self._map = {n.upper(): n for n in names}
        for alias, target in GPU_ALIASES.items():
            if target in names:
                self._map[alias.upper()] = target
        for src, dst in options.gpu_types.items():
            if dst and dst not in names:
                raise DataError(
                    f"options.gpu_types: {src!r} maps to {dst!r}, which is not a GPU of traces/catalog/gpus.csv "
                    f'({", ".join(names)}); use "" for any GPU'
                )
            self._map[src.upper()] = dst

    def __call__(self, trace_type: str, where: str) -> str | None:
        """The catalog GPU of ``trace_type`` ("" for any), or None to skip the job (``unknown_gpu: skip``).

        Raises:
            DataError: for an unmapped type with ``unknown_gpu: error``.
        """
        key = trace_type.strip().upper()
        if key in self._map:
            return self._map[key]
        if self.unknown == "error":
            raise DataError(
                f"{where}: GPU type {trace_type!r} is not in the hardware catalog ({', '.join(self.catalog)}); "
                f'map it with options.gpu_types ("" for any GPU) or set options.unknown_gpu: skip'
            )
        return None


@dataclass
class StageRows:
    """Accumulates stage rows with where each came from, then builds the validated :class:`JobTrace`."""

    source: str
    skipped: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    cols: dict[str, list[object]] = field(default_factory=lambda: {c: [] for c in STAGE_COLUMNS})
    where: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(
        self,
        where: str,
        *,
        job: str,
        stage: str,
        submit_s: float,
        tasks: int,
        duration_s: float,
        cpus: float,
        gpus: float = 0.0,
        gpu_type: str = "",
        parents: str = "",
        home: str = "",
        deadline_s: float = math.nan,
        interruptible: float = math.nan,
    ) -> None:
        """Appends one stage (the contract's columns; ``where`` is its file and line)."""
        values = (job, stage, submit_s, tasks, duration_s, cpus, gpus, gpu_type, parents, home, deadline_s)
        for col, v in zip(STAGE_COLUMNS, (*values, interruptible), strict=True):
            self.cols[col].append(v)
        self.where.setdefault((job, stage), where)

    def skip(self, reason: str, n: int = 1) -> None:
        """Counts ``n`` records (jobs unless the reason says otherwise) left out for ``reason``."""
        self.skipped[reason] += n

    def adjust(self, reason: str, n: int = 1) -> None:
        """Counts ``n`` records replayed with the documented change ``reason``."""
        self.adjusted[reason] += n

    def build(self, origin_utc: pd.Timestamp | None, shift_s: float = 0.0) -> JobTrace:
        """The validated trace; ``shift_s`` is subtracted from submissions and deadlines (the window start).

        Raises:
            DataError: a contract violation, with the file and line of the stage it concerns.
        """
        frame = pd.DataFrame(self.cols, columns=list(STAGE_COLUMNS))
        if frame.empty:
            frame = frame.astype({"submit_s": np.float64, "tasks": np.int64, "task_duration_s": np.float64})
        frame["submit_s"] = frame["submit_s"].astype(np.float64) - shift_s
        frame["deadline_s"] = frame["deadline_s"].astype(np.float64) - shift_s
        try:
            stages = validate_stages(frame, self.source)
        except DataError as exc:
            raise DataError(self._locate(str(exc))) from exc
        origin = origin_utc + pd.Timedelta(seconds=shift_s) if origin_utc is not None else None
        return JobTrace(
            stages, self.source, origin, dict(sorted(self.skipped.items())), dict(sorted(self.adjusted.items()))
        )

    def _locate(self, message: str) -> str:
        prefix = f"{self.source}: job "
        if not message.startswith(prefix):
            return message
        rest = message[len(prefix) :]
        best = ""
        for (job, stage), where in self.where.items():
            if rest.startswith(f"{job} stage {stage}:") or (rest.startswith(f"{job}:") and not best):
                best = where
                if rest.startswith(f"{job} stage {stage}:"):
                    break
        return f"{message} ({best})" if best else message


def check_dag(job: str, parents: Mapping[str, Sequence[str]], where: Mapping[str, str]) -> str | None:
    """Checks one job's precedence: every parent a stage of the job, no stage its own ancestor.

    Args:
        job: Job id, for messages.
        parents: Stage id -> parent stage ids.
        where: Stage id -> file and line, for messages.

    Returns:
        None if the DAG is sound, else the id of the first stage with a parent that is not in the job (the
        caller decides between skipping and raising).

    Raises:
        DataError: naming the file and line of a stage on a cycle.
    """
    for sid, ps in parents.items():
        for p in ps:
            if p not in parents:
                return sid
    state: dict[str, int] = {}
    for root in parents:
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(parents[root]))]
        state[root] = 1
        while stack:
            sid, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[sid] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = [s for s, _ in stack[[s for s, _ in stack].index(nxt) :]]
                raise DataError(f"{where[nxt]}: job {job}: the dependencies of tasks {cycle} form a cycle")
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(parents[nxt])))
    return None
