"""The state as a sequence of tokens, for the transformer scheduler (:mod:`carbonsim.learn.transformer`).

One token per candidate region, plus one for the request, one for the time and one for deferring. Every
token is a row of the same width; a kind embedding added inside the model tells the kinds apart, and the
region tokens carry no position, so the model sees the regions as a set and works for any number of them,
including region sets it never saw in training. Every value is a bounded transform of an observable
quantity, as in :mod:`carbonsim.learn.features` (never clipped).

Rows, in order:

* ``REQUEST``: the request's SLO; the profiled mean service time of its workload averaged over the
  regions; optionally the reward weights (``observe_weights``);
* ``TIME``: sine and cosine of the hour of day and of the day of week (UTC);
* ``DEFER``: zeros (the model learns what "defer" means from the kind alone);
* one per region: intensity now; intensity now relative to the mean over regions; forecast intensity at
  leads 1..``forecast_hours`` h; electricity price now; round trip from the request's origin; waiting
  requests per server; busy share of servers; SLO slack with the queue-aware latency prediction; SLO slack
  without queueing; (PUE - 1) / PUE; profiled mean service time of the request's workload; number of servers.
"""

from __future__ import annotations

import math

import numpy as np

from carbonsim.core.view import DecisionView, PolicyContext
from carbonsim.learn.config import FeatureConfig, RewardConfig
from carbonsim.learn.features import (
    RTT_REF_MS,
    hourly_region_features,
    reward_weight_features,
    time_features,
)

#: Token kinds (the index of the kind embedding).
REQUEST, TIME, DEFER, REGION = 0, 1, 2, 3
N_KINDS = 4
#: Tokens before the region tokens.
FIXED_TOKENS = 3
#: Reference scales of the bounded transforms (the value that maps to 0.5).
SLO_REF_MS = 100.0
SERVICE_REF_MS = 20.0
SERVERS_REF = 4.0
#: Region-token values that follow the hourly ones (price excluded: it is part of the hourly block).
REGION_DYNAMIC = 8


def token_width(features: FeatureConfig) -> int:
    """Width of every token row: the widest kind (a region token)."""
    hourly = 2 + features.forecast_hours + 1
    return max(hourly + REGION_DYNAMIC, 2 + (4 if features.observe_weights else 0), 4)


def token_kinds(n_regions: int) -> np.ndarray:
    """The kind of each token for a state with ``n_regions`` regions."""
    return np.array([REQUEST, TIME, DEFER] + [REGION] * n_regions, dtype=np.int64)


class TokenBuilder:
    """Builds the token matrix of a decision, shape (``FIXED_TOKENS`` + regions, :func:`token_width`).

    Args:
        context: The run's static facts (from the simulator).
        features: What to include (forecast leads, reward weights).
    """

    def __init__(self, context: PolicyContext, features: FeatureConfig) -> None:
        self.context = context
        self.features = features
        self.width = token_width(features)
        self.n_tokens = FIXED_TOKENS + context.n_regions
        self.shape = (self.n_tokens, self.width)
        self._time = time_features(context.start_utc)
        servers = [c if math.isfinite(c) else 0.0 for c in context.servers]
        self._servers = servers
        self._rtt = [[r / (r + RTT_REF_MS) for r in row] for row in context.rtt_ms.tolist()]
        # Per workload, the static part of each region token: PUE, service time, servers.
        mean_ms = np.asarray(context.mean_service_ms, dtype=np.float64)
        self._static = [
            [
                [(pue - 1.0) / pue, s / (s + SERVICE_REF_MS), c / (c + SERVERS_REF) if c else 1.0]
                for pue, s, c in zip(context.pue, mean_ms[w].tolist(), servers, strict=True)
            ]
            for w in range(len(context.workload_names))
        ]
        self._request = [
            [slo / (slo + SLO_REF_MS), float(mean_ms[w].mean()) / (float(mean_ms[w].mean()) + SERVICE_REF_MS)]
            for w, slo in enumerate(context.slo_ms)
        ]
        self._hour = -1
        self._hourly: list[list[float]] = []
        self._weights: list[float] = []

    def set_reward(self, reward: RewardConfig) -> None:
        """The reward weights shown in the request token (with ``observe_weights``)."""
        self._weights = reward_weight_features(reward)

    def _pad(self, row: list[float]) -> list[float]:
        return row + [0.0] * (self.width - len(row))

    def build(self, view: DecisionView) -> np.ndarray:
        """The token matrix of the request ``view`` describes, float32."""
        hour = int(view.now_s // 3600.0)
        if hour != self._hour:
            self._hour = hour
            self._hourly = hourly_region_features(view, self.features.forecast_hours)
        w = view.workload
        request = self._request[w] + (self._weights if self.features.observe_weights else [])
        rows = [self._pad(request), self._pad(self._time(view.now_s)), [0.0] * self.width]
        slo = view.slo_ms
        latency = view.predicted_latency_ms("mean", True)
        static_latency = view.static_latency_ms("mean")
        qlen = view.queue_length
        busy = view.busy_servers
        rtt = self._rtt[view.origin]
        static = self._static[w]
        for r, hourly in enumerate(self._hourly):
            c = self._servers[r]
            q = qlen[r] / c if c else 0.0
            rows.append(
                [
                    *hourly,
                    rtt[r],
                    q / (q + 1.0),
                    busy[r] / c if c else 0.0,
                    math.tanh((slo - latency[r]) / slo),
                    math.tanh((slo - static_latency[r]) / slo),
                    *static[r],
                ]
            )
        return np.asarray(rows, dtype=np.float32)


__all__ = [
    "DEFER",
    "FIXED_TOKENS",
    "N_KINDS",
    "REGION",
    "REQUEST",
    "TIME",
    "TokenBuilder",
    "token_kinds",
    "token_width",
]
