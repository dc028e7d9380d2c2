"""The observation a learned routing policy sees, built from the simulator's :class:`DecisionView`.

The same builder serves the Gymnasium environment (training) and ``policy=ppo`` (deployment), so an agent
sees exactly the same numbers in both. Every feature is a bounded transform of an observable quantity,
never a clipped one: non-negative quantities ``x`` become ``x / (x + ref)`` in [0, 1), signed ones
``x / (|x| + ref)`` or ``tanh`` in (-1, 1). The references set where the transform has its resolution.

Features, in order:

* time: sine and cosine of the hour of day and of the day of week (UTC), 4 values;
* the request's workload, one-hot;
* per region: intensity now; intensity now relative to the mean over regions; forecast intensity at
  leads 1..``forecast_hours`` h; electricity price now; round trip from the request's origin; waiting
  requests per server; busy share of servers; SLO slack ``tanh((SLO - predicted latency) / SLO)`` with
  the queue-aware predicted latency of :meth:`DecisionView.predicted_latency_ms`;
* optionally the reward weights, ``w / (w + 1)`` each (:class:`~carbonsim.learn.config.RewardConfig`).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable

import numpy as np

from carbonsim.core.view import DecisionView, PolicyContext
from carbonsim.learn.config import FeatureConfig, RewardConfig

#: Reference scales of the bounded transforms (the value that maps to 0.5).
INTENSITY_REF_GCO2_PER_KWH = 300.0
PRICE_REF_USD_PER_KWH = 0.1
RTT_REF_MS = 100.0
TIME_FEATURES = 4
PER_REGION_FIXED = 7


def feature_size(n_regions: int, n_workloads: int, features: FeatureConfig) -> int:
    """Length of the observation vector."""
    per_region = PER_REGION_FIXED + features.forecast_hours
    return TIME_FEATURES + n_workloads + n_regions * per_region + (4 if features.observe_weights else 0)


def feature_names(context: PolicyContext, features: FeatureConfig) -> list[str]:
    """A name per observation entry, for inspection and for checkpoints."""
    names = ["hour_sin", "hour_cos", "weekday_sin", "weekday_cos"]
    names += [f"workload={w}" for w in context.workload_names]
    for r in context.region_names:
        names += [f"{r}.intensity", f"{r}.intensity_rel"]
        names += [f"{r}.forecast+{h}h" for h in range(1, features.forecast_hours + 1)]
        names += [f"{r}.price", f"{r}.rtt", f"{r}.queue_per_server", f"{r}.utilisation", f"{r}.slo_slack"]
    if features.observe_weights:
        names += ["w_carbon", "w_sla", "w_cost", "w_unserved"]
    return names


def _start_epoch_s(start_utc: str) -> float:
    """Seconds from Monday 1970-01-05 00:00 UTC to t = 0 (a Monday midnight when there is no calendar)."""
    if not start_utc:
        return 0.0
    t = datetime.datetime.fromisoformat(start_utc.replace("Z", "+00:00"))
    monday = datetime.datetime(1970, 1, 5, tzinfo=datetime.UTC)
    return (t - monday).total_seconds()


def time_features(start_utc: str) -> Callable[[float], list[float]]:
    """A function of simulated time in s giving sine and cosine of the UTC hour of day and day of week."""
    epoch_s = _start_epoch_s(start_utc)

    def features(now_s: float) -> list[float]:
        t = epoch_s + now_s
        day = 2.0 * math.pi * (t % 86_400.0) / 86_400.0
        week = 2.0 * math.pi * (t % 604_800.0) / 604_800.0
        return [math.sin(day), math.cos(day), math.sin(week), math.cos(week)]

    return features


def reward_weight_features(reward: RewardConfig) -> list[float]:
    """The reward weights as observed values, ``w / (w + 1)`` each."""
    w = (reward.carbon_per_kg, reward.sla_per_s, reward.cost_per_usd, reward.unserved_s)
    return [x / (x + 1.0) for x in w]


def hourly_region_features(view: DecisionView, forecast_hours: int) -> list[list[float]]:
    """Per region: intensity, relative intensity, forecasts at leads 1..``forecast_hours``, price.

    They are constant within an hour, so callers compute them once per hour.
    """
    intensity = view.intensity_gco2_per_kwh
    mean = sum(intensity) / len(intensity)
    out = []
    for r, (i, p) in enumerate(zip(intensity, view.price_usd_per_kwh, strict=True)):
        row = [i / (i + INTENSITY_REF_GCO2_PER_KWH), math.tanh((i - mean) / (mean + 1.0))]
        if forecast_hours:
            fc = view.forecast_gco2_per_kwh(r, forecast_hours + 1)[1:].tolist()
            # Near the end of the signal the forecast is shorter: the last value stands for the rest.
            fc += [fc[-1] if fc else i] * (forecast_hours - len(fc))
            row += [f / (f + INTENSITY_REF_GCO2_PER_KWH) for f in fc]
        row.append(p / (abs(p) + PRICE_REF_USD_PER_KWH))
        out.append(row)
    return out


class FeatureBuilder:
    """Builds observation vectors for one run.

    Args:
        context: The run's static facts (from the simulator).
        features: What to include.
    """

    def __init__(self, context: PolicyContext, features: FeatureConfig) -> None:
        self.context = context
        self.features = features
        self.size = feature_size(context.n_regions, len(context.workload_names), features)
        self._time = time_features(context.start_utc)
        self._servers = [c if math.isfinite(c) else 0.0 for c in context.servers]
        self._rtt = [[r / (r + RTT_REF_MS) for r in row] for row in context.rtt_ms.tolist()]
        self._hour = -1
        self._hourly: list[list[float]] = []
        self._weights: list[float] = []

    def set_reward(self, reward: RewardConfig) -> None:
        """The reward weights shown in the observation (with ``observe_weights``)."""
        self._weights = reward_weight_features(reward)

    def _hourly_features(self, view: DecisionView) -> list[list[float]]:
        hour = int(view.now_s // 3600.0)
        if hour != self._hour:
            self._hour = hour
            self._hourly = hourly_region_features(view, self.features.forecast_hours)
        return self._hourly

    def build(self, view: DecisionView) -> np.ndarray:
        """The observation for the request ``view`` describes, float32 of length :attr:`size`."""
        obs = self._time(view.now_s)
        onehot = [0.0] * len(self.context.workload_names)
        onehot[view.workload] = 1.0
        obs += onehot
        slo = view.slo_ms
        latency = view.predicted_latency_ms("mean", True)
        qlen = view.queue_length
        busy = view.busy_servers
        rtt = self._rtt[view.origin]
        for r, row in enumerate(self._hourly_features(view)):
            c = self._servers[r]
            q = qlen[r] / c if c else 0.0
            obs += row
            obs += [rtt[r], q / (q + 1.0), busy[r] / c if c else 0.0, math.tanh((slo - latency[r]) / slo)]
        if self.features.observe_weights:
            obs += self._weights
        return np.asarray(obs, dtype=np.float32)


__all__ = [
    "FeatureBuilder",
    "feature_names",
    "feature_size",
    "hourly_region_features",
    "reward_weight_features",
    "time_features",
]
