"""What the learned shifting scheduler reads and how its choices become batch decisions (no torch).

The state of a batch epoch is three sets of numbers, each bounded to [-1, 1]:

* one **item** row per runnable stage of ``view.stages`` (a one-stage job is one item), :data:`ITEM_FEATURES`
  columns: its remaining work and critical path, slack to the deadline, CPUs and GPUs, DAG features
  (descendants and their work, the job's work left), tasks waiting and running, whether it runs and whether
  its job is interruptible; plus, per item, its job's home region and the region it runs in (-1: none),
  which the model turns into item x region pair features;
* one **region** row per region, :data:`REGION_FEATURES` columns: intensity now and a forecast summary
  (mean of the next 6 hours, minimum and maximum of the next 24, where now lies between them), price now,
  free CPU and GPU shares, PUE;
* one **global** row, :data:`GLOBAL_FEATURES` columns: the operator's weights alpha, beta, gamma (carbon,
  lateness, cost), the hour of day and of week, time to the next hour, the number of items.

A *choice* per item is -1 (defer) or a region index. :func:`decisions` turns choices into the engine's
decisions: a job runs in one region at a time, so the region of a job is the choice of its first item
(topological order) that chose one, or where it runs; every item of a job that runs is placed there.
Running tasks of a job that cannot be interrupted stay covered where they run. Then the deadline guard of
the stage policies (:func:`~carbonsim.policies.stages.settle_deadlines`) starts every item that must start
now for its job to meet a deadline its critical path allows, in its job's region (or home): the learned
scheduler therefore never misses such a deadline, and what it learns is carbon (and cost) against lateness
only where capacity is contended.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from carbonsim.core.jobs import Decision, JobContext, JobView, Run
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.policies.stages import job_starts, row_regions, settle_deadlines, stage_decisions

#: Columns of an item row.
ITEM_FEATURES = 14
#: Columns of an item x region row.
PAIR_FEATURES = 4
#: Columns of an item x region row read from the forecast (zeroed by the "no forecasts" ablation).
FORECAST_PAIR_COLUMNS = (2, 3)
#: Forecast hours the pair features look ahead.
PAIR_HORIZON_H = 48
#: Columns of a region row.
REGION_FEATURES = 10
#: Columns of the global row.
GLOBAL_FEATURES = 10
#: Columns of a region row that summarise the forecast (zeroed by the "no forecasts" ablation).
FORECAST_COLUMNS = (1, 2, 3, 4)
#: Intensity scale of the features, gCO2/kWh.
INTENSITY_SCALE = 1000.0
#: Price scale of the features, USD/kWh.
PRICE_SCALE = 0.3
#: A choice: defer.
DEFER = -1

_LOG_DAY_H = math.log1p(48.0)
_LOG_TASKS = math.log1p(1000.0)


def _log_h(seconds: np.ndarray) -> np.ndarray:
    """Durations in s as log1p(hours) / log1p(48), clipped to [0, 1]."""
    out: np.ndarray = np.clip(np.log1p(np.maximum(seconds, 0.0) / SECONDS_PER_HOUR) / _LOG_DAY_H, 0.0, 1.0)
    return out


def item_features(view: JobView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item rows (float32, (n, :data:`ITEM_FEATURES`)), home region and current region (-1) per item (int64)."""
    st = view.stages
    n = len(st)
    out = np.zeros((n, ITEM_FEATURES), dtype=np.float32)
    if not n:
        return out, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    now = view.now_s
    slack_h = (st.deadline_s - now - st.path_s) / SECONDS_PER_HOUR
    out[:, 0] = _log_h(st.remaining_s)
    out[:, 1] = _log_h(st.path_s)
    out[:, 2] = np.tanh(slack_h / 6.0)
    out[:, 3] = np.tanh(slack_h / 0.5)  # fine resolution near the deadline
    out[:, 4] = np.clip(np.log1p(st.cpus_per_task) / math.log1p(128.0), 0.0, 1.0)
    out[:, 5] = np.clip(st.gpus_per_task / 8.0, 0.0, 1.0)
    out[:, 6] = st.descendants / (1.0 + st.descendants)
    out[:, 7] = _log_h(st.descendant_work_s)
    out[:, 8] = _log_h(st.job_work_s)
    out[:, 9] = np.clip(np.log1p(st.waiting) / _LOG_TASKS, 0.0, 1.0)
    out[:, 10] = np.clip(np.log1p(st.running) / _LOG_TASKS, 0.0, 1.0)
    out[:, 11] = st.running > 0
    out[:, 12] = st.interruptible
    out[:, 13] = np.tanh((now - st.arrival_s) / SECONDS_PER_HOUR / 6.0)
    return out, st.home.astype(np.int64), st.region.astype(np.int64)


def pair_features(view: JobView, home: np.ndarray, current: np.ndarray, n_regions: int) -> np.ndarray:
    """Item x region rows, float32, (n, regions, :data:`PAIR_FEATURES`), each in [0, 1].

    Columns: the region is the item's home; its job runs there; and, over the hours the item may still wait
    (its slack to the deadline, at most :data:`PAIR_HORIZON_H` hours of the forecast, lead 0 being now), the
    share of the intensity now that waiting for the region's cleanest forecast hour would save, and the
    share of those hours that are cleaner than now. They say per item whether deferring can pay.
    """
    st = view.stages
    n = len(st)
    out = np.zeros((n, n_regions, PAIR_FEATURES), dtype=np.float32)
    if not n:
        return out
    rows = np.arange(n)
    out[rows, home, 0] = 1.0
    on = current >= 0
    out[rows[on], current[on], 1] = 1.0
    slack_h = (st.deadline_s - view.now_s - st.path_s) / SECONDS_PER_HOUR
    lead = np.clip(np.floor(slack_h), 0, PAIR_HORIZON_H - 1).astype(np.int64)
    for r in range(n_regions):
        fc = view.forecast_gco2_per_kwh(r, PAIR_HORIZON_H)
        now_c = float(view.intensity_gco2_per_kwh[r])
        fc = np.where(np.isfinite(fc), fc, now_c) if fc.size else np.array([now_c])
        k = np.minimum(lead, fc.size - 1)
        lowest = np.minimum.accumulate(fc)[k]
        cleaner = np.cumsum(fc < now_c)[k] / (k + 1.0)
        out[:, r, 2] = np.clip((now_c - lowest) / now_c, 0.0, 1.0) if now_c > 0 else 0.0
        out[:, r, 3] = cleaner
    return out


def region_features(view: JobView, context: JobContext) -> np.ndarray:
    """Region rows, float32, (regions, :data:`REGION_FEATURES`)."""
    n = len(context.region_names)
    out = np.zeros((n, REGION_FEATURES), dtype=np.float32)
    cap_cpu = np.asarray(context.capacity_cpus, dtype=np.float64)
    cap_gpu = np.array([sum(row) for row in context.capacity_gpus], dtype=np.float64)
    free_gpu = np.array([sum(row) for row in view.free_gpus], dtype=np.float64)
    for r in range(n):
        now_c = float(view.intensity_gco2_per_kwh[r])
        fc = view.forecast_gco2_per_kwh(r, 24)
        fc = fc[np.isfinite(fc)]
        if not fc.size:
            fc = np.array([now_c])
        lo, hi = float(fc.min()), float(fc.max())
        out[r, 0] = now_c / INTENSITY_SCALE
        out[r, 1] = float(fc[:6].mean()) / INTENSITY_SCALE
        out[r, 2] = lo / INTENSITY_SCALE
        out[r, 3] = hi / INTENSITY_SCALE
        out[r, 4] = (now_c - lo) / (hi - lo) if hi > lo else 0.0
        out[r, 5] = float(view.price_usd_per_kwh[r]) / PRICE_SCALE
        out[r, 6] = view.free_cpus[r] / cap_cpu[r] if cap_cpu[r] > 0 else 0.0
        out[r, 7] = free_gpu[r] / cap_gpu[r] if cap_gpu[r] > 0 else 0.0
        out[r, 8] = context.pue[r] - 1.0
        out[r, 9] = cap_gpu[r] > 0
    return np.clip(out, -1.0, 1.0)


def set_weights(row: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
    """Writes the weight columns of a global row in place (the weights / 10, clipped, and their shares).

    Imitation uses it to relabel a recorded epoch with another operating point.
    """
    row[0:3] = np.clip(np.asarray(weights, dtype=np.float64) / 10.0, 0.0, 1.0)
    total = sum(weights)
    row[3:6] = np.asarray(weights) / total if total > 0 else 0.0
    return row


def global_features(view: JobView, weights: tuple[float, float, float], n_items: int) -> np.ndarray:
    """The global row, float32, (:data:`GLOBAL_FEATURES`,): weights, time, number of items.

    Args:
        view: The epoch's view.
        weights: alpha (per kg CO2eq), beta (per job-hour late), gamma (per USD), each in [0, 10] here
            (larger values are clipped in the features, not in the reward).
        n_items: Runnable items of the epoch.
    """
    now = view.now_s
    hour = now / SECONDS_PER_HOUR
    out = np.zeros(GLOBAL_FEATURES, dtype=np.float32)
    set_weights(out, weights)
    out[6] = math.sin(2 * math.pi * hour / 24.0)
    out[7] = math.cos(2 * math.pi * hour / 24.0)
    out[8] = 1.0 - (hour - math.floor(hour))
    out[9] = min(math.log1p(n_items) / _LOG_TASKS, 1.0)
    return out


def decisions(view: JobView, choices: np.ndarray, context: JobContext | None = None) -> tuple[dict[Any, Decision], int]:
    """The engine's decisions from one choice per row of ``view.stages``, under the deadline guard.

    A move (a job placed away from where it runs, or from its home before its first start) delays its tasks
    by the transfer of their state (:meth:`JobContext.migration_s`), which the deadline guard's critical
    paths do not include; with ``context``, a move that would leave the job less than that delay before its
    latest start is cancelled (the job stays where it is).

    Args:
        view: The epoch's view.
        choices: Per row: :data:`DEFER` (-1) or a region index.
        context: The run's static facts (for the moves' delays); None: moves are not checked.

    Returns:
        The decisions, and the number of rows the deadline guard started against the choice.
    """
    st = view.stages
    n = len(st)
    if not n:
        return {}, 0
    choices = np.asarray(choices, dtype=np.int64)
    running = st.running.astype(np.int64)
    total = running + st.waiting.astype(np.int64)
    region = row_regions(st)
    starts = job_starts(st)
    counts = np.diff(np.append(starts, n))
    job_of_row = np.repeat(np.arange(starts.size), counts)
    # A job's region: where it runs if it cannot move (running, not interruptible), else its first row's
    # choice, else where it is.
    chosen = np.where(choices >= 0, choices, np.iinfo(np.int64).max)
    first_choice = np.minimum.reduceat(np.where(choices >= 0, np.arange(n), n), starts)
    job_region = region[starts].copy()
    has = first_choice < n
    job_region[has] = chosen[first_choice[has]]
    pinned = (st.running > 0) & ~st.interruptible
    pinned_job = np.logical_or.reduceat(pinned, starts)
    job_region[pinned_job] = region[starts][pinned_job]
    moving = np.flatnonzero(job_region != region[starts])
    if context is not None and moving.size:
        tasks = (st.running + st.waiting).astype(np.float64)
        cpus = np.add.reduceat(tasks * st.cpus_per_task, starts)
        gpus = np.add.reduceat(tasks * st.gpus_per_task, starts)
        latest = st.deadline_s[starts[moving]] - np.maximum.reduceat(st.path_s, starts)[moving]
        delay_of: dict[tuple[float, float], float] = {}  # per job shape: jobs mostly share a few
        delay_s = np.array(
            [
                delay_of[key] if key in delay_of else delay_of.setdefault(key, context.migration_s(*key))
                for key in zip(cpus[moving].tolist(), gpus[moving].tolist(), strict=True)
            ]
        )
        late = moving[view.now_s + delay_s > latest]
        job_region[late] = region[starts[late]]
    row_region = job_region[job_of_row]
    allow = np.where(choices >= 0, total, 0)
    allow = np.where(pinned_job[job_of_row], np.maximum(allow, running), allow)
    before = allow.copy()
    settle_deadlines(view, allow, total)
    forced = int(np.count_nonzero(allow > before))
    return stage_decisions(st, row_region, allow, total), forced


def choices_of(view: JobView, decided: Mapping[Any, Decision]) -> np.ndarray:
    """The choice per row of ``view.stages`` that a policy's decisions amount to (for imitation).

    A row runs (its job's region) when a job key or its stage key covers it, else it is deferred.
    """
    st = view.stages
    out = np.full(len(st), DEFER, dtype=np.int64)
    for i, (j, k) in enumerate(zip(st.job.tolist(), st.stage.tolist(), strict=True)):
        d = decided.get((j, k), decided.get(j))
        if d is None:
            continue
        out[i] = d.region if isinstance(d, Run) else d[0] if isinstance(d, tuple) else int(d)
    return out


__all__ = [
    "DEFER",
    "FORECAST_COLUMNS",
    "FORECAST_PAIR_COLUMNS",
    "GLOBAL_FEATURES",
    "ITEM_FEATURES",
    "PAIR_FEATURES",
    "REGION_FEATURES",
    "choices_of",
    "decisions",
    "global_features",
    "item_features",
    "pair_features",
    "region_features",
    "set_weights",
]
