"""CarbonScaler: elastic scaling of interruptible jobs toward the hours of most work per gram.

Hanafy, Liang, Lechowicz, Irwin, Shenoy, "CarbonScaler: Leveraging Cloud Workload Elasticity for
Optimizing Carbon-Efficiency", Proc. ACM Meas. Anal. Comput. Syst. (SIGMETRICS) 2024.

A job's *marginal capacity curve* says how much more work per hour its ``k``-th allocation adds; with
Amdahl's law (``batch.parallel_fraction``) the ``k``-th adds ``c(k) - c(k - 1)``, ``c(k) = 1 / ((1 - p) +
p / k)``, which falls with ``k``. CarbonScaler's greedy plan: over every (hour, ``k``) pair in the job's
window, take the pairs in decreasing order of marginal work per unit of carbon, ``(c(k) - c(k - 1)) /
I(hour)``, until the work is covered; hour ``h`` then runs on as many allocations as pairs were taken in
it. Because the curve is concave, taking pairs in this order never picks the ``k``-th allocation of an
hour before the ``(k - 1)``-th, and the plan is optimal for the forecast (the paper's argument).

carbonsim's version plans once per job, on the intensity forecast of its home region, on the signal's
hourly slots, up to ``batch.max_scale`` allocations. Non-interruptible jobs cannot be rescaled or
suspended: they start at the lowest forecast window at scale 1 (as Let's Wait Awhile). A job whose plan
could not be followed (the cluster was full) runs at once at full scale when the time left before its
deadline no longer exceeds its remaining work at full scale. A job's work is the time it needs at the
most it can run at once in its home region (scale 1): for a DAG with more tasks left than fit at once in
the home cluster, Graham's list-scheduling bound, as for Let's Wait Awhile
(:mod:`carbonsim.policies.batch`). At full scale it needs the bound with the tasks that fit at that scale,
over the speed-up (:meth:`~carbonsim.policies.stages.WaveTimes.time_left_in_s`). The greedy plan counts
the bound at scale 1 as the job's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from carbonsim.config import BatchPolicyConfig
from carbonsim.core.jobs import JobContext, JobInfo, JobView
from carbonsim.policies.batch import home_window, lowest_window_start
from carbonsim.policies.registry import register_batch
from carbonsim.policies.stages import WaveTimes, must_run


@dataclass(frozen=True)
class CarbonScalerConfig(BatchPolicyConfig):
    """Parameters of CarbonScaler.

    Attributes:
        name: ``carbonscaler``.
    """


@register_batch("carbonscaler", CarbonScalerConfig)
class CarbonScaler:
    """CarbonScaler (see the module docstring)."""

    def __init__(self, cfg: CarbonScalerConfig) -> None:
        self.cfg = cfg
        # Per job: (slot start s, slot end s, scale) for the planned slots, in time order.
        self.plans: dict[int, list[tuple[float, float, int]]] = {}

    def reset(self, context: JobContext) -> None:
        """Keeps the speed-up curve and clears the plans."""
        self.context = context
        self.speedup = np.array(context.speedup)
        self.plans = {}
        self.waves = WaveTimes(context)

    def need_s(self, job: JobInfo, view: JobView) -> float:
        """Time the job's remaining work needs in its region (or home) at scale 1, in s."""
        return self.waves.time_left_in_s(job, view, job.region if job.region >= 0 else job.home)

    def plan(self, job: JobInfo, view: JobView) -> list[tuple[float, float, int]]:
        """The greedy work-per-carbon plan of an interruptible job (lowest window if not interruptible)."""
        need = self.need_s(job, view)
        slots, latest = home_window(job, view, need)
        if not slots.intensity.size:
            return []
        if not job.interruptible:
            if latest <= view.now_s:
                return []
            s = lowest_window_start(slots, view.now_s, latest, need)
            return [(s, s + need, 1)]
        marginal = np.diff(self.speedup)  # work per second added by the k-th allocation, k = 1..max
        length = slots.end_s - slots.start_s
        n_slots, n_k = slots.intensity.size, marginal.size
        ratio = marginal[None, :] / np.maximum(slots.intensity[:, None], 1e-12)
        # Decreasing ratio; ties: earlier slot, then lower k.
        order = np.lexsort((np.tile(np.arange(n_k), n_slots), np.repeat(np.arange(n_slots), n_k), -ratio.ravel()))
        scale = np.zeros(n_slots, dtype=np.int64)
        for flat in order:
            if need <= 0:
                break
            t, k = divmod(int(flat), n_k)
            scale[t] = max(scale[t], k + 1)
            need -= marginal[k] * length[t]
        return [(float(slots.start_s[t]), float(slots.end_s[t]), int(scale[t])) for t in range(n_slots) if scale[t] > 0]

    def schedule(self, view: JobView) -> Mapping[int, int | tuple[int, int]]:
        """Runs each job at its planned scale in its planned slots, at full scale when its deadline is near."""
        out: dict[int, int | tuple[int, int]] = {}
        now = view.now_s
        top = self.context.max_scale
        top_rate = float(self.speedup[top])
        self.waves.keep({job.id for job in view.active})
        for job in view.active:
            plan = self.plans.get(job.id)
            if plan is None:
                plan = self.plans[job.id] = self.plan(job, view)
            region = job.region if job.region >= 0 else job.home
            if job.running and not job.interruptible:
                out[job.id] = (region, job.scale)
                continue
            full = top if job.interruptible else 1
            rate = float(self.speedup[full])
            need = self.waves.time_left_in_s(job, view, region, full) / rate
            if not plan or now >= plan[-1][1] or must_run(job, now, need, top_rate, rate):
                out[job.id] = (region, full)
                continue
            for a, b, k in plan:
                if a <= now < b:
                    out[job.id] = (region, k)
                    break
        return out
