"""Simple routing heuristics: latency-first, carbon-first, least-latency, round-robin and random."""

from __future__ import annotations

from carbonsim.config import PolicyConfig
from carbonsim.core.view import DecisionView, PolicyContext
from carbonsim.policies.base import BasePolicy, argmin
from carbonsim.policies.registry import register


@register("latency_first")
class LatencyFirst(BasePolicy):
    """Routes to the region with the lowest round trip plus profiled mean service time.

    Ignores carbon and queues: the nearest (fastest) region, as in the published reference setup.
    """

    def decide(self, view: DecisionView) -> int:
        """Chooses the region with the smallest static latency."""
        return argmin(view.static_latency_ms())


@register("carbon_first")
class CarbonFirst(BasePolicy):
    """Routes to the region with the lowest grid intensity now; ties go to the lower round trip."""

    def decide(self, view: DecisionView) -> int:
        """Chooses the cleanest region."""
        intensity = view.intensity_gco2_per_kwh
        rtt = view.rtt_ms
        best = 0
        for r in range(1, len(intensity)):
            if intensity[r] < intensity[best] or (intensity[r] == intensity[best] and rtt[r] < rtt[best]):
                best = r
        return best


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
    """Cycles through the regions in order, one request each, ignoring everything else."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__(config)
        self._next = 0

    def reset(self, context: PolicyContext) -> None:
        """Starts the cycle at the first region."""
        super().reset(context)
        self._next = 0

    def decide(self, view: DecisionView) -> int:
        """Returns the next region in the cycle."""
        r = self._next
        self._next = (r + 1) % view.n_regions
        return r


@register("random")
class UniformRandom(BasePolicy):
    """Picks a region uniformly at random from the policy's own random stream."""

    def decide(self, view: DecisionView) -> int:
        """Returns a uniformly random region."""
        assert self.context is not None, "reset() must be called before decide()"
        return int(self.context.rng.integers(view.n_regions))
