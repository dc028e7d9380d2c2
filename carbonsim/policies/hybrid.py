"""Hybrid (weighted carbon/latency) and constrained hybrid policies."""

from __future__ import annotations

from dataclasses import dataclass

from carbonsim._schema import ConfigError
from carbonsim.config import PolicyConfig
from carbonsim.core.service import ESTIMATE_STATS
from carbonsim.core.view import DecisionView
from carbonsim.policies.base import BasePolicy, argmin, predicted_latency_ms
from carbonsim.policies.registry import register

NORMALISATIONS = ("minmax", "global")


def _range_ok(name: str, rng: tuple[float, ...]) -> None:
    if len(rng) != 2 or not rng[1] > rng[0]:
        raise ConfigError(f"{name}: expected [low, high] with high > low, got {list(rng)}")


@dataclass(frozen=True)
class HybridConfig(PolicyConfig):
    """Parameters of :class:`Hybrid`.

    Attributes:
        alpha: Weight of normalised latency in [0, 1]; 1 - alpha weighs normalised carbon. 1 behaves like
            latency-first, 0 like carbon-first (the convention of the published reference setup, whose
            alpha = 0.7 row is reproduced with this reading; see docs/reference.md).
        normalisation: ``minmax``: per decision, each quantity is rescaled to [0, 1] across the candidate
            regions (the published reference setup); ``global``: rescaled with the fixed ranges below, so
            the trade-off does not depend on which regions happen to be the extremes at that moment.
        latency_range_ms: [low, high] for ``global`` latency normalisation, in ms.
        intensity_range_gco2_per_kwh: [low, high] for ``global`` intensity normalisation.
        queue_aware: Include the estimated queueing wait in the predicted latency.
    """

    name: str = "hybrid"
    alpha: float = 0.5
    normalisation: str = "minmax"
    latency_range_ms: tuple[float, ...] = (0.0, 300.0)
    intensity_range_gco2_per_kwh: tuple[float, ...] = (0.0, 800.0)
    queue_aware: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha: expected a weight in [0, 1], got {self.alpha!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"normalisation: expected one of {', '.join(NORMALISATIONS)}, got {self.normalisation!r}")
        _range_ok("latency_range_ms", self.latency_range_ms)
        _range_ok("intensity_range_gco2_per_kwh", self.intensity_range_gco2_per_kwh)


@register("hybrid", HybridConfig)
class Hybrid(BasePolicy):
    """Minimises alpha x normalised predicted latency + (1 - alpha) x normalised intensity.

    Predicted latency = round trip + (estimated wait if ``queue_aware``) + profiled mean service time.
    Ties go to the lowest region index.
    """

    config: HybridConfig

    def __init__(self, config: HybridConfig) -> None:
        super().__init__(config)
        self.config = config
        self._alpha = config.alpha
        self._queue_aware = config.queue_aware
        self._intensity: tuple[float, ...] = ()
        self._carbon_term: list[float] = []
        self._global = config.normalisation == "global"
        lat_lo, lat_hi = config.latency_range_ms
        int_lo, int_hi = config.intensity_range_gco2_per_kwh
        self._lat = (lat_lo, lat_hi - lat_lo)
        self._int = (int_lo, int_hi - int_lo)

    def decide(self, view: DecisionView) -> int:
        """Chooses the region with the smallest weighted score."""
        latency = view.predicted_latency_ms("mean", self._queue_aware)
        intensity = view.intensity_gco2_per_kwh
        available = view.available
        if not all(available):
            return self._decide_among(latency, intensity, available)
        if intensity is not self._intensity:
            # The intensity tuple changes once per hour: its weighted, normalised term is computed then
            # rather than for every request.
            self._intensity = intensity
            self._carbon_term = self._carbon_terms(intensity)
        a = self._alpha
        if self._global:
            l0, ls = self._lat
            wl = a / ls
            scores = [wl * (lat - l0) + c for lat, c in zip(latency, self._carbon_term, strict=True)]
        else:
            l_lo = min(latency)
            l_span = max(latency) - l_lo
            # A quantity equal in every region carries no preference: its normalised value is 0 everywhere.
            wl = a / l_span if l_span > 0 else 0.0
            scores = [wl * (lat - l_lo) + c for lat, c in zip(latency, self._carbon_term, strict=True)]
        return argmin(scores)

    def _decide_among(self, latency: list[float], intensity: tuple[float, ...], available: tuple[bool, ...]) -> int:
        """The same score over the available regions only (normalised over them); the rest never win."""
        idx = [r for r, ok in enumerate(available) if ok]
        if not idx:
            return argmin(latency)
        lat = [latency[r] for r in idx]
        carbon = self._carbon_terms(tuple(intensity[r] for r in idx))
        a = self._alpha
        if self._global:
            l0, ls = self._lat
            scores = [a / ls * (x - l0) + c for x, c in zip(lat, carbon, strict=True)]
        else:
            l_lo = min(lat)
            l_span = max(lat) - l_lo
            wl = a / l_span if l_span > 0 else 0.0
            scores = [wl * (x - l_lo) + c for x, c in zip(lat, carbon, strict=True)]
        return idx[argmin(scores)]

    def _carbon_terms(self, intensity: tuple[float, ...]) -> list[float]:
        """(1 - alpha) x normalised intensity per region."""
        if self._global:
            c0, cs = self._int
            return [(1 - self._alpha) * (c - c0) / cs for c in intensity]
        c_lo = min(intensity)
        c_span = max(intensity) - c_lo
        wc = (1 - self._alpha) / c_span if c_span > 0 else 0.0
        return [wc * (c - c_lo) for c in intensity]


SERVICE_ESTIMATES = (*ESTIMATE_STATS, "clairvoyant")


@dataclass(frozen=True)
class ConstrainedHybridConfig(PolicyConfig):
    """Parameters of :class:`ConstrainedHybrid`.

    Attributes:
        slo_margin: Safety margin as a fraction of the SLO: a region is eligible if its predicted latency
            is at most (1 - slo_margin) x SLO.
        service_estimate: Service-time estimate in the prediction: ``mean``, ``p50``, ``p90``, ``p95`` or
            ``p99`` of the profiled distribution, or ``clairvoyant``: the request's own sampled service
            time, which no real scheduler knows (only to reproduce the published setup; see docs).
        queue_aware: Include the estimated queueing wait in the predicted latency.
    """

    name: str = "constrained_hybrid"
    slo_margin: float = 0.0
    service_estimate: str = "mean"
    queue_aware: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.slo_margin < 1.0:
            raise ConfigError(f"slo_margin: expected a fraction in [0, 1), got {self.slo_margin!r}")
        if self.service_estimate not in SERVICE_ESTIMATES:
            raise ConfigError(
                f"service_estimate: expected one of {', '.join(SERVICE_ESTIMATES)}, got {self.service_estimate!r}"
            )


@register("constrained_hybrid", ConstrainedHybridConfig)
class ConstrainedHybrid(BasePolicy):
    """Lowest intensity among regions predicted to meet the SLO; else the lowest predicted latency.

    Eligible: round trip + (estimated wait) + service estimate <= (1 - slo_margin) x SLO. Among eligible
    regions the one with the lowest intensity wins (ties: lower predicted latency). If none is eligible,
    the region with the lowest predicted latency is chosen.
    """

    config: ConstrainedHybridConfig

    def __init__(self, config: ConstrainedHybridConfig) -> None:
        super().__init__(config)
        self.config = config
        self._clairvoyant = config.service_estimate == "clairvoyant"

    def decide(self, view: DecisionView) -> int:
        """Chooses the cleanest region predicted to meet the SLO."""
        if self._clairvoyant:
            service = [view.oracle_service_ms(r) for r in range(view.n_regions)]
            latency = predicted_latency_ms(view, service, self.config.queue_aware)
        else:
            latency = view.predicted_latency_ms(self.config.service_estimate, self.config.queue_aware)
        budget = (1.0 - self.config.slo_margin) * view.slo_ms
        intensity = view.intensity_gco2_per_kwh
        best = -1
        for r, lat in enumerate(latency):
            if lat <= budget and (
                best < 0 or intensity[r] < intensity[best] or (intensity[r] == intensity[best] and lat < latency[best])
            ):
                best = r
        return best if best >= 0 else argmin(latency)
