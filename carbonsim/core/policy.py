"""The interface every routing policy implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from carbonsim.core.view import DecisionView, PlanView, PolicyContext


@runtime_checkable
class Policy(Protocol):
    """A routing policy.

    The simulator calls :meth:`reset` once before the run, :meth:`plan` at time 0 and then every planning
    interval, and :meth:`decide` for every request. A policy that plans (routing fractions, an LP, a
    learned planner) stores its plan in :meth:`plan` and follows it in :meth:`decide`.
    """

    def reset(self, context: PolicyContext) -> None:
        """Receives the scenario's static facts and the policy's random stream."""

    def plan(self, view: PlanView) -> None:
        """Called every planning interval with the system state."""

    def decide(self, view: DecisionView) -> int:
        """Returns the index of the region that serves the request described by ``view``."""
        ...
