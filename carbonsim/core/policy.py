"""The interface every routing policy implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from carbonsim.core.view import DecisionView, PlanView, PolicyContext


class AwaitDecision(Exception):  # noqa: N818 - a control-flow signal, like StopIteration, not an error
    """Raised by a policy's ``decide`` whose decision comes from outside the simulation.

    The simulator then pauses with the request pending (:attr:`Simulation.awaiting
    <carbonsim.core.simulation.Simulation.awaiting>`); once the decision is known, ``Simulation.resume``
    calls ``decide`` again for the same request. This is how the Gymnasium environment takes one step per
    routing decision over the same simulator the CLI runs.
    """


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


@runtime_checkable
class ReportsStats(Protocol):
    """A policy that counts things worth reporting (fallbacks, updates): optional, beside :class:`Policy`.

    The simulator reads :meth:`stats` once, when the run finishes; the runner adds each entry to the run's
    summary as ``policy_<key>``. Values must be deterministic (counts, not wall-clock times), because the
    summary is byte-identical for the same seed.
    """

    def stats(self) -> dict[str, float]:
        """Counters of the run, by name."""
        ...
