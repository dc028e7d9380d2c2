"""PCAPS: carbon- and precedence-aware scheduling of DAG jobs by relative importance and a carbon threshold.

Lechowicz, Shenoy, Bashir, Hajiesmaili, Wierman, Delimitrou, "Carbon- and Precedence-Aware Scheduling for
Data Processing Clusters", SIGCOMM 2025 (arXiv 2502.09717). PCAPS wraps a probabilistic scheduler of
stages (Decima in the paper; here a :class:`~carbonsim.policies.scorers.StageScorer`, ``base``). When a
stage ``v`` is drawn from the scheduler's distribution ``p``, its *relative importance* is
``r = p(v) / max p`` and it runs now only if

    Psi_gamma(r) = gamma L + (1 - gamma) U + (U - gamma L - (1 - gamma) U) (e^(gamma r) - 1) / (e^gamma - 1)

is at least the current intensity ``c(t)``; otherwise it is deferred. ``Psi`` rises from ``gamma L + (1 -
gamma) U`` at ``r = 0`` to ``U`` at ``r = 1``, so the most important stage always runs (``c <= U``);
``gamma`` in [0, 1] trades carbon for completion time (``gamma = 0``: ``Psi = U``, carbon-agnostic). ``L`` and
``U`` are 0.95 x the lowest and the highest forecast intensity of the next 48 hours (the current hour
included), as in the authors' simulator (umass-solar/carbon-aware-dag). A stage that runs is granted, as
there, ``n' = floor(n - gamma (n - min(ceil(n f), n)))`` of the ``n`` executors (tasks) it could take, with
``f = min(e^(gamma (L - c)), 1 - min(0.9, gamma))``; in gCO2/kWh, ``e^(gamma (L - c))`` is tiny unless ``c``
is within a few g/kWh of ``L``, so ``n'`` is about ``(1 - gamma) n + gamma``. Granted tasks keep their
executors: the stage runs in waves of its grant until its tasks are done, without asking again (Decima's
executors stay on their stage), and a later draw may grant it more.

carbonsim's epochs hold many of the simulator's scheduling events at once. At each epoch:

1. stages whose deadline forces them (:func:`~carbonsim.policies.stages.urgent_rows`) start every waiting
   task, regardless of carbon (*deviation*: the paper's jobs have no deadlines; carbonsim keeps them the
   same way for every batch policy);
2. stages with a grant keep it (running tasks are never preempted) and start tasks up to it;
3. the other stages with tasks not yet granted are drawn one by one from ``p`` (without replacement, the
   policy's random stream) while the cluster has room. ``draw: sample`` (default): ``r`` is relative to
   the most likely of *all* the epoch's runnable stages, running ones included, so a stage stays deferred
   while more important work (its job's critical path, a shorter job) is in the cluster, and a deferred
   draw does not stop the others. ``draw: sequential`` follows the authors' simulator event by event: ``r``
   is relative to the stages not drawn yet (the mask of Decima's network), and the first deferral leaves
   the rest of the free capacity idle until the next epoch (their "dummy" task).

Regions: PCAPS schedules one cluster; on several regions each job runs in its home region (or where it
runs), judged by that region's intensity and forecast. The scenario's forecaster gives ``L`` and ``U``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import Decision, JobContext, JobView
from carbonsim.policies.registry import register_batch
from carbonsim.policies.scorers import (
    StageSchedulerConfig,
    draw_order,
    make_scorer,
    relative_importance,
    sequential_draws,
)
from carbonsim.policies.stages import Room, row_regions, settle_deadlines, stage_decisions, urgent_rows

#: Bits of a stage's index within its job in the keys of :attr:`Pcaps.grants`.
KEY_BITS = 24


def psi(r: float, gamma: float, low: float, high: float) -> float:
    """PCAPS's threshold ``Psi_gamma(r)`` for relative importance ``r`` in [0, 1] (``U`` when ``gamma = 0``)."""
    base = gamma * low + (1.0 - gamma) * high
    if gamma <= 0.0:
        return high
    return base + (high - base) * math.expm1(gamma * r) / math.expm1(gamma)


def granted_tasks(n: int, gamma: float, low: float, intensity: float) -> int:
    """Tasks (executors) granted to a stage that could take ``n``: the authors' carbon scaling, at least one.

    ``f = min(e^(gamma (L - c)), 1 - min(0.9, gamma))``, ``n' = floor(n - gamma (n - min(ceil(n f), n)))``.
    """
    if n <= 0 or gamma <= 0.0:
        return max(n, 0)
    f = min(math.exp(min(0.0, gamma * (low - intensity))), 1.0 - min(0.9, gamma))
    diff = n - min(math.ceil(n * f), n)
    return max(1, math.floor(n - gamma * diff))


@dataclass(frozen=True)
class PcapsConfig(StageSchedulerConfig):
    """Parameters of PCAPS.

    Attributes:
        name: ``pcaps``.
        base: Base scheduler (``critical_path`` or ``fifo``; see :mod:`carbonsim.policies.scorers`).
        gamma: Carbon awareness in [0, 1] (0: the base scheduler alone; the authors' default 0.5).
        draw: ``sample`` (relative importance against every runnable stage of the epoch, deferred draws
            skipped) or ``sequential`` (the authors' event loop: against the stages not drawn yet, the first
            deferral idles the rest of the epoch).
        scale_executors: Grant ``n'`` of the ``n`` tasks a stage could take (the authors' rule, see the
            module docstring); false grants ``n``.
        low_factor: ``L`` = this x the forecast minimum (the authors' 0.95).
    """

    base: str = "critical_path"
    gamma: float = 0.5
    draw: str = "sample"
    scale_executors: bool = True
    low_factor: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma: expected a number in [0, 1], got {self.gamma!r}")
        if self.draw not in ("sample", "sequential"):
            raise ConfigError(f"draw: expected sample or sequential, got {self.draw!r}")
        if not 0.0 < self.low_factor <= 1.0:
            raise ConfigError(f"low_factor: expected a number in (0, 1], got {self.low_factor!r}")


@register_batch("pcaps", PcapsConfig)
class Pcaps:
    """PCAPS (see the module docstring).

    Attributes:
        grants: Tasks each stage may run at once (its executors), keyed ``job << KEY_BITS | stage``.
        draws: Stages drawn so far.
        deferrals: Draws deferred by the threshold so far.
    """

    def __init__(self, cfg: PcapsConfig) -> None:
        self.cfg = cfg
        self.scorer = make_scorer(cfg)
        self.grants: dict[int, int] = {}
        self.draws = 0
        self.deferrals = 0

    def reset(self, context: JobContext) -> None:
        """Resets the base scheduler, the grants and the counters."""
        self.context = context
        self.scorer.reset(context)
        self.grants = {}
        self.draws = 0
        self.deferrals = 0

    def bounds(self, view: JobView, region: int) -> tuple[float, float, float]:
        """Current intensity, ``L`` and ``U`` of ``region`` (gCO2/kWh)."""
        c = float(view.intensity_gco2_per_kwh[region])
        forecast = view.forecast_gco2_per_kwh(region, MAX_HORIZON_H)
        forecast = forecast[np.isfinite(forecast)]
        if not forecast.size:
            return c, self.cfg.low_factor * c, c
        return c, self.cfg.low_factor * float(forecast.min()), float(forecast.max())

    def schedule(self, view: JobView) -> Mapping[Any, Decision]:
        """Urgent stages, then granted stages, then draws while there is room (see the module docstring)."""
        st = view.stages
        n = len(st)
        if not n:
            self.grants = {}
            return {}
        keys = (st.job << KEY_BITS | st.stage).tolist()
        previous = np.fromiter((self.grants.get(k, 0) for k in keys), dtype=np.int64, count=n)
        region = row_regions(st)
        running = st.running.astype(np.int64)
        total = running + st.waiting.astype(np.int64)
        room = Room(view)
        shape = list(zip(st.cpus_per_task.tolist(), st.gpus_per_task.tolist(), st.gpu_type.tolist(), strict=True))
        urgent = urgent_rows(view)
        # Urgent stages start every waiting task; granted stages keep their executors (never fewer than run).
        allow = np.where(urgent, total, np.minimum(np.maximum(previous, running), total))
        for i in np.flatnonzero(allow > running).tolist():
            room.take(int(region[i]), *shape[i], int(allow[i] - running[i]))
        candidates = np.flatnonzero(~urgent & (total > allow))
        if candidates.size:
            self._draw(view, candidates, region, total, allow, shape, room)
        settle_deadlines(view, allow, total, lambda i, k: room.take(int(region[i]), *shape[i], k))
        held = np.flatnonzero(allow > 0)
        self.grants = dict(zip([keys[i] for i in held.tolist()], allow[held].tolist(), strict=True))
        return stage_decisions(st, region, allow, total)

    def _draw(
        self,
        view: JobView,
        candidates: np.ndarray,
        region: np.ndarray,
        total: np.ndarray,
        allow: np.ndarray,
        shape: list[tuple[float, float, int]],
        room: Room,
    ) -> None:
        cfg = self.cfg
        logits = self.scorer.logits(view)
        bounds: dict[int, tuple[float, float, float]] = {}
        if cfg.draw == "sequential":
            draws = sequential_draws(logits, candidates, self.context.rng)
        else:
            everyone = np.arange(logits.size)
            importance = relative_importance(logits, everyone)
            order = draw_order(logits, candidates, self.context.rng)
            draws = ((i, float(importance[i])) for i in order.tolist())
        for i, r in draws:
            reg = int(region[i])
            if reg not in bounds:
                bounds[reg] = self.bounds(view, reg)
            c, low, high = bounds[reg]
            self.draws += 1
            if psi(r, cfg.gamma, low, high) < c:
                self.deferrals += 1
                if cfg.draw == "sequential":
                    return  # the free executors idle until the next epoch
                continue
            fit, _ = room.fit(reg, *shape[i])
            want = min(int(total[i] - allow[i]), fit)
            if want <= 0:
                continue
            if cfg.scale_executors:
                want = granted_tasks(want, cfg.gamma, low, c)
            allow[i] += room.take(reg, *shape[i], want)
