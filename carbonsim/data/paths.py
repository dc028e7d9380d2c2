"""Where the trace files live.

An installed package carries them as ``carbonsim/traces`` (packaging maps the repository's ``traces/`` there);
a checkout or an editable install reads the repository's top-level ``traces/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from carbonsim.data.errors import DataError

# Both the same folder as ``Path(carbonsim.__file__).parent``; derived from this file so that importing the
# data layer does not import the whole ``carbonsim`` package.
_PACKAGE_DIR = Path(__file__).resolve().parent.parent

PathLike = str | os.PathLike[str]
"""A file or folder path accepted by the loaders."""


def traces_dir() -> Path:
    """The folder holding the trace files.

    Returns:
        ``<package>/traces`` if it exists (installed package), else the repository's top-level ``traces/``
        (checkout or editable install).

    Raises:
        DataError: if neither folder exists.
    """
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


def trace_path(*parts: str, root: PathLike | None = None) -> Path:
    """Path of a file below the trace folder.

    Args:
        *parts: Path components relative to the trace folder, e.g. ``("network", "x.csv")``.
        root: Trace folder to use instead of :func:`traces_dir` (tests pass a copy).

    Returns:
        The joined path; whether it exists is checked by the loader that opens it.
    """
    base = Path(root) if root is not None else traces_dir()
    return base.joinpath(*parts)
