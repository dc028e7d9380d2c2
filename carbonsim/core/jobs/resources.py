"""Batch clusters: CPUs and GPUs per region, what one task needs, how many tasks fit, and their power.

Capacity and demand are counted in integer thousandths (milli-CPUs and milli-GPUs), so the fractional
demands of real traces (half a core, a quarter of a GPU) are added and taken back exactly, however many
times tasks start and stop.

A task needing GPUs of a type runs only where that type has capacity; a task of ``ANY_GPU`` type takes
GPUs of whichever type of the region has room (the first type, in the scenario's order, that fits the most
tasks). Power of a running task: ``cpus x cpu_busy_w + gpus x gpu_busy_w[type]``, times the region's PUE
(applied by the accounting). Idle CPUs and GPUs of a batch cluster draw nothing: the cluster is modelled
as capacity rented or powered on for the work, as in the GAIA and CarbonScaler studies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from carbonsim.core.jobs.model import ANY_GPU, Stages

#: Capacity units per CPU or GPU.
UNIT = 1000
#: ``gpu_type`` of a task whose GPU type no region of the run has (it fails on arrival).
NOWHERE = -2
#: Tasks that "fit" when a resource is not needed at all.
_UNBOUNDED = 1 << 62


def milli(values: np.ndarray) -> list[int]:
    """CPUs or GPUs as integer thousandths (rounded to the nearest)."""
    return [int(v) for v in np.rint(np.asarray(values, dtype=np.float64) * UNIT).astype(np.int64)]


def map_gpu_types(stages: Stages, gpu_types: Sequence[str]) -> np.ndarray:
    """Each stage's GPU type as an index into the run's ``gpu_types`` (``ANY_GPU``, or ``NOWHERE`` if absent)."""
    lookup = np.array([gpu_types.index(t) if t in gpu_types else NOWHERE for t in stages.gpu_types], dtype=np.int16)
    own = stages.gpu_type.astype(np.int64)
    return np.where(own == ANY_GPU, ANY_GPU, lookup[np.maximum(own, 0)] if lookup.size else NOWHERE).astype(np.int16)


def fits_regions(
    cpu_m: np.ndarray,
    gpu_m: np.ndarray,
    gpu_type: np.ndarray,
    capacity_cpus: Sequence[float],
    capacity_gpus: Sequence[Sequence[int]],
) -> np.ndarray:
    """Whether one task of each stage fits each region's empty cluster: bool array (stages, regions).

    Args:
        cpu_m: Milli-CPUs per task of each stage.
        gpu_m: Milli-GPUs per task of each stage.
        gpu_type: Run GPU type index of each stage (``ANY_GPU``, ``NOWHERE``).
        capacity_cpus: CPUs per region.
        capacity_gpus: GPUs per region and type.
    """
    cap_c = np.rint(np.asarray(capacity_cpus, dtype=np.float64) * UNIT).astype(np.int64)
    n_types = max((len(row) for row in capacity_gpus), default=0)
    cap_g = np.zeros((cap_c.size, n_types + 1), dtype=np.int64)  # last column: no such type
    for r, row in enumerate(capacity_gpus):
        cap_g[r, : len(row)] = np.asarray(row, dtype=np.int64) * UNIT
    any_type = cap_g[:, :n_types].max(axis=1, initial=0)
    column = np.where(gpu_type >= 0, gpu_type, n_types).astype(np.int64)
    have = np.where((gpu_type == ANY_GPU)[:, None], any_type[None, :], cap_g[:, column].T)
    ok_gpu = (gpu_m[:, None] == 0) | (gpu_m[:, None] <= have)
    return np.asarray((cpu_m[:, None] <= cap_c[None, :]) & ok_gpu, dtype=bool)


def tasks_that_fit(
    free_cpu: int, free_gpu: Sequence[int], cpu_m: int, gpu_m: int, gpu_type: int, scale: int
) -> tuple[int, int, int]:
    """How many tasks of a stage start now in a region, at which scale, on which GPU type.

    Each task holds ``scale`` copies of its demand. If not even one task fits at ``scale``, one task starts
    at the largest scale that fits (the rule of elastic jobs). For ``ANY_GPU``, the type that fits the most
    tasks (ties: the first) is chosen.

    Args:
        free_cpu: Free milli-CPUs of the region.
        free_gpu: Free milli-GPUs of the region per type.
        cpu_m: Milli-CPUs per task.
        gpu_m: Milli-GPUs per task.
        gpu_type: Run GPU type index, ``ANY_GPU`` or ``NOWHERE``.
        scale: Copies of the allocation asked for (>= 1).

    Returns:
        (tasks, scale, gpu type): tasks is 0 when none fits; the type is ``ANY_GPU`` without GPUs.
    """
    if gpu_m == 0:
        at_one = free_cpu // cpu_m
        if at_one >= scale:
            return free_cpu // (cpu_m * scale), scale, ANY_GPU
        return (1, at_one, ANY_GPU) if at_one >= 1 else (0, 0, ANY_GPU)
    if gpu_type == NOWHERE:
        return 0, 0, NOWHERE
    types = range(len(free_gpu)) if gpu_type == ANY_GPU else (gpu_type,)
    best = (0, 0, gpu_type)
    best_key = (-1, -1)
    for t in types:
        cpus_at_one = free_cpu // cpu_m if cpu_m else _UNBOUNDED
        at_one = min(cpus_at_one, free_gpu[t] // gpu_m)
        at_scale = min(free_cpu // (cpu_m * scale) if cpu_m else _UNBOUNDED, free_gpu[t] // (gpu_m * scale))
        key = (at_scale, at_one)
        if key > best_key:
            best_key = key
            best = (at_scale, scale, t) if at_scale >= 1 else ((1, at_one, t) if at_one >= 1 else (0, 0, t))
    return best
