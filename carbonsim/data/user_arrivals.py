"""Inference request logs from the user's own files, for replayed arrivals (``arrivals.trace_file``).

A CSV (``.csv``, ``.csv.gz``) or Parquet file with one row per request: a timestamp column (ISO 8601, or
numbers in seconds, milliseconds or microseconds from any origin) and optionally the model each request
asked for and its input and output tokens. Published request traces load as they are, e.g. the Azure LLM
inference traces (``TIMESTAMP``, ``ContextTokens``, ``GeneratedTokens``) or BurstGPT (``Timestamp`` in
seconds, ``Model``, ``Request tokens``, ``Response tokens``); docs/own_data.md shows both.

Checks (each error names the file, row and column): the file has the named columns and every line its
header's number of fields; every timestamp parses; requests are in time order (equal times are allowed:
logs stamp concurrent requests alike); at least two distinct times (a replay needs a span); every model is
mapped to a workload; token counts are whole numbers in [0, 1,000,000].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike
from carbonsim.data.timeseries import ValueRange, check_values
from carbonsim.data.user_tables import located, parse_times, read_table

TOKENS = ValueRange(0.0, 1_000_000.0, "tokens")


def load_arrival_trace(
    path: PathLike,
    *,
    timestamp_column: str = "timestamp",
    time_unit: str = "iso",
    timezone: str = "UTC",
    model_column: str = "",
    models: Mapping[str, str] | None = None,
    workloads: Sequence[str] | None = None,
    context_tokens_column: str = "",
    generated_tokens_column: str = "",
) -> pd.DataFrame:
    """A user's request log, validated.

    Args:
        path: The file.
        timestamp_column: Column of request times.
        time_unit: ``iso``, or ``s``, ``ms``, ``us`` for numeric times.
        timezone: Time zone of ISO timestamps without an offset.
        model_column: Optional column of model names.
        models: Model name -> workload name (default: each model is the workload of the same name).
        workloads: The scenario's workload names, in order; with ``model_column`` every model must map to one
            of them and the frame gets a ``workload`` column of indices.
        context_tokens_column: Optional column of input tokens.
        generated_tokens_column: Optional column of output tokens.

    Returns:
        Frame with ``arrival_s`` (float64, seconds after the first request), and as configured ``model``
        (str), ``workload`` (int64 index into ``workloads``), ``context_tokens`` and ``generated_tokens``
        (int64).

    Raises:
        DataError: naming the file, row and column of the first problem.
    """
    table = read_table(path, "arrival trace")
    source = str(table.path)
    times = parse_times(table, timestamp_column, timezone=timezone, time_unit=time_unit)
    ns = times.asi8
    backwards = np.flatnonzero(np.diff(ns) < 0)
    if backwards.size:
        i = int(backwards[0]) + 1
        raise DataError(
            f"{table.where(i)}: {times[i].isoformat()} in column {timestamp_column!r} is before the previous"
            f" request's {times[i - 1].isoformat()}; expected requests in time order"
        )
    if ns[-1] == ns[0]:
        raise DataError(
            f"{source}: all {len(ns)} requests at {times[0].isoformat()}; a replay needs at least two times"
        )
    out = pd.DataFrame({"arrival_s": (ns - ns[0]) / 1e9})
    if model_column:
        raw = table.column(model_column, "model column")
        names = raw.astype("str").where(raw.notna())
        empty = names.isna().to_numpy()
        if empty.any():
            raise DataError(f"{table.where(int(np.argmax(empty)))}: empty cell in column {model_column!r}")
        mapping = dict(models) if models else {}
        mapped = names.map(mapping) if mapping else names
        known = sorted(mapping) if mapping else sorted(workloads or [])
        unknown = mapped.isna().to_numpy() if mapping else np.zeros(len(names), dtype=bool)
        if workloads is not None and not mapping:
            unknown = ~names.isin(list(workloads)).to_numpy()
        if unknown.any():
            i = int(np.argmax(unknown))
            raise DataError(
                f"{table.where(i)}: model {names.iloc[i]!r} in column {model_column!r} is not mapped to a workload;"
                f" expected one of {known} (map it in arrivals.trace_file.models)"
            )
        out["model"] = names.to_numpy(dtype=object)
        if workloads is not None:
            index = {w: k for k, w in enumerate(workloads)}
            missing = sorted(set(mapped.unique()) - set(index))
            if missing:
                raise DataError(f"{source}: models map to unknown workload(s) {missing}; workloads: {list(workloads)}")
            out["workload"] = mapped.map(index).to_numpy(dtype=np.int64)
    for name, column in (("context_tokens", context_tokens_column), ("generated_tokens", generated_tokens_column)):
        if not column:
            continue
        with located(table):
            values = check_values(
                table.column(column, "token column"), source=source, column=column, valid=TOKENS, rows=table.rows
            )
        fractional = np.flatnonzero(values != np.floor(values))
        if fractional.size:
            i = int(fractional[0])
            raise DataError(f"{table.where(i)}: {values[i]:g} in column {column!r}; expected whole tokens")
        out[name] = values.astype(np.int64)
    return out


__all__ = ["TOKENS", "load_arrival_trace"]
