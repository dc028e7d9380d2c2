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
next 48 hours (the paper's experiments). Below the quota, the wrapped carbon-agnostic scheduler (FIFO in
arrival order, at home) starts jobs; CAP never preempts a running job.

carbonsim's units: the quota is in CPUs (``K`` = the region's ``batch_cpus``, ``B`` = ``min_share`` x
``K``). Deviation: the paper's jobs have no deadlines; here a job whose remaining work equals the time
left before its deadline starts regardless of the quota, so that CAP keeps deadlines like the other
batch policies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from carbonsim._schema import ConfigError
from carbonsim.config import BatchPolicyConfig
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import JobContext, JobView, must_start
from carbonsim.policies.registry import register_batch


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
class CapConfig(BatchPolicyConfig):
    """Parameters of CAP.

    Attributes:
        name: ``cap``.
        min_share: Minimum quota ``B`` as a share of each cluster's CPUs (the paper's moderate setting:
            20 of 100 machines).
    """

    min_share: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.min_share <= 1:
            raise ConfigError(f"min_share: expected a fraction in [0, 1], got {self.min_share!r}")


@register_batch("cap", CapConfig)
class Cap:
    """CAP (see the module docstring)."""

    def __init__(self, cfg: CapConfig) -> None:
        self.cfg = cfg
        self.last_quota: tuple[int, ...] = ()

    def reset(self, context: JobContext) -> None:
        """Keeps the cluster capacities."""
        self.context = context
        self.last_quota = ()

    def quota(self, view: JobView) -> list[int]:
        """Each region's CPU quota now."""
        out = []
        for r, capacity in enumerate(self.context.capacity_cpus):
            if capacity <= 0:
                out.append(0)
                continue
            forecast = view.forecast_gco2_per_kwh(r, MAX_HORIZON_H)
            minimum = math.floor(self.cfg.min_share * capacity)
            out.append(
                cap_quota(
                    view.intensity_gco2_per_kwh[r], float(forecast.min()), float(forecast.max()), capacity, minimum
                )
            )
        return out

    def schedule(self, view: JobView) -> Mapping[int, int]:
        """Running jobs keep running; waiting jobs start in arrival order while their home's quota allows."""
        quota = self.quota(view)
        self.last_quota = tuple(quota)
        capacity = self.context.capacity_cpus
        used = [capacity[r] - view.free_cpus[r] for r in range(len(capacity))]
        out: dict[int, int] = {}
        for job in view.active:
            if job.running:
                out[job.id] = job.region
                continue
            region = job.region if job.region >= 0 else job.home
            urgent = must_start(job, view.now_s)
            if urgent or used[region] + job.cpus <= quota[region]:
                out[job.id] = region
                used[region] += job.cpus
        return out
