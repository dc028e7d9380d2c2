"""Shared pieces for policies: a convenient base class and latency prediction.

Policies implement :class:`carbonsim.core.policy.Policy`; subclassing :class:`BasePolicy` is optional
and only saves writing the no-op hooks.
"""

from __future__ import annotations

from carbonsim.config import PolicyConfig
from carbonsim.core.policy import Policy
from carbonsim.core.view import DecisionView, PlanView, PolicyContext, argmin


class BasePolicy:
    """Stores the config and the context; ``plan`` does nothing.

    Args:
        config: The policy's parameters.
    """

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.context: PolicyContext | None = None

    def reset(self, context: PolicyContext) -> None:
        """Keeps the scenario's static facts for later decisions."""
        self.context = context

    def plan(self, view: PlanView) -> None:
        """No planning by default."""

    def decide(self, view: DecisionView) -> int:  # pragma: no cover - abstract
        """Chooses a region; subclasses implement it."""
        raise NotImplementedError


def predicted_wait_ms(view: DecisionView) -> list[float]:
    """Estimated queueing wait of a request arriving now in each region, in ms.

    With ``q`` requests waiting, ``b`` of ``c`` servers busy and ``s`` the profiled mean service time over
    the workload mix, the newcomer waits for ``max(0, q + b - c + 1)`` departures, which occur at rate
    ``c / s`` when all servers are busy: wait = max(0, q + b - c + 1) x s / c (exact in expectation for
    exponential service, an approximation otherwise). Uses only observable state and profiled means; the
    time the request spends on the network (the queue may change meanwhile) is ignored.
    """
    return [
        (q + b - c + 1) * s / c if q + b >= c else 0.0
        for q, b, c, s in zip(view.queue_length, view.busy_servers, view.servers, view.mix_service_ms, strict=True)
    ]


def predicted_latency_ms(view: DecisionView, service_ms: tuple[float, ...], queue_aware: bool) -> list[float]:
    """Predicted end-to-end latency per region: round trip + (estimated wait) + service estimate, in ms.

    The same formula as ``rtt + predicted_wait_ms(view) + service`` written as one pass, because it runs
    for every request.
    """
    if not queue_aware:
        return [r + s for r, s in zip(view.rtt_ms, service_ms, strict=True)]
    return [
        r + sv + ((q + b - c + 1) * s / c if q + b >= c else 0.0)
        for r, sv, q, b, c, s in zip(
            view.rtt_ms,
            service_ms,
            view.queue_length,
            view.busy_servers,
            view.servers,
            view.mix_service_ms,
            strict=True,
        )
    ]


__all__ = ["BasePolicy", "Policy", "argmin", "predicted_latency_ms", "predicted_wait_ms"]
