"""Workload traces: Azure LLM inference arrivals, GAIA batch jobs and SustainDC hourly CPU-load shapes.

Files (``traces/workloads/``; see ``traces/README.md`` 3 and ``docs/data/``):

* ``azure_llm_inference_2023_{code,conv}.csv.gz``: one hour of Azure LLM inference requests on 2023-11-16,
  from Azure/AzurePublicDataset (CC-BY-4.0; cite Patel et al., "Splitwise", ISCA 2024).
* ``gaia_batch_jobs_*.csv.gz``: batch jobs derived by the GAIA authors from the Azure, Alibaba PAI and LANL
  Mustang traces, from umassos/GAIA (MIT; cite Hanafy et al., ASPLOS '24; upstream trace terms apply).
* ``sustaindc_*_CPU_Data_Hourly_*.csv.gz``: normalized hourly CPU load from Alibaba 2017 and Google 2011,
  from HewlettPackard/dc-rl (MIT).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim.data._io import at_row, read_csv
from carbonsim.data.errors import DataError
from carbonsim.data.job_trace import JobTrace, one_task_jobs
from carbonsim.data.paths import PathLike, trace_path
from carbonsim.data.timeseries import ValueRange, check_values, parse_utc
from carbonsim.limits import CPU_LOAD, JOB_CPUS, JOB_DURATION_S, TOKENS, TRACE_SPAN_S

WORKLOADS_DIR = "workloads"
SECONDS_PER_HOUR = 3600.0

LLM_KINDS = ("code", "conv")
LLM_HEADER = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_TOKENS = TOKENS

LOAD_SHAPES = {
    "alibaba_1": "sustaindc_Alibaba_CPU_Data_Hourly_1.csv.gz",
    "alibaba_2": "sustaindc_Alibaba_CPU_Data_Hourly_2.csv.gz",
    "google_1": "sustaindc_GoogleClusteData_CPU_Data_Hourly_1.csv.gz",
}
"""Load-shape name -> file: Alibaba 2017 (8,904 h each) and Google 2011 (8,760 h)."""
LOAD_SHAPE_HEADER = ("", "cpu_load")
_CPU_LOAD = CPU_LOAD

GAIA_HEADER = ("arrival_time", "length", "cpus")
GAIA_TRACES = {
    "azure_100k": SECONDS_PER_HOUR,
    "pai_100k": SECONDS_PER_HOUR,
    "mustang_trace_2015_100k": SECONDS_PER_HOUR,
    "pai_1k": 1.0,
}
"""GAIA trace name -> seconds per unit of its ``arrival_time`` and ``length`` columns: the 100k files are in
hours (arrivals over one year, 0 to 8,760 h), ``pai_1k`` is in seconds (arrivals over about 7 days)."""


def _where(file: Path, row: int) -> str:
    return f"{file}: {at_row(row)}"


def load_llm_requests(kind: str, path: PathLike | None = None) -> pd.DataFrame:
    """Requests of the Azure LLM inference trace 2023 (one hour, 2023-11-16 ~18:15 to 19:14).

    Source: Azure/AzurePublicDataset ``AzureLLMInferenceTrace_{code,conv}.csv`` (CC-BY-4.0; cite Patel et
    al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024).

    ``TIMESTAMP`` has sub-millisecond resolution and no time zone (the dataset states none); only differences
    between timestamps are used, so the zone does not matter. The rows must be in arrival order (equal
    timestamps are allowed); a timestamp with an offset other than UTC is rejected.

    Args:
        kind: ``"code"`` (8,819 requests) or ``"conv"`` (19,366 requests).
        path: File to read instead of the shipped one.

    Returns:
        Frame with ``arrival_s`` (float64, seconds after the first request, so the first is 0),
        ``context_tokens`` and ``generated_tokens`` (int64, input and output tokens).

    Raises:
        DataError: unknown kind; unexpected header; an empty, malformed or out-of-order timestamp; a token
            count that is empty, not a non-negative integer or implausible (> 1,000,000).
    """
    if kind not in LLM_KINDS:
        raise DataError(f"unknown Azure LLM trace kind {kind!r}; expected one of {list(LLM_KINDS)}")
    file = Path(path) if path is not None else trace_path(WORKLOADS_DIR, f"azure_llm_inference_2023_{kind}.csv.gz")
    df = read_csv(file, LLM_HEADER, dtype={"TIMESTAMP": str})
    if len(df) == 0:
        raise DataError(f"{file}: no data rows; expected at least one request")
    index = parse_utc(df["TIMESTAMP"], source=str(file), column="TIMESTAMP", naive="utc")
    ns = index.as_unit("ns").asi8
    backwards = np.flatnonzero(np.diff(ns) < 0)
    if backwards.size:
        i = int(backwards[0]) + 1
        raise DataError(
            f"{file}: requests not in arrival order: {at_row(i + 1)} has {df['TIMESTAMP'].iloc[i]!r} before"
            f" {at_row(i)} with {df['TIMESTAMP'].iloc[i - 1]!r}; expected non-decreasing timestamps"
        )
    tokens = {}
    for column in ("ContextTokens", "GeneratedTokens"):
        values = check_values(df[column], source=str(file), column=column, valid=_TOKENS)
        fractional = np.flatnonzero(values != np.floor(values))
        if fractional.size:
            i = int(fractional[0])
            raise DataError(f"{_where(file, i + 1)}: {values[i]:g} in column {column!r}; expected whole tokens")
        tokens[column] = values.astype(np.int64)
    return pd.DataFrame(
        {
            "arrival_s": (ns - ns[0]) / 1e9,
            "context_tokens": tokens["ContextTokens"],
            "generated_tokens": tokens["GeneratedTokens"],
        }
    )


def load_llm_arrivals(kind: str, path: PathLike | None = None) -> npt.NDArray[np.float64]:
    """Arrival times of the Azure LLM inference trace 2023, in seconds after the first request.

    Same source and validation as :func:`load_llm_requests`.

    Args:
        kind: ``"code"`` (8,819 requests, ~57 min) or ``"conv"`` (19,366 requests, ~58 min).
        path: File to read instead of the shipped one.

    Returns:
        Non-decreasing float64 array starting at 0.0, one entry per request.

    Raises:
        DataError: see :func:`load_llm_requests`.
    """
    return load_llm_requests(kind, path)["arrival_s"].to_numpy(dtype=np.float64)


def available_load_shapes() -> list[str]:
    """Names accepted by :func:`load_load_shape`."""
    return sorted(LOAD_SHAPES)


def load_load_shape(name: str, path: PathLike | None = None) -> npt.NDArray[np.float64]:
    """A year of normalized hourly CPU load, for a diurnal/weekly load profile.

    Source: HewlettPackard/dc-rl ``data/Workload/*.csv`` (MIT), derived by the SustainDC authors from the
    Alibaba 2017 and Google 2011 cluster traces.

    The file's first column is an unnamed hour counter (Alibaba files count from 1, Google from 0); it must
    increase by exactly 1 per row, so a missing or repeated hour is reported. The counter is not returned.

    Args:
        name: ``"alibaba_1"``, ``"alibaba_2"`` (8,904 hours each) or ``"google_1"`` (8,760 hours).
        path: File to read instead of the shipped one.

    Returns:
        float64 array of CPU load as a fraction of capacity in [0, 1], one entry per hour.

    Raises:
        DataError: unknown name; unexpected header; an hour counter that is empty, not an integer, or does not
            step by 1; a load that is empty, non-numeric or outside [0, 1].
    """
    if name not in LOAD_SHAPES:
        raise DataError(f"unknown load shape {name!r}; expected one of {available_load_shapes()}")
    file = Path(path) if path is not None else trace_path(WORKLOADS_DIR, LOAD_SHAPES[name])
    df = read_csv(file, LOAD_SHAPE_HEADER)
    if len(df) == 0:
        raise DataError(f"{file}: no data rows; expected one row per hour")
    counter_column = df.columns[0]
    counter = pd.to_numeric(df[counter_column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(counter) | (counter != np.floor(counter))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{_where(file, i + 1)}: hour counter {df[counter_column].iloc[i]!r}; expected an integer")
    steps = np.diff(counter)
    wrong = np.flatnonzero(steps != 1)
    if wrong.size:
        i = int(wrong[0]) + 1
        kind = "repeated or out of order" if steps[i - 1] < 1 else f"{int(steps[i - 1]) - 1} hour(s) missing"
        raise DataError(
            f"{_where(file, i + 1)}: hour counter {int(counter[i])} follows {int(counter[i - 1])} ({kind});"
            " expected consecutive hours"
        )
    return check_values(df["cpu_load"], source=str(file), column="cpu_load", valid=_CPU_LOAD)


def available_gaia_traces() -> list[str]:
    """Names accepted by :func:`load_gaia_jobs`."""
    return sorted(GAIA_TRACES)


def load_gaia_jobs(name: str, path: PathLike | None = None) -> pd.DataFrame:
    """Batch (deferrable) jobs of a GAIA cluster trace, converted to seconds.

    Source: umassos/GAIA ``src/cluster_traces/*.csv`` (MIT), derived by Hanafy et al. ("Going Green for Less
    Green", ASPLOS '24) from the Azure, Alibaba PAI and LANL Mustang public traces.

    Units differ between files (:data:`GAIA_TRACES`): the ``*_100k`` files give ``arrival_time`` and
    ``length`` in hours, ``pai_1k`` in seconds; both are converted to seconds here.

    Args:
        name: ``"azure_100k"`` (99,988 jobs), ``"pai_100k"`` (99,998), ``"mustang_trace_2015_100k"``
            (100,000) or ``"pai_1k"`` (1,000).
        path: File to read instead of the shipped one (read with the units of ``name``).

    Returns:
        Frame with ``arrival_s`` (float64, s from the trace start, non-decreasing), ``duration_s`` (float64,
        s, positive) and ``cpus`` (int64, CPUs requested, positive).

    Raises:
        DataError: unknown name; unexpected header; an empty, non-numeric, negative, out-of-order or
            implausible arrival (beyond :data:`~carbonsim.limits.TRACE_SPAN_S`); an empty, non-numeric,
            non-positive or implausible length (beyond :data:`~carbonsim.limits.JOB_DURATION_S`); a CPU count
            that is not a whole number in :data:`~carbonsim.limits.JOB_CPUS` (1 to 65,536).
    """
    if name not in GAIA_TRACES:
        raise DataError(f"unknown GAIA trace {name!r}; expected one of {available_gaia_traces()}")
    file = Path(path) if path is not None else trace_path(WORKLOADS_DIR, f"gaia_batch_jobs_{name}.csv.gz")
    df = read_csv(file, GAIA_HEADER)
    scale = GAIA_TRACES[name]
    unit = "h" if scale == SECONDS_PER_HOUR else "s"
    arrival = check_values(
        df["arrival_time"],
        source=str(file),
        column="arrival_time",
        valid=ValueRange(TRACE_SPAN_S.low / scale, TRACE_SPAN_S.high / scale, unit),
    )
    backwards = np.flatnonzero(np.diff(arrival) < 0)
    if backwards.size:
        i = int(backwards[0]) + 1
        raise DataError(
            f"{_where(file, i + 1)}: arrival_time {arrival[i]:g} {unit} before {at_row(i)} with {arrival[i - 1]:g};"
            " expected non-decreasing arrivals"
        )
    length = check_values(
        df["length"],
        source=str(file),
        column="length",
        valid=ValueRange(JOB_DURATION_S.low / scale, JOB_DURATION_S.high / scale, unit),
    )
    zero = np.flatnonzero(length <= 0)
    if zero.size:
        i = int(zero[0])
        raise DataError(f"{_where(file, i + 1)}: length {length[i]:g} {unit}; expected a positive job duration")
    cpus = check_values(df["cpus"], source=str(file), column="cpus", valid=JOB_CPUS)
    fractional = np.flatnonzero(cpus != np.floor(cpus))
    if fractional.size:
        i = int(fractional[0])
        raise DataError(f"{_where(file, i + 1)}: cpus {cpus[i]:g}; expected a whole number of CPUs")
    return pd.DataFrame({"arrival_s": arrival * scale, "duration_s": length * scale, "cpus": cpus.astype(np.int64)})


def load_gaia_trace(name: str, path: PathLike | None = None) -> JobTrace:
    """A GAIA trace (:func:`load_gaia_jobs`) in the stage-table form: each job one stage of one CPU task."""
    df = load_gaia_jobs(name, path)
    source = str(path) if path is not None else f"GAIA trace {name}"
    return one_task_jobs(df["arrival_s"].to_numpy(), df["duration_s"].to_numpy(), df["cpus"].to_numpy(), source)


__all__ = [
    "GAIA_TRACES",
    "LLM_KINDS",
    "LOAD_SHAPES",
    "available_gaia_traces",
    "available_load_shapes",
    "load_gaia_jobs",
    "load_gaia_trace",
    "load_llm_arrivals",
    "load_llm_requests",
    "load_load_shape",
]
