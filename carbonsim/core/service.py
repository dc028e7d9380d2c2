"""Service-time sampling for single requests and profiled estimates of it.

Each request's service time is drawn once per hardware type before the run, from a stream keyed by the
hardware name, so a request costs the same on a given hardware whichever policy routes it (common random
numbers). Drawing all requests of a workload at once keeps generation vectorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import ServiceTimeConfig

#: Draws used to profile each service-time model (mean and percentiles a scheduler may assume known).
PROFILE_DRAWS = 20_000
#: Statistics a policy may ask for as its service-time estimate.
ESTIMATE_STATS = ("mean", "p50", "p90", "p95", "p99")


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def sample_ms(cfg: ServiceTimeConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draws ``n`` single-request service times in ms.

    Args:
        cfg: The service-time model.
        rng: Generator to draw from.
        n: Number of draws.

    Returns:
        float64 array of service times in ms, all > 0.

    Raises:
        ConfigError: if a truncated normal's window has (almost) no probability mass.
    """
    dist = cfg.distribution
    if dist == "deterministic":
        out = np.full(n, cfg.mean_ms)
    elif dist == "exponential":
        out = rng.exponential(cfg.mean_ms, n)
    elif dist == "normal":
        out = np.maximum(cfg.min_ms, rng.normal(cfg.mean_ms, cfg.std_ms, n))
    elif dist == "truncated_normal":
        out = _truncated_normal(cfg, rng, n)
    elif dist == "lognormal":
        # Parameters of the underlying normal from the arithmetic mean m and standard deviation s.
        sigma2 = math.log1p((cfg.std_ms / cfg.mean_ms) ** 2)
        mu = math.log(cfg.mean_ms) - sigma2 / 2.0
        out = rng.lognormal(mu, math.sqrt(sigma2), n)
    elif dist == "empirical":
        out = rng.choice(np.asarray(cfg.samples_ms, dtype=np.float64), n)
    elif dist == "measured":
        raise ConfigError(
            "distribution: a measured profile must be resolved into a distribution before the run "
            "(carbonsim.hardware.resolve_profiles)"
        )
    else:  # pragma: no cover - the config validates the name
        raise ConfigError(f"distribution: unknown {dist!r}")
    # A zero service time would make a request take no server time at all; every model here is positive
    # except the floored normal with min_ms == 0 and an exponential draw of exactly 0.
    return np.asarray(np.maximum(out, 1e-6), dtype=np.float64)


def _truncated_normal(cfg: ServiceTimeConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    lo = cfg.min_ms
    hi = math.inf if cfg.max_ms is None else cfg.max_ms
    mass = _phi((hi - cfg.mean_ms) / cfg.std_ms) - _phi((lo - cfg.mean_ms) / cfg.std_ms)
    if mass < 1e-4:
        raise ConfigError(
            f"min_ms/max_ms: the truncation window [{lo}, {hi}] ms holds only {mass:.2e} of "
            f"N({cfg.mean_ms}, {cfg.std_ms}); widen it"
        )
    out = np.empty(n)
    filled = 0
    # Rejection sampling: exact, and with mass >= 1e-4 the expected number of rounds is small.
    while filled < n:
        need = n - filled
        draw = rng.normal(cfg.mean_ms, cfg.std_ms, max(16, int(need / mass * 1.1)))
        ok = draw[(draw >= lo) & (draw <= hi)][:need]
        out[filled : filled + ok.size] = ok
        filled += ok.size
    return out


@dataclass(frozen=True)
class ServiceProfile:
    """Profiled statistics of one workload's service time on one hardware type, in ms."""

    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float

    def stat(self, name: str) -> float:
        """Returns the statistic ``name`` (one of ``ESTIMATE_STATS``) in ms."""
        if name not in ESTIMATE_STATS:
            raise ConfigError(f"service_estimate: expected one of {', '.join(ESTIMATE_STATS)}, got {name!r}")
        return float(getattr(self, f"{name}_ms"))


def profile(cfg: ServiceTimeConfig, rng: np.random.Generator) -> ServiceProfile:
    """Estimates the mean and percentiles of a service-time model from ``PROFILE_DRAWS`` draws.

    This stands for the offline profiling an operator does; a policy may use these numbers but never a
    request's own sampled service time.

    Args:
        cfg: The service-time model.
        rng: Generator for the profiling draws (kept apart from the run's service stream).

    Returns:
        The profile.
    """
    if cfg.distribution == "deterministic":
        m = cfg.mean_ms
        return ServiceProfile(m, m, m, m, m)
    x = sample_ms(cfg, rng, PROFILE_DRAWS)
    p50, p90, p95, p99 = np.percentile(x, [50, 90, 95, 99])
    return ServiceProfile(float(x.mean()), float(p50), float(p90), float(p95), float(p99))
