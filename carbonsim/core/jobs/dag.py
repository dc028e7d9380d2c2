"""Precedence among the stages of a job: the DAG's checks and the features computed once per run.

Stages are stored job after job, each job's stages in a topological order (every stage after its
parents), with the parents in compressed sparse row form: the parents of stage ``s`` are
``parent_idx[parent_ptr[s]:parent_ptr[s + 1]]`` (global stage indices). Because a parent always comes
before its child, one pass in storage order (or its reverse) computes what depends on ancestors (or on
descendants): no recursion, no per-job graph objects.
"""

from __future__ import annotations

import numpy as np


def check_precedence(job: np.ndarray, parent_ptr: np.ndarray, parent_idx: np.ndarray) -> None:
    """Checks that every parent is an earlier stage of the same job (so the stages form DAGs).

    Args:
        job: Job of each stage (non-decreasing).
        parent_ptr: Row pointers of the parents (``len(job) + 1``).
        parent_idx: Parent stage indices.

    Raises:
        ValueError: naming the first stage whose parent is missing, itself, later, or of another job (the
            data layer rejects such traces with a named :class:`~carbonsim.data.errors.DataError` first).
    """
    m = job.size
    if parent_ptr.shape != (m + 1,) or parent_ptr[0] != 0 or parent_ptr[-1] != parent_idx.size:
        raise ValueError(f"stages: parent_ptr must have {m + 1} entries from 0 to {parent_idx.size}")
    if np.any(np.diff(parent_ptr) < 0):
        raise ValueError("stages: parent_ptr must be non-decreasing")
    if m and np.any(np.diff(job) < 0):
        raise ValueError("stages: a job's stages must be stored together, jobs in order")
    child = np.repeat(np.arange(m), np.diff(parent_ptr))
    bad = (parent_idx < 0) | (parent_idx >= child)
    bad[~bad] = job[parent_idx[~bad]] != job[child[~bad]]
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"stages: stage {int(child[k])} (job {int(job[child[k]])}) depends on stage {int(parent_idx[k])}; "
            "expected an earlier stage of the same job (a DAG in topological order)"
        )


def children(parent_ptr: np.ndarray, parent_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The children of every stage in CSR form (``child_ptr``, ``child_idx``), each list in stage order."""
    m = parent_ptr.size - 1
    child = np.repeat(np.arange(m, dtype=np.int64), np.diff(parent_ptr))
    order = np.lexsort((child, parent_idx))
    child_ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(parent_idx, minlength=m), out=child_ptr[1:])
    return child_ptr, child[order]


def critical_paths(duration_s: np.ndarray, child_ptr: np.ndarray, child_idx: np.ndarray) -> np.ndarray:
    """Longest path from the start of each stage to the end of its job, in s.

    Each stage on a path takes one task's duration (its tasks run side by side when there is room), so a
    root's value is the job's length with unlimited capacity: ``path[s] = duration[s] + max over children
    of path[child]`` (0 for a stage without children).

    Args:
        duration_s: Task duration of each stage in s.
        child_ptr: Row pointers of the children.
        child_idx: Child stage indices.

    Returns:
        float64 array, one value per stage.
    """
    path = np.array(duration_s, dtype=np.float64)
    inner = np.flatnonzero(np.diff(child_ptr) > 0)
    for s in inner[::-1].tolist():  # children come after their parents: reverse order sees them final
        path[s] = duration_s[s] + path[child_idx[child_ptr[s] : child_ptr[s + 1]]].max()
    return path


def descendants(
    child_ptr: np.ndarray, child_idx: np.ndarray, first: np.ndarray, work: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct stages that depend, directly or not, on each stage, and their total work.

    Counted with one bit per stage of the job (Python integers, bit ``s - first[s]``), so that a stage
    reached along two branches of a diamond counts once.

    Args:
        child_ptr: Row pointers of the children.
        child_idx: Child stage indices.
        first: Index of the first stage of each stage's job.
        work: Work of each stage (e.g. tasks x task duration, in s); zeros if None.

    Returns:
        (count int64, work float64) per stage.
    """
    m = child_ptr.size - 1
    count = np.zeros(m, dtype=np.int64)
    total = np.zeros(m, dtype=np.float64)
    weight = np.zeros(m) if work is None else np.asarray(work, dtype=np.float64)
    below: dict[int, int] = {}
    inner = np.flatnonzero(np.diff(child_ptr) > 0)
    for s in inner[::-1].tolist():
        base = int(first[s])
        bits = 0
        for c in child_idx[child_ptr[s] : child_ptr[s + 1]].tolist():
            bits |= (1 << (c - base)) | below.get(c, 0)
        below[s] = bits
        count[s] = bits.bit_count()
        members = [base + i for i in range(bits.bit_length()) if bits >> i & 1]
        total[s] = float(weight[members].sum())
    return count, total


def job_ptr(job: np.ndarray, n_jobs: int) -> np.ndarray:
    """Row pointers of each job's stages (``n_jobs + 1``), for stages stored job after job."""
    return np.searchsorted(job, np.arange(n_jobs + 1), side="left").astype(np.int64)
