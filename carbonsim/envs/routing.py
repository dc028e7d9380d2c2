"""``carbonsim/Routing-v0``: one Gymnasium step per routing decision, over the same simulator the CLI runs.

Each episode compiles the scenario for a window of ``episode_hours`` starting at an hour drawn from the
configured calendar window, draws its requests, and runs :class:`~carbonsim.core.simulation.Simulation`
with a policy whose decisions come from :meth:`RoutingEnv.step`: the simulation pauses at every arrival
(:class:`~carbonsim.core.policy.AwaitDecision`) and the action routes that request. Nothing else differs
from a CLI run: the same events happen in the same order, so an episode's metrics are a CLI run's metrics.

Reward (after the seed research): ``-(alpha x carbon_kg + beta x SLA_s + gamma x cost_usd)`` over what the
:class:`~carbonsim.core.ledger.Ledger` credits between two decisions. Outcomes are credited when they
become known, not to the decision that caused them: a request's service energy and its SLO excess when it
completes (usually a few decisions later), the idle floor as time passes, and on the last step everything
that happens while the run drains. PPO's advantage estimates carry the credit back; the undiscounted
return equals minus the weighted totals of the episode exactly (tested).
"""

from __future__ import annotations

import datetime
from typing import Any

import gymnasium as gym
import numpy as np

from carbonsim._hydra import load_config
from carbonsim._schema import ConfigError
from carbonsim.config import RunConfig
from carbonsim.core.ledger import Credit, Ledger
from carbonsim.core.policy import AwaitDecision
from carbonsim.core.simulation import SimResult, Simulation
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.envs.episodes import episode_run_config
from carbonsim.learn.config import RewardConfig, RoutingEnvConfig, parse_utc_hour
from carbonsim.learn.features import FeatureBuilder, feature_size
from carbonsim.learn.tokens import FIXED_TOKENS, TokenBuilder, token_width
from carbonsim.runner import make_simulation, prepare

#: Seeds of episodes are drawn below this bound from the environment's generator.
SEED_BOUND = 2**31 - 1


class ExternalPolicy:
    """A routing policy whose decisions are supplied from outside the simulation (by the environment)."""

    def __init__(self) -> None:
        self.action: int | None = None

    def reset(self, context: PolicyContext) -> None:
        """Nothing to prepare."""

    def plan(self, view: PlanView) -> None:
        """No planning."""

    def decide(self, view: DecisionView) -> int:
        """Returns the supplied action, or pauses the simulation until there is one."""
        action = self.action
        if action is None:
            raise AwaitDecision
        self.action = None
        return action


def make_ledger(sim: Simulation) -> Ledger:
    """The ledger of a simulation, from its scenario's power, PUE, SLO and signals."""
    regions = sim.world.scenario.regions
    req = sim.requests
    return Ledger(
        sim.records,
        req.arrival_s,
        req.origin,
        req.workload,
        req.jitter_ms,
        sim.world.rtt_ms,
        np.array([w.slo_ms for w in sim.world.scenario.workloads]),
        [[p.count for p in specs] for specs in sim.pools],
        [[(p.idle_w, p.busy_w) for p in r.pools] for r in regions],
        [r.pue for r in regions],
        sim.world.carbon,
        sim.world.price,
    )


def penalty(credit: Credit, reward: RewardConfig) -> float:
    """The weighted penalty alpha x carbon + beta x SLA + gamma x cost of a credit (the reward is its negative)."""
    sla_s = credit.slo_excess_s + reward.unserved_s * credit.unserved
    return (
        reward.carbon_per_kg * credit.carbon_g / 1e3 + reward.sla_per_s * sla_s + reward.cost_per_usd * credit.cost_usd
    )


class RoutingEnv(gym.Env[np.ndarray, np.int64]):
    """Routes each arriving request to a region.

    Observation: a float32 vector in [-1, 1] (:mod:`carbonsim.learn.features`), or with
    ``features.layout: tokens`` a matrix with one row per token (:mod:`carbonsim.learn.tokens`, for the
    transformer scheduler). Action: a region index.
    Episodes end (``terminated``) when the run has stopped: after the last arrival and its drain.

    Args:
        config: Environment configuration (defaults: the default scenario, 1-hour episodes).
        run: A complete run configuration to use instead of composing ``config.scenario`` (its scenario,
            seed default, drain settings are ignored in favour of ``config``'s).
        render_mode: Unused (no rendering); accepted for Gymnasium's API.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self, config: RoutingEnvConfig | None = None, run: RunConfig | None = None, render_mode: str | None = None
    ) -> None:
        self.config = config or RoutingEnvConfig()
        base = run if run is not None else load_config([f"scenario={self.config.scenario}", *self.config.overrides])
        if base.scenario.batch.has_jobs:
            batch = base.scenario.batch
            raise ConfigError(
                "scenario.batch.trace: the routing environment simulates requests only; expected no batch jobs "
                f"(set scenario.batch.trace to '' ), got {batch.trace or batch.generator.kind!r}"
            )
        if base.scenario.faults.active:
            raise ConfigError(
                "scenario.faults: the routing environment does not simulate faults (a request hit by one would "
                "need a second decision outside the step sequence); expected no outages, cuts or server failures"
            )
        self.base = base
        self.reward_config = self.config.reward
        sc = base.scenario
        self.n_regions = len(sc.regions)
        features = self.config.features
        shape: tuple[int, ...]
        if features.layout == "tokens":
            shape = (FIXED_TOKENS + self.n_regions, token_width(features))
        else:
            shape = (feature_size(self.n_regions, len(sc.workloads), features),)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self.n_regions)
        self.render_mode = render_mode
        self._window_start: datetime.datetime | None = None
        if self.config.window_start_utc:
            self._window_start = parse_utc_hour(self.config.window_start_utc, "window_start_utc")
        elif sc.start_utc:
            self._window_start = parse_utc_hour(sc.start_utc, "scenario.start_utc")
        self._starts = self.config.start_hours()
        self.sim: Simulation | None = None
        self._policy = ExternalPolicy()
        self._ledger: Ledger | None = None
        self._features: FeatureBuilder | TokenBuilder | None = None
        self._result: SimResult | None = None
        self._totals = np.zeros(6)
        self.episode_start_utc = ""
        self.episode_seed = 0

    # -- episode set-up -----------------------------------------------------------------------------------

    def episode_config(self, start_hour: int, seed: int) -> RunConfig:
        """The run configuration of an episode starting ``start_hour`` hours into the window."""
        c = self.config
        return episode_run_config(
            self.base, self._window_start, start_hour, seed, c.episode_hours, c.drain, c.max_drain_hours
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts an episode and returns the observation of its first request.

        Args:
            seed: Seeds the environment's generator (episode start hour and episode seed are drawn from it).
            options: ``start_hour``: the episode's start, in hours after the window start (instead of a
                random one); ``seed``: the simulation's seed (instead of a random one).
        """
        super().reset(seed=seed)
        options = options or {}
        start_hour = int(options.get("start_hour", self.np_random.integers(self._starts)))
        if not 0 <= start_hour < self._starts:
            raise ValueError(f"options.start_hour: expected an hour in [0, {self._starts}), got {start_hour}")
        sim_seed = int(options.get("seed", self.np_random.integers(SEED_BOUND)))
        cfg = self.episode_config(start_hour, sim_seed)
        world, requests, _ = prepare(cfg)
        if not len(requests):
            raise ValueError(
                f"episode from {cfg.scenario.start_utc or 't = 0'} (seed {sim_seed}) has no requests; raise "
                "scenario.arrivals.rate_per_s or episode_hours"
            )
        self._policy = ExternalPolicy()
        sim = make_simulation(cfg, world, requests, self._policy, sim_seed)
        sim.start()
        self.sim = sim
        self._ledger = make_ledger(sim)
        self._features = (
            TokenBuilder(sim.context, self.config.features)
            if self.config.features.layout == "tokens"
            else FeatureBuilder(sim.context, self.config.features)
        )
        self._features.set_reward(self.reward_config)
        self._result = None
        self._totals = np.zeros(6)
        self.episode_start_utc = cfg.scenario.start_utc
        self.episode_seed = sim_seed
        sim.advance()
        return self._features.build(sim.view), self._info(None)

    # -- stepping -----------------------------------------------------------------------------------------

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Routes the pending request to region ``action`` and runs the simulation to the next decision."""
        sim = self.sim
        if sim is None or self._ledger is None or self._features is None:
            raise RuntimeError("step() before reset()")
        if self._result is not None:
            raise RuntimeError("step() after the episode ended; call reset()")
        region = int(action)
        if region != action or not 0 <= region < self.n_regions:
            raise ValueError(f"action: expected a region index in [0, {self.n_regions}), got {action!r}")
        self._policy.action = region
        sim.resume()
        pending = sim.advance()
        if pending:
            credit = self._ledger.credit(sim.env.now, sim.view.request_id)
            obs = self._features.build(sim.view)
        else:
            credit = self._ledger.credit(sim.env.now, len(sim.requests), final=True)
            self._result = sim.finish()
            obs = np.zeros(self.observation_space.shape or (0,), dtype=np.float32)
        self._totals += (
            credit.carbon_g,
            credit.energy_kwh,
            credit.cost_usd,
            credit.slo_excess_s,
            credit.completed,
            credit.unserved,
        )
        reward = -penalty(credit, self.reward_config)
        return obs, reward, not pending, False, self._info(credit)

    def set_reward(self, reward: RewardConfig) -> None:
        """Changes the reward weights from the next step on (operator priorities may change mid-episode)."""
        self.reward_config = reward
        if self._features is not None:
            self._features.set_reward(reward)

    # -- reading ------------------------------------------------------------------------------------------

    @property
    def result(self) -> SimResult | None:
        """The finished episode's raw simulation result (None while it runs)."""
        return self._result

    @property
    def totals(self) -> dict[str, float]:
        """What the episode has credited so far."""
        keys = ("carbon_g", "energy_kwh", "cost_usd", "slo_excess_s", "completed", "unserved")
        return dict(zip(keys, self._totals.tolist(), strict=True))

    def _info(self, credit: Credit | None) -> dict[str, Any]:
        sim = self.sim
        assert sim is not None
        info: dict[str, Any] = {"sim_time_s": float(sim.env.now), "episode_start_utc": self.episode_start_utc}
        if credit is not None:
            info.update(
                carbon_g=credit.carbon_g,
                energy_kwh=credit.energy_kwh,
                cost_usd=credit.cost_usd,
                slo_excess_s=credit.slo_excess_s,
                completed=credit.completed,
                unserved=credit.unserved,
            )
        return info


__all__ = ["ExternalPolicy", "RoutingEnv", "make_ledger", "penalty"]
