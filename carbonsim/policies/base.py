"""Shared pieces for policies: a convenient base class and latency prediction.

Policies implement :class:`carbonsim.core.policy.Policy`; subclassing :class:`BasePolicy` is optional
and only saves writing the no-op hooks.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def predicted_latency_ms(view: DecisionView, service_ms: Sequence[float], queue_aware: bool) -> list[float]:
    """Predicted end-to-end latency per region for a given service-time estimate per region, in ms.

    Round trip + (estimated wait, :meth:`DecisionView.predicted_wait_ms`, if ``queue_aware``) + service.
    For the profiled statistics, :meth:`DecisionView.predicted_latency_ms` gives the same faster.
    """
    rtt = view.rtt_ms
    if not queue_aware:
        return [r + s for r, s in zip(rtt, service_ms, strict=True)]
    wait = view.predicted_wait_ms()
    return [r + w + s for r, w, s in zip(rtt, wait, service_ms, strict=True)]


__all__ = ["BasePolicy", "Policy", "argmin", "predicted_latency_ms"]
