"""Where the trace files live.

An installed package carries them as ``carbonsim/traces`` (packaging maps the repository's ``traces/`` there);
a checkout or an editable install reads the repository's top-level ``traces/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from carbonsim.data.errors import DataError
from carbonsim.limits import is_plain_name

# Both the same folder as ``Path(carbonsim.__file__).parent``; derived from this file so that importing the
# data layer does not import the whole ``carbonsim`` package.
_PACKAGE_DIR = Path(__file__).resolve().parent.parent

PathLike = str | os.PathLike[str]
"""A file or folder path accepted by the loaders."""


TRACES_ENV = "CARBONSIM_TRACES"
"""Environment variable naming a trace folder to read instead of the shipped one (same layout)."""


def traces_dir() -> Path:
    """The folder holding the trace files.

    Returns:
        The folder named by the environment variable ``CARBONSIM_TRACES`` if set (a copy of the traces with
        the same layout, e.g. with newer data); else ``<package>/traces`` if it exists (installed package),
        else the repository's top-level ``traces/`` (checkout or editable install).

    Raises:
        DataError: if the folder named by ``CARBONSIM_TRACES`` does not exist, or neither shipped folder does.
    """
    chosen = os.environ.get(TRACES_ENV)
    if chosen:
        if not Path(chosen).is_dir():
            raise DataError(f"{TRACES_ENV}={chosen}: expected a folder of trace files, got no such folder")
        return Path(chosen)
    installed = _PACKAGE_DIR / "traces"
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / "traces"
    if checkout.is_dir():
        return checkout
    raise DataError(f"trace folder not found: expected {installed} (installed package) or {checkout} (checkout)")


def names_with_suffix(*parts: str, suffix: str, root: PathLike | None = None) -> list[str]:
    """Names (without ``suffix``) of the files ending in ``suffix`` in a folder below the trace folder, sorted."""
    folder = trace_path(*parts, root=root)
    return sorted(p.name.removesuffix(suffix) for p in folder.glob(f"*{suffix}"))


def check_name(name: str, what: str) -> str:
    """Returns ``name`` if it can be part of a file name below the trace folder; raises otherwise.

    Zone, market and trace names become file names (``<zone>_2021-2024_hourly.csv.gz``); a name with a
    path separator, a NUL byte, or one that is ``.`` or ``..``, could reach a file outside the trace folder.

    Args:
        name: The name.
        what: What it names, for the message (e.g. ``"Electricity Maps zone"``).

    Raises:
        DataError: naming ``what`` and the name.
    """
    if not is_plain_name(name):
        raise DataError(f"{what} {name!r}: expected a name without '/', '\\' or '..' (names stay in the trace folder)")
    return name


def trace_path(*parts: str, root: PathLike | None = None) -> Path:
    """Path of a file below the trace folder.

    Args:
        *parts: Path components relative to the trace folder, e.g. ``("network", "x.csv")``; each must be a
            plain name (:func:`check_name`), so the path cannot leave the folder.
        root: Trace folder to use instead of :func:`traces_dir` (tests pass a copy).

    Returns:
        The joined path; whether it exists is checked by the loader that opens it.

    Raises:
        DataError: if a component is empty, ``.``/``..`` or holds a path separator.
    """
    for part in parts:
        check_name(part, "trace file or folder name")
    base = Path(root) if root is not None else traces_dir()
    return base.joinpath(*parts)
