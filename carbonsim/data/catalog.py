"""The hardware catalog: GPU boards and their power (``traces/catalog/gpus.csv``; its README cites sources)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim.data._io import at_row, read_csv
from carbonsim.data.errors import DataError
from carbonsim.data.paths import PathLike, trace_path

GPU_HEADER = (
    "gpu",
    "form_factor",
    "memory_gb",
    "measured_system",
    "busy_w",
    "busy_w_source",
    "idle_w",
    "idle_w_source",
)
#: Board power beyond which a value is a unit error (the largest boards draw about 1.2 kW).
MAX_GPU_W = 2000.0


def load_gpu_catalog(path: PathLike | None = None) -> pd.DataFrame:
    """The GPU catalog, indexed by GPU name (``A100``, ``H100``, ...).

    Args:
        path: File to read instead of the shipped ``traces/catalog/gpus.csv``.

    Returns:
        Frame with ``memory_gb``, ``busy_w`` and ``idle_w`` (float64) and the source keys, indexed by ``gpu``.

    Raises:
        DataError: unexpected header, an empty or repeated name, a power that is not a number in
            ``[0, 2000]`` W, or an idle power above the busy power, naming the row.
    """
    file = Path(path) if path is not None else trace_path("catalog", "gpus.csv")
    df = read_csv(file, GPU_HEADER, dtype={"gpu": str})
    names = df["gpu"].fillna("").astype(str).str.strip()
    for i, name in enumerate(names):
        if not name:
            raise DataError(f"{file}: {at_row(i + 1)}: empty gpu name")
        if name in set(names[:i]):
            raise DataError(f"{file}: {at_row(i + 1)}: gpu {name!r} appears twice")
    for col in ("busy_w", "idle_w", "memory_gb"):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~((values >= 0) & (values <= (MAX_GPU_W if col != "memory_gb" else 1e4)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file}: {at_row(i + 1)}: {col} '{df[col].iat[i]}'; expected a number >= 0")
        df[col] = values
    over = np.flatnonzero(df["idle_w"].to_numpy() > df["busy_w"].to_numpy())
    if over.size:
        i = int(over[0])
        raise DataError(f"{file}: {at_row(i + 1)}: idle_w above busy_w")
    df["gpu"] = names
    return df.set_index("gpu")


__all__ = ["GPU_HEADER", "load_gpu_catalog"]
