"""What a run's batch jobs have accrued so far: the read-only telemetry of their carbon, energy, cost and lateness.

:class:`Accrual` counts exactly what :func:`~carbonsim.core.jobs.records.job_account` counts at the end of a
run (running segments with PUE, migrations' network energy at the mean of both ends' intensity and price),
and *lateness*: every arrived job that has not failed accrues one hour per hour while it is unfinished past
its deadline. Asked at any time of the run, it is the account of the run as if it were cut there. The
shifting environment's reward (:mod:`carbonsim.envs.shifting`) and the learned shifting scheduler's online
learner (:mod:`carbonsim.learn.shifting_online`) both read it: one account, not two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from carbonsim.core.jobs.records import FAILED

if TYPE_CHECKING:
    from carbonsim.core.jobs.engine import BatchEngine

#: The columns of :meth:`Accrual.at`.
ACCRUAL_COLUMNS = ("carbon_g", "energy_kwh", "cost_usd", "lateness_h")


class Accrual:
    """What a run's batch jobs have accrued up to a time: carbon (g), energy (kWh), cost (USD), lateness (h).

    Closed segments and migrations are added once, as the engine appends them; running groups are counted
    up to the time asked, so ``at(t)`` is the exact account of the run as if it were cut at ``t``. Only the
    past can be asked for: ``t`` at or before the engine's current time.

    Args:
        engine: The run's batch engine (read, never changed).
    """

    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine
        self.carbon = engine.carbon
        self.price = engine.price
        ctx = engine.context
        self.pue = np.asarray(ctx.pue, dtype=np.float64)
        self.cpu_w = ctx.cpu_busy_w
        self.gpu_w = np.asarray(ctx.gpu_busy_w, dtype=np.float64)
        st = engine.jobs.stages
        self.cpus = np.asarray(st.cpus_per_task, dtype=np.float64)
        self.gpus = np.asarray(st.gpus_per_task, dtype=np.float64)
        self.arrival_s = np.asarray(engine.jobs.arrival_s, dtype=np.float64)
        self.deadline_s = np.asarray(engine.jobs.deadline_s, dtype=np.float64)
        self._closed = np.zeros(3)
        self._segments = 0
        self._moves = 0

    def _segments_account(self, rows: list[tuple[int, int, int, float, float, int, int, int]]) -> np.ndarray:
        if not rows:
            return np.zeros(3)
        a = np.array(rows, dtype=np.float64)
        stage = a[:, 1].astype(np.int64)
        region = a[:, 2].astype(np.int64)
        t0, t1 = a[:, 3], a[:, 4]
        units = a[:, 5] * a[:, 6]
        gpu = a[:, 7].astype(np.int64)
        gpu_w = np.zeros(len(rows))
        used = gpu >= 0
        if used.any():
            gpu_w[used] = self.gpus[stage[used]] * self.gpu_w[gpu[used]]
        power_w = units * (self.cpus[stage] * self.cpu_w + gpu_w) * self.pue[region]
        carbon_g = power_w * self.carbon.integral(region, t0, t1) / 3.6e6
        cost_usd = power_w * self.price.integral(region, t0, t1) / 3.6e6
        energy_kwh = power_w * (t1 - t0) / 3.6e6
        return np.array([carbon_g.sum(), energy_kwh.sum(), cost_usd.sum()])

    def at(self, t: float) -> np.ndarray:
        """``[carbon_g, energy_kwh, cost_usd, lateness_h]`` accrued by time ``t`` (s)."""
        engine = self.engine
        closed = engine.segments
        if len(closed) > self._segments:
            self._closed += self._segments_account(closed[self._segments :])
            self._segments = len(closed)
        moves = engine.moves
        if len(moves) > self._moves:
            m = np.array(moves[self._moves :], dtype=np.float64)
            src, dst, when, kwh = m[:, 1].astype(np.int64), m[:, 2].astype(np.int64), m[:, 3], m[:, 4]
            for k, sig in ((0, self.carbon), (2, self.price)):
                mean = (sig.values_at(src, when) + sig.values_at(dst, when)) / 2.0
                self._closed[k] += float((kwh * mean).sum())
            self._closed[1] += float(kwh.sum())
            self._moves = len(moves)
        live = self._segments_account(engine.live_segments(t))
        arrived = (self.arrival_s <= t) & (engine.status != FAILED)
        end = np.where(np.isnan(engine.end_s), t, np.minimum(engine.end_s, t))
        late_s = np.maximum(end - self.deadline_s, 0.0)[arrived].sum()
        return np.array([*(self._closed + live), late_s / 3600.0])

    def now(self) -> np.ndarray:
        """:meth:`at` the engine's current time (after a run has stopped: its end, as ``Simulation.finish`` says)."""
        return self.at(float(self.engine.env.now))


__all__ = ["ACCRUAL_COLUMNS", "Accrual"]
