"""The routing plan a language model answers with: strict parsing and feasibility checks.

Pure Python (no torch), so the rules can be tested, fuzzed and reused without a model. A plan is a JSON
object that maps every region name to an integer percentage of the next interval's requests, e.g.
``{"us-east": 20, "us-west": 50, "ca-central": 30}``.

Parsing (:func:`parse_plan`) is strict; the answer is rejected unless

* it is exactly one JSON object (``json.loads``), allowing only surrounding whitespace and at most one
  Markdown code fence around it (an opening line of three backticks, optionally followed by ``json``, and a
  closing line of three backticks), because instruction-tuned models often wrap JSON that way;
* its keys are exactly the region names, each once (``wrong_keys``);
* every value is a JSON integer in [0, 100], not a float such as ``10.0``, a boolean, a string, ``NaN`` or
  a nested value (``bad_value``);
* the values sum to 100 within :data:`SUM_TOLERANCE` percentage points (``bad_sum``; all zeros is
  ``empty``); the dispatcher then targets ``share / sum``, so a plan whose integers sum to 99 is followed as
  if normalised.

Feasibility (:func:`check_feasible`) then rejects a plan that

* gives no region a positive share (``empty``);
* gives a positive share to a region that meets no origin's latency SLO (``unreachable``);
* plans more load for a region than its capacity estimate: ``share / sum x expected rate > capacity``
  (``over_capacity``).

Every rejection is a :class:`PlanError` with a reason code from :data:`REASONS` and a message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SUM_TOLERANCE = 2
"""Largest accepted distance, in percentage points, between the shares' sum and 100.

Rounding six shares to whole percents can leave their sum a point or two away from 100; a larger gap
means the plan was not meant as percentages of one total.
"""

PARSE_REASONS = ("not_json", "not_object", "wrong_keys", "bad_value", "bad_sum")
"""Reasons :func:`parse_plan` rejects an answer for (besides ``empty``, for all zeros)."""

FEASIBILITY_REASONS = ("empty", "unreachable", "over_capacity")
"""Reasons :func:`check_feasible` rejects a well-formed plan for."""

REASONS = PARSE_REASONS + FEASIBILITY_REASONS
"""Every rejection reason, in the order the checks run."""

_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*)\n[ \t]*```\Z", re.DOTALL)


class PlanError(ValueError):
    """An answer that is not a valid, feasible plan.

    Args:
        reason: One of :data:`REASONS`.
        message: What was wrong, for people.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Plan:
    """A parsed plan: integer percentage shares in region order.

    Attributes:
        shares: Percentage of the interval's requests per region, in the order of the region names.
    """

    shares: tuple[int, ...]

    @property
    def fractions(self) -> tuple[float, ...]:
        """The shares normalised to sum to 1 (the targets the dispatcher follows)."""
        total = sum(self.shares)
        return tuple(s / total for s in self.shares) if total > 0 else tuple(0.0 for _ in self.shares)


def _reject_constant(name: str) -> Any:
    raise PlanError("bad_value", f"{name} is not a number a plan may hold")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise PlanError("wrong_keys", f"duplicate key(s) {', '.join(map(repr, duplicates))}")
    return dict(pairs)


def _strip(text: str) -> str:
    text = text.strip()
    fenced = _FENCE.match(text)
    return fenced.group("body").strip() if fenced else text


def parse_plan(text: str, regions: Sequence[str]) -> Plan:
    """Parses an answer into a plan, strictly (see the module docstring).

    Args:
        text: The model's answer.
        regions: The region names, in the simulator's order.

    Returns:
        The plan, shares in the order of ``regions``.

    Raises:
        PlanError: with reason ``not_json``, ``not_object``, ``wrong_keys``, ``bad_value``, ``bad_sum`` or
            ``empty``.
    """
    body = _strip(text)
    try:
        data = json.loads(body, object_pairs_hook=_unique_object, parse_constant=_reject_constant)
    except PlanError:
        # A hook objected (NaN, a duplicate key) while scanning; if the text is not a JSON object at all,
        # that is the more basic fault to report.
        plain = _loads_or_invalid(body)
        if plain is _INVALID:
            raise PlanError("not_json", "the answer is not one JSON value") from None
        if not isinstance(plain, dict):
            raise PlanError("not_object", f"expected a JSON object, got {type(plain).__name__}") from None
        raise
    except (ValueError, RecursionError) as exc:
        # ValueError covers json.JSONDecodeError and integers too long to convert.
        raise PlanError("not_json", f"the answer is not one JSON value: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise PlanError("not_object", f"expected a JSON object, got {type(data).__name__}")
    missing = [r for r in regions if r not in data]
    extra = sorted(set(data) - set(regions))
    if missing or extra:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"unknown {', '.join(map(repr, extra))}"] if extra else []
        )
        raise PlanError("wrong_keys", "; ".join(parts))
    shares = []
    for r in regions:
        value = data[r]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise PlanError("bad_value", f"{r!r}: expected an integer percentage in [0, 100], got {value!r}"[:160])
        shares.append(value)
    total = sum(shares)
    if total == 0:
        raise PlanError("empty", "every share is 0")
    if abs(total - 100) > SUM_TOLERANCE:
        raise PlanError("bad_sum", f"the shares sum to {total}, expected 100 (+/- {SUM_TOLERANCE})")
    return Plan(tuple(shares))


_INVALID = object()


def _loads_or_invalid(body: str) -> Any:
    """The JSON value with NaN read as a float and duplicate keys allowed, or ``_INVALID`` (for classifying)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _INVALID


def check_feasible(
    plan: Plan,
    regions: Sequence[str],
    expected_rate_per_s: float,
    capacity_per_s: Sequence[float],
    reachable: Sequence[bool],
) -> None:
    """Rejects a plan that the regions cannot carry out.

    Args:
        plan: The parsed plan.
        regions: Region names, for messages.
        expected_rate_per_s: Expected arrival rate of the interval, in requests/s.
        capacity_per_s: Capacity estimate per region, in requests/s (``inf`` for unlimited).
        reachable: Per region, whether it meets the latency SLO of at least one origin.

    Raises:
        PlanError: with reason ``empty``, ``unreachable`` or ``over_capacity``.
    """
    if not any(s > 0 for s in plan.shares):
        raise PlanError("empty", "no region has a positive share")
    cut_off = [r for r, s, ok in zip(regions, plan.shares, reachable, strict=True) if s > 0 and not ok]
    if cut_off:
        raise PlanError("unreachable", f"{', '.join(cut_off)} meet(s) no origin's SLO but get a share")
    for name, fraction, capacity in zip(regions, plan.fractions, capacity_per_s, strict=True):
        load = fraction * expected_rate_per_s
        # A relative slack so that a plan exactly at capacity is not rejected by rounding.
        if not math.isinf(capacity) and load > capacity * (1 + 1e-9):
            raise PlanError(
                "over_capacity", f"{name}: {load:.1f} requests/s planned, capacity about {capacity:.1f} requests/s"
            )


def validate_plan(
    text: str,
    regions: Sequence[str],
    expected_rate_per_s: float,
    capacity_per_s: Sequence[float],
    reachable: Sequence[bool],
) -> Plan:
    """:func:`parse_plan` then :func:`check_feasible`; returns the plan or raises :class:`PlanError`."""
    plan = parse_plan(text, regions)
    check_feasible(plan, regions, expected_rate_per_s, capacity_per_s, reachable)
    return plan


def shares_from_weights(weights: Sequence[int]) -> tuple[int, ...]:
    """Integer percentages proportional to non-negative weights, summing to exactly 100 (largest remainder).

    Each region gets ``floor(100 x w / sum)`` and the points left over go to the largest remainders (ties
    to the lower index). All-zero weights give all-zero shares, which :func:`check_feasible` rejects.
    """
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must be non-negative, got {list(weights)}")
    total = sum(weights)
    if total == 0:
        return tuple(0 for _ in weights)
    floors = [100 * w // total for w in weights]
    remainders = [100 * w % total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: 100 - sum(floors)]:
        floors[i] += 1
    return tuple(floors)


def format_plan(regions: Sequence[str], shares: Sequence[int]) -> str:
    """The JSON text of a plan (what :func:`parse_plan` reads back)."""
    return json.dumps(dict(zip(regions, (int(s) for s in shares), strict=True)))


__all__ = [
    "FEASIBILITY_REASONS",
    "PARSE_REASONS",
    "REASONS",
    "SUM_TOLERANCE",
    "Plan",
    "PlanError",
    "check_feasible",
    "format_plan",
    "parse_plan",
    "shares_from_weights",
    "validate_plan",
]
