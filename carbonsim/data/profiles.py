"""Measured inference latency per batch size and GPU (NVIDIA Deep Learning Examples).

File: ``inference_profiles/nvidia_dle_inference_latency_bert_resnet50.csv``: throughput and latency tables
for BERT-base, BERT-large (SQuAD v1.1 fine-tuned) and ResNet-50 v1.5 on V100, A100, T4, A30 and A40, parsed
from the READMEs of NVIDIA/DeepLearningExamples @ 729963dd (Apache-2.0 for the TensorFlow and PyTorch BERT
folders, BSD-3-Clause for PyTorch/Classification/ConvNets; see ``traces/README.md`` 5 and
``docs/data/nvidia_profiles.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim.data._io import at_row, at_rows, read_csv
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike, trace_path
from carbonsim.limits import LATENCY_MS

PROFILES_FILE = ("inference_profiles", "nvidia_dle_inference_latency_bert_resnet50.csv")
LATENCY_COLUMNS = (
    "latency_avg_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_p100_ms",
)
TEXT_COLUMNS = (
    "model",
    "gpu",
    "system",
    "serving_stack",
    "backend",
    "precision",
    "throughput_unit",
    "table_label",
    "source_path",
    "source_commit",
)
CONFIG_KEY = (
    "model",
    "gpu",
    "gpu_memory_gb",
    "system",
    "serving_stack",
    "backend",
    "precision",
    "xla",
    "seq_len",
)
"""Columns that identify one measured configuration; with ``batch_size`` they identify a row."""

PROFILES_HEADER = (
    *CONFIG_KEY,
    "batch_size",
    "throughput",
    "throughput_unit",
    *LATENCY_COLUMNS,
    "table_label",
    "source_path",
    "source_commit",
)
SERVING_STACKS = ("framework_benchmark", "triton_offline")
PRECISIONS = ("fp32", "tf32", "fp16", "int8")
THROUGHPUT_UNITS = ("img/s", "sequences/s", "inferences/s")
MAX_LATENCY_MS = LATENCY_MS.high
"""Plausible upper bound of one measured latency (:data:`carbonsim.limits.LATENCY_MS`)."""


# Percentile pairs that must be ordered. p90 <= p95 is not enforced: NVIDIA's ResNet-50 TF1 table for T4
# (fp16, batch 16) publishes p90 17.8 ms above p95 17.0 ms, and the data are kept as published.
_ORDERED = (
    ("latency_p50_ms", "latency_p90_ms"),
    ("latency_p50_ms", "latency_p95_ms"),
    ("latency_p90_ms", "latency_p99_ms"),
    ("latency_p95_ms", "latency_p99_ms"),
    ("latency_p99_ms", "latency_p100_ms"),
)

SERVICE_COLUMNS = ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms")


def _number(
    raw: pd.Series,
    *,
    file: Path,
    column: str,
    required: bool,
    integer: bool,
    low: float,
    high: float,
    unit: str,
) -> npt.NDArray[np.float64]:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = raw.notna().to_numpy()
    expected = f"{'an integer' if integer else 'a number'} in [{low:g}, {high:g}]{' ' + unit if unit else ''}"
    for i in range(len(values)):
        v = values[i]
        if not present[i]:
            if required:
                raise DataError(f"{file}: {at_row(i + 1)}: empty cell in column {column!r}; expected {expected}")
            continue
        if np.isnan(v) or (integer and v != np.floor(v)) or not low <= v <= high:
            problem = "negative value" if v < 0 else "value"
            cell = raw.iloc[i]
            shown = repr(cell) if isinstance(cell, str) else f"{float(cell):g}"
            raise DataError(f"{file}: {at_row(i + 1)}: {problem} {shown} in column {column!r}; expected {expected}")
    return values


def load_inference_profiles(path: PathLike | None = None) -> pd.DataFrame:
    """NVIDIA's measured inference throughput and latency per model, GPU, stack, precision and batch size.

    Source: NVIDIA/DeepLearningExamples READMEs @ 729963dd (``traces/README.md`` 5). ``serving_stack`` is
    ``framework_benchmark`` (TF1 or PyTorch, no server) or ``triton_offline`` (Triton Inference Server,
    static batch). Latency cells are empty (NaN) where NVIDIA's table had no such column: p50 is published
    only by the Triton BERT-large tables and the TF1 BERT tables for T4 (78 rows), so use p90/p95/p99
    elsewhere; ``latency_avg_ms`` of the TF1
    BERT tables includes warm-up outliers and often exceeds p90.

    Validation: exact header; text columns non-empty, ``serving_stack``, ``precision`` and
    ``throughput_unit`` from the known sets; ``xla`` 0/1; ``gpu_memory_gb`` and ``batch_size`` positive
    integers; ``seq_len`` a positive integer, present on every BERT row; ``throughput`` positive;
    latencies empty or in (0, 60,000] ms and ordered p50 <= p90 <= p99 <= p100, p50 <= p95 <= p99 (p90 vs p95
    is not checked: NVIDIA publishes one row with p90 > p95, kept as published); no configuration
    (:data:`CONFIG_KEY` plus ``batch_size``) twice.

    Args:
        path: File to read instead of the shipped one.

    Returns:
        One row per measurement (407 in the shipped file) with columns as in the file, typed: text columns
        ``str``; ``gpu_memory_gb`` (GB) and ``batch_size`` int64; ``xla`` bool; ``seq_len`` nullable Int64
        (tokens, ``<NA>`` for ResNet); ``throughput`` (``throughput_unit``) and latencies (ms) float64.

    Raises:
        DataError: on any violation above, naming the row (and file line) and column.
    """
    file = Path(path) if path is not None else trace_path(*PROFILES_FILE)
    raw = read_csv(file, PROFILES_HEADER, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for column in TEXT_COLUMNS:
        text = raw[column]
        empty = (text.isna() | (text.astype(str).str.strip() == "")).to_numpy()
        if empty.any():
            i = int(np.argmax(empty))
            raise DataError(f"{file}: {at_row(i + 1)}: empty cell in column {column!r}; expected text")
    for column, allowed in (
        ("serving_stack", SERVING_STACKS),
        ("precision", PRECISIONS),
        ("throughput_unit", THROUGHPUT_UNITS),
    ):
        unknown = (~raw[column].isin(allowed)).to_numpy()
        if unknown.any():
            i = int(np.argmax(unknown))
            raise DataError(
                f"{file}: {at_row(i + 1)}: unknown {column} {raw[column].iloc[i]!r}; expected one of {list(allowed)}"
            )

    def number(
        column: str, required: bool, integer: bool, low: float, high: float, unit: str = ""
    ) -> npt.NDArray[np.float64]:
        return _number(
            raw[column], file=file, column=column, required=required, integer=integer, low=low, high=high, unit=unit
        )

    gpu_memory = number("gpu_memory_gb", True, True, 1, 1024, "GB")
    xla = number("xla", True, True, 0, 1)
    seq_len = number("seq_len", False, True, 1, 1_000_000, "tokens")
    batch = number("batch_size", True, True, 1, 1_000_000)
    throughput = number("throughput", True, False, 1e-9, 1e12)
    latencies = {c: number(c, False, False, 1e-9, MAX_LATENCY_MS, "ms") for c in LATENCY_COLUMNS}

    bert_without_len = raw["model"].str.startswith("bert").to_numpy() & np.isnan(seq_len)
    if bert_without_len.any():
        i = int(np.argmax(bert_without_len))
        raise DataError(f"{file}: {at_row(i + 1)}: BERT row without seq_len; expected the sequence length in tokens")
    for low_col, high_col in _ORDERED:
        with np.errstate(invalid="ignore"):
            bad = latencies[low_col] > latencies[high_col]
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{file}: {at_row(i + 1)}: {low_col} {latencies[low_col][i]:g} ms above {high_col}"
                f" {latencies[high_col][i]:g} ms; expected {low_col} <= {high_col}"
            )

    for column in PROFILES_HEADER:
        if column in TEXT_COLUMNS:
            out[column] = raw[column].astype(str)
    out["gpu_memory_gb"] = gpu_memory.astype(np.int64)
    out["xla"] = xla.astype(bool)
    out["seq_len"] = pd.Series(seq_len).astype("Int64")
    out["batch_size"] = batch.astype(np.int64)
    out["throughput"] = throughput
    for column, values in latencies.items():
        out[column] = values
    out = out[list(PROFILES_HEADER)]

    key = [*CONFIG_KEY, "batch_size"]
    dup = out.duplicated(key, keep=False).to_numpy()
    if dup.any():
        first = int(np.argmax(dup))
        same = out[key].eq(out[key].iloc[first]) | (out[key].isna() & out[key].iloc[first].isna())
        rows = [int(r) + 1 for r in np.flatnonzero(same.all(axis=1).to_numpy())]
        raise DataError(f"{file}: the same configuration and batch size at {at_rows(rows)}; expected each once")
    return out


_FILTERS = ("serving_stack", "backend", "precision", "seq_len", "gpu_memory_gb", "system", "xla")


def service_profile(
    model: str,
    gpu: str,
    *,
    serving_stack: str | None = None,
    precision: str | None = None,
    seq_len: int | None = None,
    backend: str | None = None,
    gpu_memory_gb: int | None = None,
    system: str | None = None,
    xla: bool | None = None,
    profiles: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Latency percentiles per batch size of one measured configuration.

    Every keyword left at ``None`` matches any value, but the selection must end up with exactly one
    configuration (:data:`CONFIG_KEY`); if several match, the error lists the values that tell them apart
    (e.g. ``seq_len in [128, 384]``), so the caller can narrow the choice.

    Args:
        model: ``"bert-base"``, ``"bert-large"`` or ``"resnet50-v1.5"``.
        gpu: ``"V100"``, ``"A100"``, ``"T4"``, ``"A30"`` or ``"A40"``.
        serving_stack: ``"framework_benchmark"`` or ``"triton_offline"``.
        precision: ``"fp32"``, ``"tf32"`` or ``"fp16"``.
        seq_len: Sequence length in tokens (BERT: 128 or 384).
        backend: Framework or Triton backend as published, e.g. ``"NVIDIA TensorRT with FP16"``.
        gpu_memory_gb: GPU memory in GB (V100 16/32, A100 40/80).
        system: System as published, e.g. ``"NVIDIA DGX-1 (1x V100 32GB)"`` (needed where the same GPU was
            measured in two systems).
        xla: Whether TF XLA was on.
        profiles: Frame from :func:`load_inference_profiles` (default: the shipped file).

    Returns:
        Frame indexed by ``batch_size`` (ascending) with ``latency_p50_ms``, ``latency_p90_ms``,
        ``latency_p95_ms`` and ``latency_p99_ms`` in ms, as published: NaN where NVIDIA's table had no such
        percentile (most tables have no p50, see :func:`load_inference_profiles`).

    Raises:
        DataError: unknown model or GPU, or no configuration for the filters (listing the valid values), or
            more than one configuration (listing what distinguishes them).
    """
    table = profiles if profiles is not None else load_inference_profiles()
    models = sorted(str(m) for m in table["model"].unique())
    if model not in models:
        raise DataError(f"unknown model {model!r}; valid models: {models}")
    sel = table[table["model"] == model]
    gpus = sorted(str(g) for g in sel["gpu"].unique())
    if gpu not in gpus:
        raise DataError(f"no profile of {model!r} on GPU {gpu!r}; GPUs profiled for {model!r}: {gpus}")
    sel = sel[sel["gpu"] == gpu]
    wanted = {
        "serving_stack": serving_stack,
        "backend": backend,
        "precision": precision,
        "seq_len": seq_len,
        "gpu_memory_gb": gpu_memory_gb,
        "system": system,
        "xla": xla,
    }
    for column in _FILTERS:
        value = wanted[column]
        if value is None:
            continue
        match = (sel[column] == value).fillna(False).to_numpy(dtype=bool)
        if not match.any():
            valid = sorted({str(v) for v in sel[column].dropna().unique()})
            raise DataError(
                f"no profile of {model!r} on {gpu!r} with {column}={value!r} (given the other filters);"
                f" valid {column} values: {valid}"
            )
        sel = sel[match]
    configs = sel[list(CONFIG_KEY)].drop_duplicates()
    if len(configs) > 1:
        differing = {
            c: sorted({str(v) for v in configs[c].tolist()}) for c in _FILTERS if configs[c].nunique(dropna=False) > 1
        }
        choices = "; ".join(f"{c} in {v}" for c, v in differing.items())
        raise DataError(
            f"{len(configs)} measured configurations of {model!r} on {gpu!r} match; narrow the choice with {choices}"
        )
    result = sel.set_index("batch_size").sort_index()[list(SERVICE_COLUMNS)]
    return result


__all__ = [
    "CONFIG_KEY",
    "load_inference_profiles",
    "service_profile",
]
