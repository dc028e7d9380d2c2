"""Simple routing heuristics: latency-first, carbon-first, least-latency, round-robin and random."""

from __future__ import annotations

from carbonsim.config import PolicyConfig
from carbonsim.core.view import DecisionView, PolicyContext
from carbonsim.policies.base import BasePolicy, argmin
from carbonsim.policies.registry import register


@register("latency_first")
class LatencyFirst(BasePolicy):
    """Routes to the region with the lowest round trip plus profiled mean service time.

    Ignores carbon and queues: the nearest (fastest) region, as in the published reference setup. (Regions
    that cannot take the request have an infinite static latency, so the nearest available one wins.)
    """

    def decide(self, view: DecisionView) -> int:
        """Chooses the region with the smallest static latency."""
        return argmin(view.static_latency_ms())


@register("carbon_first")
class CarbonFirst(BasePolicy):
    """Routes to the available region with the lowest grid intensity now; ties go to the lower round trip."""

    def decide(self, view: DecisionView) -> int:
        """Chooses the cleanest available region."""
        intensity = view.intensity_gco2_per_kwh
        rtt = view.rtt_ms
        available = view.available
        best = -1
        for r in range(len(intensity)):
            if available[r] and (
                best < 0 or intensity[r] < intensity[best] or (intensity[r] == intensity[best] and rtt[r] < rtt[best])
            ):
                best = r
        return max(best, 0)


@register("least_latency")
class LeastLatency(BasePolicy):
    """Carbon-agnostic load balancing: the lowest *predicted* latency including the queueing wait.

    Predicted latency = round trip + estimated wait (see
    :meth:`carbonsim.core.view.DecisionView.predicted_wait_ms`) + profiled mean service time.
    """

    def decide(self, view: DecisionView) -> int:
        """Chooses the region with the smallest predicted latency."""
        return argmin(view.predicted_latency_ms())


@register("round_robin")
class RoundRobin(BasePolicy):
    """Cycles through the regions in order, one request each, ignoring everything but availability.

    A region that cannot take the request now is skipped (the next available one in the cycle serves it).
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__(config)
        self._next = 0

    def reset(self, context: PolicyContext) -> None:
        """Starts the cycle at the first region."""
        super().reset(context)
        self._next = 0

    def decide(self, view: DecisionView) -> int:
        """Returns the next available region in the cycle."""
        n = view.n_regions
        available = view.available
        r = self._next
        for step in range(n):
            if available[(r + step) % n]:
                r = (r + step) % n
                break
        self._next = (r + 1) % n
        return r


@register("random")
class UniformRandom(BasePolicy):
    """Picks a region uniformly at random (among the available ones) from the policy's own random stream."""

    def decide(self, view: DecisionView) -> int:
        """Returns a uniformly random available region."""
        assert self.context is not None, "reset() must be called before decide()"
        available = view.available
        if all(available):
            return int(self.context.rng.integers(view.n_regions))
        choices = [r for r, ok in enumerate(available) if ok] or list(range(view.n_regions))
        return choices[int(self.context.rng.integers(len(choices)))]
