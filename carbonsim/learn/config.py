"""Configuration of the learning side: the reward, the routing environment and PPO training.

Frozen dataclasses, like :mod:`carbonsim.config`: Hydra's ConfigStore registers :class:`TrainConfig` as the
schema of ``conf/train_ppo.yaml``, and the environment receives these objects, never a DictConfig.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from carbonsim._schema import ConfigError


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


def _weight(name: str, value: float) -> None:
    _check(math.isfinite(value) and value >= 0, name, value, "a finite weight >= 0")


def parse_utc_hour(value: str, name: str) -> datetime.datetime:
    """Parses an ISO 8601 UTC time on a whole hour, or raises ConfigError naming the field."""
    try:
        t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{name}: expected an ISO 8601 UTC time such as 2023-01-02T00:00:00Z, got {value!r}"
        ) from None
    if t.utcoffset() != datetime.timedelta(0) or (t.minute, t.second, t.microsecond) != (0, 0, 0):
        raise ConfigError(f"{name}: expected a whole hour in UTC (suffix Z), got {value!r}")
    return t


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward -(alpha x carbon + beta x SLA penalty + gamma x energy cost), after the seed research.

    Every quantity is credited when it becomes known (:mod:`carbonsim.core.ledger`); the undiscounted
    return of an episode is minus the weighted totals of the run.

    Attributes:
        carbon_per_kg: alpha, per kg CO2eq emitted (idle floor and service, facility energy).
        sla_per_s: beta, per second by which a completed request exceeded its SLO.
        cost_per_usd: gamma, per USD of electricity.
        unserved_s: SLA penalty in seconds charged (times beta) per request dropped or failed, which has
            no latency to compare with its SLO.
    """

    carbon_per_kg: float = 100_000.0
    sla_per_s: float = 1.0
    cost_per_usd: float = 100_000.0
    unserved_s: float = 1.0

    def __post_init__(self) -> None:
        _weight("carbon_per_kg", self.carbon_per_kg)
        _weight("sla_per_s", self.sla_per_s)
        _weight("cost_per_usd", self.cost_per_usd)
        _weight("unserved_s", self.unserved_s)


@dataclass(frozen=True)
class FeatureConfig:
    """What the observation holds (:mod:`carbonsim.learn.features`).

    Attributes:
        forecast_hours: Forecast intensities per region in the observation, for leads 1..forecast_hours h.
        observe_weights: Append the reward weights, so one agent can follow priorities that change.
    """

    forecast_hours: int = 3
    observe_weights: bool = False

    def __post_init__(self) -> None:
        _check(0 <= self.forecast_hours <= 47, "forecast_hours", self.forecast_hours, "an integer in [0, 47]")


@dataclass(frozen=True)
class RoutingEnvConfig:
    """The routing environment ``carbonsim/Routing-v0``.

    Attributes:
        scenario: Scenario name (a ``conf/scenario`` file).
        overrides: Further Hydra overrides of the run configuration (e.g. ``scenario.arrivals.rate_per_s=5``).
        episode_hours: Arrival window of one episode in hours.
        window_start_utc: First hour an episode may start (ISO 8601 UTC); empty: every episode starts at the
            scenario's ``start_utc``.
        window_end_utc: Episodes start before this hour and their arrivals end by it (required with a start).
        drain: After the last arrival, keep simulating until every request has finished (bounded by
            ``max_drain_hours``); the last step's reward then holds everything credited while draining.
        max_drain_hours: Bound on the drain in hours.
        reward: The reward weights (changeable during an episode: :meth:`RoutingEnv.set_reward`).
        features: The observation's contents.
    """

    scenario: str = "default"
    overrides: tuple[str, ...] = ()
    episode_hours: float = 1.0
    window_start_utc: str = ""
    window_end_utc: str = ""
    drain: bool = True
    max_drain_hours: float = 1.0
    reward: RewardConfig = field(default_factory=RewardConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)

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


@dataclass(frozen=True)
class EvalWindow:
    """A held-out time window the trained agent and the heuristics are evaluated on.

    Attributes:
        start_utc: Start (ISO 8601 UTC, whole hour).
        hours: Arrival window in hours.
    """

    start_utc: str
    hours: float = 2.0

    def __post_init__(self) -> None:
        parse_utc_hour(self.start_utc, "start_utc")
        _check(math.isfinite(self.hours) and self.hours > 0, "hours", self.hours, "a positive number of hours")


@dataclass(frozen=True)
class PPOConfig:
    """stable-baselines3 PPO hyperparameters (Schulman et al. 2017; SB3 defaults unless stated).

    Attributes:
        total_timesteps: Environment steps (routing decisions) to train for.
        n_envs: Environments stepped in parallel (vectorised).
        vec_env: ``dummy`` (one process) or ``subproc`` (one process per environment).
        n_steps: Steps per environment per rollout.
        batch_size: Minibatch size.
        n_epochs: Passes over each rollout.
        learning_rate: Adam step size.
        gamma: Discount factor.
        gae_lambda: GAE lambda.
        clip_range: PPO clip range.
        ent_coef: Entropy bonus.
        net_arch: Hidden layer sizes of the policy and value networks.
        torch_threads: Threads torch may use (the machine has 2 cores).
    """

    total_timesteps: int = 200_000
    n_envs: int = 2
    vec_env: str = "dummy"
    n_steps: int = 1024
    batch_size: int = 256
    n_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    net_arch: tuple[int, ...] = (64, 64)
    torch_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "n_envs", "n_steps", "batch_size", "n_epochs", "torch_threads"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        _check(self.vec_env in ("dummy", "subproc"), "vec_env", self.vec_env, "dummy or subproc")
        _check(
            len(self.net_arch) > 0 and all(n > 0 for n in self.net_arch), "net_arch", self.net_arch, "layer sizes > 0"
        )
        _check(0 < self.gamma <= 1, "gamma", self.gamma, "a discount in (0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    """``experiments/train_ppo.py``: train on one window, evaluate on held-out ones.

    Attributes:
        seed: Root seed (environments, network initialisation, evaluation).
        env: The training environment.
        ppo: PPO hyperparameters.
        eval_windows: Held-out windows for the final table (and the periodic evaluation).
        eval_every_steps: Steps between evaluations during training (0: only at the end).
        eval_policies: Heuristic routing policies evaluated on the same windows, each a mapping with a
            ``name`` and parameters (e.g. ``{name: hybrid, alpha: 0.5}``).
        checkpoint_every_steps: Steps between checkpoints (0: only the final one).
        resume: A training checkpoint (``train_state.pt``) to continue from; empty to start afresh.
        out_dir: Output folder; empty: the Hydra run folder.
    """

    seed: int = 0
    env: RoutingEnvConfig = field(default_factory=RoutingEnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval_windows: tuple[EvalWindow, ...] = ()
    eval_every_steps: int = 0
    eval_policies: tuple[dict[str, Any], ...] = ()
    checkpoint_every_steps: int = 0
    resume: str = ""
    out_dir: str = ""

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(self.eval_every_steps >= 0, "eval_every_steps", self.eval_every_steps, "steps >= 0")
        _check(self.checkpoint_every_steps >= 0, "checkpoint_every_steps", self.checkpoint_every_steps, "steps >= 0")
