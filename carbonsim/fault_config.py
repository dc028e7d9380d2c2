"""Configuration of faults: scheduled region outages, network cuts and random server failures.

Part of the scenario (``scenario.faults``); frozen dataclasses validated like the rest of
:mod:`carbonsim.config`. Times are simulated hours from the start of the run. The simulator's side is
:mod:`carbonsim.core.faults`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from carbonsim._schema import ConfigError

ON_FAILURE = ("retry", "fail")


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


def _window(start_h: float, duration_h: float) -> None:
    _check(math.isfinite(start_h) and start_h >= 0, "start_h", start_h, "simulated hours >= 0")
    _check(math.isfinite(duration_h) and duration_h > 0, "duration_h", duration_h, "a positive number of hours")


@dataclass(frozen=True)
class _Window:
    """A scheduled stretch of simulated time.

    Attributes:
        start_h: Start, in simulated hours from t = 0.
        duration_h: Length in hours.
    """

    start_h: float
    duration_h: float

    def __post_init__(self) -> None:
        _window(self.start_h, self.duration_h)


@dataclass(frozen=True)
class OutageConfig(_Window):
    """A whole region down for a while: every server stops, its queue and services are lost.

    Attributes:
        region: Region name.
    """

    region: str = ""


@dataclass(frozen=True)
class CutConfig(_Window):
    """An origin cut off from a region for a while (a network partition): no new request may go there.

    Requests already on their way or in the region are not affected.

    Attributes:
        origin: Origin name.
        region: Region name.
    """

    origin: str = ""
    region: str = ""


@dataclass(frozen=True)
class ServerFailureConfig:
    """Random failures of single servers: exponential times to failure and to repair.

    Each working server of a finite pool fails after an exponential time of mean ``mtbf_h``; a failed
    server is repaired after an exponential time of mean ``mttr_h`` (Poisson failures, the usual
    reliability model; pools are simulated as counts, so a pool of ``n`` working servers fails at rate
    ``n / mtbf_h``). A failed server draws no power.

    Attributes:
        mtbf_h: Mean time between failures of one server in hours; 0 turns random failures off.
        mttr_h: Mean time to repair in hours.
        regions: Regions whose servers fail; empty for every region.
    """

    mtbf_h: float = 0.0
    mttr_h: float = 1.0
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(math.isfinite(self.mtbf_h) and self.mtbf_h >= 0, "mtbf_h", self.mtbf_h, "hours >= 0 (0: off)")
        _check(math.isfinite(self.mttr_h) and self.mttr_h > 0, "mttr_h", self.mttr_h, "a positive number of hours")


@dataclass(frozen=True)
class FaultConfig:
    """What goes wrong during a run, and what happens to the requests it hits.

    Attributes:
        outages: Scheduled region outages.
        cuts: Scheduled origin-region network cuts.
        servers: Random server failures.
        on_failure: A request whose server fails, whose region goes down before it is served, or that was
            routed to a region that cannot take it: ``retry`` (the policy routes it again, at that moment,
            from its origin) or ``fail`` (counted as failed).
        max_retries: Retries per request before it counts as failed.
    """

    outages: tuple[OutageConfig, ...] = ()
    cuts: tuple[CutConfig, ...] = ()
    servers: ServerFailureConfig = field(default_factory=ServerFailureConfig)
    on_failure: str = "retry"
    max_retries: int = 3

    def __post_init__(self) -> None:
        _check(self.on_failure in ON_FAILURE, "on_failure", self.on_failure, f"one of {', '.join(ON_FAILURE)}")
        _check(0 <= self.max_retries <= 255, "max_retries", self.max_retries, "an integer in [0, 255]")

    @property
    def active(self) -> bool:
        """Whether anything can fail in a run."""
        return bool(self.outages or self.cuts or self.servers.mtbf_h > 0)

    def check_names(self, regions: tuple[str, ...], origins: tuple[str, ...]) -> None:
        """Raises ConfigError if an outage, cut or failure names an unknown region or origin."""
        items: list[tuple[str, str, tuple[str, ...]]] = []
        items += [(f"outages[{i}].region", o.region, regions) for i, o in enumerate(self.outages)]
        items += [(f"cuts[{i}].region", c.region, regions) for i, c in enumerate(self.cuts)]
        items += [(f"cuts[{i}].origin", c.origin, origins) for i, c in enumerate(self.cuts)]
        items += [(f"servers.regions[{i}]", r, regions) for i, r in enumerate(self.servers.regions)]
        for path, name, valid in items:
            if name not in valid:
                raise ConfigError(f"faults.{path}: unknown name {name!r}; valid: {', '.join(valid)}")


__all__ = ["ON_FAILURE", "CutConfig", "FaultConfig", "OutageConfig", "ServerFailureConfig"]
