"""CAP: carbon-aware provisioning by threshold, wrapped around a carbon-agnostic FIFO scheduler.

Lechowicz, Shenoy, Bashir, Hajiesmaili, Wierman, Delimitrou, "Carbon- and Precedence-Aware Scheduling for
Data Processing Clusters", SIGCOMM 2025 (arXiv 2502.09717), section 4.2; thresholds as in the authors'
code (umass-solar/carbon-aware-dag, adamlechowicz/cap-k8s).

CAP sets each cluster's resource quota ``r(t)`` from the current intensity ``c(t)`` by ``(K - B)``-min search
thresholds (El-Yaniv et al.'s online search), where ``K`` is the cluster's capacity and ``B`` the minimum
quota:

    Phi_i = U - (U - U / alpha) x (1 + 1 / ((K - B) alpha))^(i - 1),   i = 1 .. K - B
    r(t) = B + #{i : Phi_i >= c(t)}

with ``alpha = 1 / (1 + W0((L / U - 1) / e))`` (the large-``K`` form of the competitive ratio the code
uses; W0 is Lambert's W) and ``L``, ``U`` the lowest and highest forecast intensity of the region over the
next 48 hours (the paper's experiments). Below the quota, the wrapped carbon-agnostic scheduler starts
work; CAP never preempts running work.

carbonsim's units: the quota counts the CPUs of running tasks (``K`` = the region's ``batch_cpus``, ``B`` =
``min_share`` x ``K``) and, separately, the GPUs of each type (``K`` = the region's GPUs of that type, same
thresholds). Each epoch, running tasks keep running and the waiting tasks of the runnable stages take what
is left of their region's quotas in the wrapped scheduler's order (``base``: ``fifo``, jobs in arrival
order and each job's stages in topological order, the authors' CAP-FIFO; or a probabilistic scheduler's
draw, CAP-Decima's analogue), as many tasks of a stage as fit (so a small stage may pass a large one). On
independent jobs (one task each) this is job-level FIFO under a CPU quota, unchanged. Deviation: the
paper's jobs have no deadlines; here a stage whose job's deadline forces it to start now
(:func:`carbonsim.policies.stages.urgent_rows`) starts regardless of the quota, so that CAP keeps deadlines
like the other batch policies. Jobs run at home (or where they run): CAP provisions each cluster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import lambertw

from carbonsim._schema import ConfigError
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import Decision, JobContext, JobView, resources
from carbonsim.policies.registry import register_batch
from carbonsim.policies.scorers import StageSchedulerConfig, draw_order, make_scorer
from carbonsim.policies.stages import row_regions, settle_deadlines, stage_decisions, urgent_rows


def cap_alpha(low: float, high: float) -> float:
    """CAP's ``alpha`` for intensities within ``[low, high]``: ``1 / (1 + W0((low / high - 1) / e))``."""
    if high <= 0 or low >= high:
        return 1.0
    return float(1.0 / (1.0 + lambertw((low / high - 1.0) / math.e).real))


def cap_thresholds(low: float, high: float, steps: int) -> np.ndarray:
    """The ``steps`` decreasing thresholds ``Phi_1 .. Phi_steps`` for intensities within ``[low, high]``."""
    if steps <= 0:
        return np.zeros(0)
    alpha = cap_alpha(low, high)
    i = np.arange(1, steps + 1)
    return np.asarray(high - (high - high / alpha) * (1.0 + 1.0 / (steps * alpha)) ** (i - 1), dtype=np.float64)


def cap_quota(intensity: float, low: float, high: float, capacity: int, minimum: int) -> int:
    """CAP's quota: the minimum plus the number of thresholds at or above the current intensity."""
    return minimum + int((cap_thresholds(low, high, capacity - minimum) >= intensity).sum())


@dataclass(frozen=True)
class CapConfig(StageSchedulerConfig):
    """Parameters of CAP.

    Attributes:
        name: ``cap``.
        base: The wrapped scheduler, the order in which waiting stages take the quota (``fifo``, the
            default: jobs in arrival order, each job's stages in topological order; ``critical_path``: drawn
            from its distribution, see :mod:`carbonsim.policies.scorers`).
        min_share: Minimum quota ``B`` as a share of each cluster's CPUs (and GPUs of each type) (the paper's
            moderate setting: 20 of 100 machines).
    """

    min_share: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.min_share <= 1:
            raise ConfigError(f"min_share: expected a fraction in [0, 1], got {self.min_share!r}")


@register_batch("cap", CapConfig)
class Cap:
    """CAP (see the module docstring)."""

    def __init__(self, cfg: CapConfig) -> None:
        self.cfg = cfg
        self.scorer = make_scorer(cfg)
        self.last_quota: tuple[int, ...] = ()
        self.last_gpu_quota: tuple[tuple[int, ...], ...] = ()

    def reset(self, context: JobContext) -> None:
        """Keeps the cluster capacities and resets the wrapped scheduler."""
        self.context = context
        self.scorer.reset(context)
        self.last_quota = ()
        self.last_gpu_quota = ()

    def _bounds(self, view: JobView, region: int) -> tuple[float, float, float]:
        forecast = view.forecast_gco2_per_kwh(region, MAX_HORIZON_H)
        return float(view.intensity_gco2_per_kwh[region]), float(forecast.min()), float(forecast.max())

    def _quota(self, bounds: tuple[float, float, float], capacity: int) -> int:
        if capacity <= 0:
            return 0
        c, low, high = bounds
        return cap_quota(c, low, high, capacity, math.floor(self.cfg.min_share * capacity))

    def quota(self, view: JobView) -> list[int]:
        """Each region's CPU quota now."""
        out = []
        for r, capacity in enumerate(self.context.capacity_cpus):
            out.append(self._quota(self._bounds(view, r), capacity) if capacity > 0 else 0)
        return out

    def gpu_quota(self, view: JobView) -> list[list[int]]:
        """Each region's GPU quota per type now (the same thresholds over each type's GPUs)."""
        out = []
        for r, row in enumerate(self.context.capacity_gpus):
            bounds = self._bounds(view, r) if any(k > 0 for k in row) else (0.0, 0.0, 0.0)
            out.append([self._quota(bounds, k) for k in row])
        return out

    def schedule(self, view: JobView) -> Mapping[Any, Decision]:
        """Running tasks keep running; waiting stages take the quota in the base scheduler's order."""
        quota = self.quota(view)
        gpu_quota = self.gpu_quota(view)
        self.last_quota = tuple(quota)
        self.last_gpu_quota = tuple(tuple(row) for row in gpu_quota)
        st = view.stages
        n = len(st)
        if not n:
            return {}
        unit = resources.UNIT
        ctx = self.context
        # Quota left per region, in thousandths: the quota minus what runs now.
        cpu_left = [
            q * unit - (round(k * unit) - round(f * unit))
            for q, k, f in zip(quota, ctx.capacity_cpus, view.free_cpus, strict=True)
        ]
        gpu_left = [
            [q * unit - (k * unit - round(f * unit)) for q, k, f in zip(qs, ks, fs, strict=True)]
            for qs, ks, fs in zip(gpu_quota, ctx.capacity_gpus, view.free_gpus, strict=True)
        ]
        region = row_regions(st)
        urgent = urgent_rows(view)
        allow = st.running.astype(np.int64)
        total = allow + st.waiting.astype(np.int64)
        rows = np.flatnonzero(st.waiting > 0)
        if self.cfg.base != "fifo":
            rows = draw_order(self.scorer.logits(view), rows, ctx.rng)
        for i in rows.tolist():
            r = int(region[i])
            cpu_m = round(float(st.cpus_per_task[i]) * unit)
            gpu_m = round(float(st.gpus_per_task[i]) * unit)
            types = [int(st.gpu_type[i])] if st.gpu_type[i] >= 0 else list(range(len(gpu_left[r])))
            t = max(types, key=lambda k: gpu_left[r][k]) if gpu_m and types else -1
            waiting = int(st.waiting[i])
            if urgent[i]:
                take = waiting
            else:
                take = waiting if cpu_m == 0 else min(waiting, max(0, cpu_left[r] // cpu_m))
                if gpu_m:
                    take = min(take, max(0, gpu_left[r][t] // gpu_m) if t >= 0 else 0)
            if take <= 0:
                continue
            allow[i] += take
            cpu_left[r] -= take * cpu_m
            if gpu_m and t >= 0:
                gpu_left[r][t] -= take * gpu_m

        def force(i: int, tasks: int) -> None:  # a forced stage's tasks count against the quota
            r = int(region[i])
            cpu_left[r] -= tasks * round(float(st.cpus_per_task[i]) * unit)
            gpu_m = round(float(st.gpus_per_task[i]) * unit)
            if gpu_m and gpu_left[r]:
                t = (
                    int(st.gpu_type[i])
                    if st.gpu_type[i] >= 0
                    else max(range(len(gpu_left[r])), key=gpu_left[r].__getitem__)
                )
                gpu_left[r][t] -= tasks * gpu_m

        settle_deadlines(view, allow, total, force)
        return stage_decisions(st, region, allow, total)
