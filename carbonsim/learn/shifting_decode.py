"""Capacity-aware decoding of the shifting network's choices (``batch_policy.decode: capacity``).

The network scores every runnable item on its own: with ``decode: independent`` each item takes its most
likely choice, so when many items prefer the same (clean, small) cluster, all of them are sent there; those
that do not fit wait until the deadline guard starts them, often too late. :func:`capacity_choices` decodes
the same logits greedily under the clusters' free capacity instead, without retraining (measured in
docs/learning_shifting.md: it does not help in the seed study, whose missed jobs wait in full *home*
clusters rather than crowd a clean one):

1. the softmax of every item's logits over ``[defer, region 0, ..., region R-1]``;
2. items are visited by decreasing probability of their most likely choice (ties: row order), the most
   confident first;
3. each item takes the most likely of its choices that is *feasible*, with the free CPUs and GPUs of each
   region (``view.free_cpus``, ``view.free_gpus``) as the capacity that remains:

   * defer is always feasible;
   * running in region ``r`` is feasible for an item with waiting tasks if at least one of them fits what
     remains of ``r`` (the engine's rule, :func:`carbonsim.core.jobs.resources.tasks_that_fit`, at scale
     one), and the item then takes from ``r`` what the tasks that fit use (at most its waiting tasks); or
     if its job runs in ``r`` now (staying where it runs keeps its running tasks going, whether or not a
     waiting one fits; it takes what fits);
   * an item with no waiting task (all its tasks run) keeps its most likely choice and takes nothing.

A job runs in one region at a time (:func:`carbonsim.learn.shifting_features.decisions` takes its first
row's region), so the rows of a job decode consistently: once one of its rows has chosen a region (the
job's most confident row), its other rows may only defer or run in that region; a job whose running tasks
cannot be interrupted may only defer or stay where it runs (as ``decisions`` places it anyway). Capacity is
counted from what is free now: tasks a deferred or moved job frees, a move's cancellation by
``decisions`` (a migration too slow for the deadline) and what the deadline guard starts afterwards are
not counted, so the decoding may still over- or under-fill a region slightly; the guard still starts every
item that must start.
"""

from __future__ import annotations

import numpy as np

from carbonsim.core.jobs import JobView, resources
from carbonsim.learn.shifting_features import DEFER
from carbonsim.policies.stages import job_starts, per_job


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits`` (items, choices)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p / p.sum(axis=1, keepdims=True), dtype=np.float64)


def capacity_choices(view: JobView, logits: np.ndarray) -> np.ndarray:
    """Per row of ``view.stages``: -1 (defer) or a region, decoded under the free capacity (module docstring).

    Args:
        view: The epoch's view (its stages and free CPUs and GPUs per region).
        logits: The network's logits, one row per item over ``[defer, region 0, ..., region R-1]``.

    Returns:
        One choice per row (int64).
    """
    st = view.stages
    n = len(st)
    out = np.full(n, DEFER, dtype=np.int64)
    if not n:
        return out
    p = softmax(np.asarray(logits, dtype=np.float64))
    order = np.argsort(-p.max(axis=1), kind="stable")
    ranked = np.argsort(-p, axis=1, kind="stable")  # each row's choices, most likely first (ties: defer, then index)
    free_cpu = [round(float(c) * resources.UNIT) for c in view.free_cpus]
    free_gpu = [[round(float(g) * resources.UNIT) for g in row] for row in view.free_gpus]
    cpu_m = resources.milli(st.cpus_per_task)
    gpu_m = resources.milli(st.gpus_per_task)
    gpu_type = st.gpu_type.astype(np.int64).tolist()
    waiting = st.waiting.astype(np.int64).tolist()
    where = st.region.astype(np.int64).tolist()
    starts = job_starts(st)
    job_of_row = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n))).tolist()
    runs = per_job(st.running > 0, starts, np.logical_or).tolist()
    pinned = per_job((st.running > 0) & ~st.interruptible.astype(bool), starts, np.logical_or).tolist()
    job_region = [DEFER] * starts.size
    for i in order.tolist():
        j = job_of_row[i]
        fixed = job_region[j] if job_region[j] >= 0 else (where[i] if pinned[i] else DEFER)
        if not waiting[i]:  # all its tasks run: its own choice, in its job's region once that is fixed
            choice = int(ranked[i, 0]) - 1
            out[i] = fixed if choice >= 0 and fixed >= 0 else choice
            if out[i] >= 0:
                job_region[j] = int(out[i])
            continue
        for c in ranked[i].tolist():
            r = c - 1
            if r < 0:
                break  # defer: always feasible (out[i] is already DEFER)
            if fixed >= 0 and r != fixed:
                continue
            tasks, gpu_of = _fit(free_cpu[r], free_gpu[r], cpu_m[i], gpu_m[i], gpu_type[i], waiting[i])
            if not tasks and not (runs[i] and where[i] == r):
                continue
            free_cpu[r] -= tasks * cpu_m[i]
            if gpu_m[i] and gpu_of >= 0:
                free_gpu[r][gpu_of] -= tasks * gpu_m[i]
            out[i] = r
            job_region[j] = r
            break
    return out


def _fit(free_cpu: int, free_gpu: list[int], cpu_m: int, gpu_m: int, gpu_type: int, waiting: int) -> tuple[int, int]:
    """How many of ``waiting`` tasks fit (at scale one) and on which GPU type (-1: none or any)."""
    if not cpu_m and not gpu_m:
        return waiting, DEFER  # a task that needs nothing always fits
    if max(free_cpu, 0) < cpu_m or (gpu_m and max(free_gpu, default=0) < gpu_m):
        return 0, DEFER
    tasks, _, kind = resources.tasks_that_fit(free_cpu, free_gpu, cpu_m, gpu_m, gpu_type, 1)
    return min(int(tasks), waiting), int(kind)


__all__ = ["capacity_choices", "softmax"]
