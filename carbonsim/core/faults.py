"""Faults during a run: scheduled region outages and network cuts, random server failures and repairs.

Everything is driven by SimPy timeouts, so faults interleave with requests in the event order. Random
failures use the run's ``faults`` random stream. A pool of ``n`` servers not failed fails at rate
``n / MTBF`` (independent exponential lifetimes; by memorylessness the next failure of the pool is
redrawn after every failure and repair), and every failed server is repaired after an exponential time of
mean MTTR. Overlapping outages of one region, or cuts of one origin-region pair, nest: the region is down
(the pair cut) while at least one of them lasts.

What a fault does to requests is the regions' business (:mod:`carbonsim.core.region`) and the
simulation's (routing again or failing, :class:`carbonsim.core.simulation.Simulation`); this module only
says when.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import simpy
from simpy.events import Event

from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.fault_config import FaultConfig


class Faultable(Protocol):
    """What a region offers to the fault process."""

    def fail_server(self, pool: int, rng: np.random.Generator) -> bool:
        """One server of ``pool`` fails; True if it was serving."""
        ...

    def repair_server(self, pool: int) -> None:
        """A failed server of ``pool`` works again."""

    def go_down(self) -> None:
        """The region's outage begins."""

    def come_up(self) -> None:
        """The region's outage ends."""


class FaultProcess:
    """Schedules a run's faults.

    Args:
        env: The simulation environment.
        config: The faults.
        regions: The regions, in index order.
        region_names: Their names.
        origin_names: The origins' names.
        pool_counts: Servers per region and pool (``inf`` for unlimited pools, which never fail).
        rng: The ``faults`` random stream.
        on_change: Called after every change of availability (outage, cut, failure, repair).
    """

    def __init__(
        self,
        env: simpy.Environment,
        config: FaultConfig,
        regions: Sequence[Faultable],
        region_names: Sequence[str],
        origin_names: Sequence[str],
        pool_counts: Sequence[Sequence[float]],
        rng: np.random.Generator,
        on_change: Callable[[], None],
    ) -> None:
        self.env = env
        self.config = config
        self.regions = regions
        self.region_index = {name: k for k, name in enumerate(region_names)}
        self.origin_index = {name: k for k, name in enumerate(origin_names)}
        self.pool_counts = pool_counts
        self.rng = rng
        self.on_change = on_change
        self._outages = [0] * len(regions)
        #: cut[o][r]: number of cuts of origin o from region r in force now.
        self.cut = [[0] * len(regions) for _ in origin_names]
        self._failed = [[0] * len(pools) for pools in pool_counts]
        self._generation = [[0] * len(pools) for pools in pool_counts]
        self.server_failures = 0
        self.repairs = 0

    def start(self) -> None:
        """Schedules every outage, cut and the first failure of every pool that can fail."""
        for outage in self.config.outages:
            r = self.region_index[outage.region]
            self._at(outage.start_h, functools.partial(self._outage, r, +1))
            self._at(outage.start_h + outage.duration_h, functools.partial(self._outage, r, -1))
        for cut in self.config.cuts:
            o, r = self.origin_index[cut.origin], self.region_index[cut.region]
            self._at(cut.start_h, functools.partial(self._cut, o, r, +1))
            self._at(cut.start_h + cut.duration_h, functools.partial(self._cut, o, r, -1))
        servers = self.config.servers
        if servers.mtbf_h > 0:
            scope = servers.regions or tuple(self.region_index)
            for name in scope:
                r = self.region_index[name]
                for p, count in enumerate(self.pool_counts[r]):
                    if math.isfinite(count):
                        self._next_failure(r, p)

    def _at(self, hours: float, action: Callable[[], None]) -> None:
        def fire(_event: Event) -> None:
            action()

        self.env.timeout(hours * SECONDS_PER_HOUR).callbacks.append(fire)

    def _outage(self, r: int, delta: int) -> None:
        before = self._outages[r]
        self._outages[r] += delta
        if before == 0 and delta > 0:
            self.regions[r].go_down()
        elif self._outages[r] == 0:
            self.regions[r].come_up()
        self.on_change()

    def _cut(self, o: int, r: int, delta: int) -> None:
        self.cut[o][r] += delta
        self.on_change()

    def _next_failure(self, r: int, p: int) -> None:
        """Draws the pool's next failure among its servers not failed (replacing any drawn before)."""
        self._generation[r][p] += 1
        alive = self.pool_counts[r][p] - self._failed[r][p]
        if alive <= 0:
            return
        generation = self._generation[r][p]
        delay_s = self.rng.exponential(self.config.servers.mtbf_h * SECONDS_PER_HOUR / alive)

        def fail(_event: Event) -> None:
            if self._generation[r][p] == generation:
                self._fail(r, p)

        self.env.timeout(delay_s).callbacks.append(fail)

    def _fail(self, r: int, p: int) -> None:
        self._failed[r][p] += 1
        self.server_failures += 1
        self.regions[r].fail_server(p, self.rng)
        repair_s = self.rng.exponential(self.config.servers.mttr_h * SECONDS_PER_HOUR)

        def repair(_event: Event) -> None:
            self._failed[r][p] -= 1
            self.repairs += 1
            self.regions[r].repair_server(p)
            self._next_failure(r, p)
            self.on_change()

        self.env.timeout(repair_s).callbacks.append(repair)
        self._next_failure(r, p)
        self.on_change()

    def stats(self) -> dict[str, float]:
        """Counts of the run's faults."""
        return {
            "server_failures": float(self.server_failures),
            "server_repairs": float(self.repairs),
            "outages": float(len(self.config.outages)),
            "cuts": float(len(self.config.cuts)),
        }


__all__ = ["FaultProcess", "Faultable"]
