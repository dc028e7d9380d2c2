"""Configuration of the shifting environment ``carbonsim/Shifting-v0`` and of the learned shifting scheduler.

Frozen dataclasses, like :mod:`carbonsim.learn.config`; the environment and the training script receive
these objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from carbonsim.learn.config import _check, parse_utc_hour

#: Default cap on the items (runnable stages) the environment's fixed-size observation holds.
MAX_ITEMS = 64


def check_weights(weights: tuple[float, ...], name: str) -> None:
    """Raises ConfigError unless ``weights`` is empty or three finite numbers >= 0."""
    _check(
        len(weights) in (0, 3) and all(math.isfinite(w) and w >= 0 for w in weights),
        name,
        list(weights),
        "[alpha, beta, gamma]: three finite weights >= 0 (or [] to sample them)",
    )


@dataclass(frozen=True)
class ShiftingEnvConfig:
    """The shifting environment ``carbonsim/Shifting-v0`` (one step per batch epoch).

    Attributes:
        scenario: Scenario name (a ``conf/scenario`` file with batch jobs, e.g. ``dag_tpch``).
        overrides: Further Hydra overrides of the run configuration.
        episode_hours: Arrival window of one episode in hours.
        window_start_utc: First hour an episode may start (ISO 8601 UTC); empty: the scenario's start.
        window_end_utc: Episodes start before this hour and their arrivals end by it (required with a start).
        drain: After the window, keep simulating until every job has finished (bounded by
            ``max_drain_hours``).
        max_drain_hours: Bound on the drain in hours.
        max_items: Items (runnable stages) the observation holds; further items of an epoch keep running
            if they run and wait otherwise (the deadline guard still starts those that must start).
        weights: alpha (per kg CO2eq), beta (per job-hour late), gamma (per USD of electricity); empty:
            drawn per episode as ``weight_scale x Dirichlet(1, 1, 1)`` (a uniform point of the simplex, so
            every trade-off is seen; mean 1 each at the default scale 3).
        weight_scale: Sum of the sampled weights.
    """

    scenario: str = "dag_tpch"
    overrides: tuple[str, ...] = ()
    episode_hours: float = 2.0
    window_start_utc: str = ""
    window_end_utc: str = ""
    drain: bool = True
    max_drain_hours: float = 24.0
    max_items: int = MAX_ITEMS
    weights: tuple[float, ...] = ()
    weight_scale: float = 3.0

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.episode_hours) and self.episode_hours > 0,
            "episode_hours",
            self.episode_hours,
            "a positive number of hours",
        )
        _check(
            math.isfinite(self.max_drain_hours) and self.max_drain_hours >= 0,
            "max_drain_hours",
            self.max_drain_hours,
            "a number of hours >= 0",
        )
        _check(self.max_items >= 1, "max_items", self.max_items, "an integer >= 1")
        check_weights(tuple(self.weights), "weights")
        _check(
            math.isfinite(self.weight_scale) and self.weight_scale > 0,
            "weight_scale",
            self.weight_scale,
            "a number > 0",
        )
        if self.window_start_utc or self.window_end_utc:
            start = parse_utc_hour(self.window_start_utc, "window_start_utc")
            end = parse_utc_hour(self.window_end_utc, "window_end_utc")
            span_h = (end - start).total_seconds() / 3600.0
            _check(
                span_h >= self.episode_hours,
                "window_end_utc",
                self.window_end_utc,
                f"a time at least episode_hours ({self.episode_hours} h) after window_start_utc",
            )

    def start_hours(self) -> int:
        """Number of whole hours an episode may start at within the window (1 without a window)."""
        if not self.window_start_utc:
            return 1
        start = parse_utc_hour(self.window_start_utc, "window_start_utc")
        end = parse_utc_hour(self.window_end_utc, "window_end_utc")
        return int(((end - start).total_seconds() / 3600.0 - self.episode_hours) // 1) + 1


__all__ = ["MAX_ITEMS", "ShiftingEnvConfig", "check_weights"]
