"""``carbonsim/Shifting-v0``: one Gymnasium step per batch epoch, over the same batch engine the CLI runs.

Each episode compiles the scenario for a window of ``episode_hours`` (a start hour drawn from the configured
calendar window), draws its jobs and runs :class:`~carbonsim.core.simulation.Simulation` with a batch policy
whose decisions come from :meth:`ShiftingEnv.step`: at every epoch of the engine (a job arrival, a completion,
an hour boundary, a job's latest start) the policy raises
:class:`~carbonsim.core.policy.AwaitDecision`, the engine pauses, and the action decides. The same events
happen as in a CLI run under a batch policy that made the same decisions (tested).

**Action design.** The runnable items of an epoch are the rows of ``view.stages`` (runnable stages of DAG
jobs; a one-stage job is one item), any number of them. The action is factorised per item over a padded,
masked set of at most ``max_items`` slots: ``MultiDiscrete([1 + R] * max_items)`` where 0 defers the item
and ``1 + r`` runs it now in region ``r``. One forward pass decides every item at once (an epoch of a
thousand items is one step, not a thousand), the joint log-probability is the sum over slots, and the
Gym space stays fixed while the network (:mod:`carbonsim.learn.shifting_model`) is a function of sets: it
decides for any number of items and regions. Slots past the epoch's items (mask 0) are ignored. Items past
``max_items`` keep running if they run and wait otherwise. How choices become the engine's decisions (a
job runs in one region at a time; non-interruptible running work stays; the **deadline guard**
:func:`~carbonsim.policies.stages.settle_deadlines` starts, after the agent's choice, every item that must
start now for its job to meet a deadline its critical path allows): :func:`carbonsim.learn.shifting_features.decisions`.
Deferring a running item of an interruptible job suspends it (the engine's semantics).

**Reward.** ``-(alpha x carbon_kg + beta x lateness_h + gamma x cost_usd)`` accrued between two steps:
carbon and electricity cost of the batch clusters' running tasks (with PUE) and of migrations, exactly as
:func:`~carbonsim.core.jobs.job_account` counts them, and *lateness*, the job-hours past deadlines: every
arrived job that has not failed accrues one hour per hour while it is unfinished past its deadline (a job
completed late has accrued ``end - deadline``; one still running at the end of the run, ``end of run -
deadline``). The last step holds what the drain adds. The undiscounted return equals minus the weighted
totals of the run's job table exactly (tested); the account is the engine's
:class:`~carbonsim.core.jobs.accrual.Accrual`, which the learned scheduler's online learner reads too. The
weights are part of the observation, fixed per episode (``weights`` in the config or ``options``, else
sampled: :class:`~carbonsim.learn.shifting_config.ShiftingEnvConfig`).
"""

from __future__ import annotations

import datetime
from typing import Any

import gymnasium as gym
import numpy as np

from carbonsim._hydra import load_config
from carbonsim._schema import ConfigError
from carbonsim.config import RunConfig
from carbonsim.core.arrivals import draw_requests
from carbonsim.core.jobs import JobContext, JobView
from carbonsim.core.jobs.accrual import Accrual
from carbonsim.core.policy import AwaitDecision
from carbonsim.core.simulation import SimResult, Simulation
from carbonsim.core.world import compile_world, signal_hours
from carbonsim.envs.episodes import episode_run_config
from carbonsim.hardware import resolve_profiles
from carbonsim.inputs import batch_jobs, request_inputs, signals
from carbonsim.learn.config import parse_utc_hour
from carbonsim.learn.shifting_config import ShiftingEnvConfig, check_weights
from carbonsim.learn.shifting_features import (
    DEFER,
    GLOBAL_FEATURES,
    ITEM_FEATURES,
    PAIR_FEATURES,
    REGION_FEATURES,
    decisions,
    global_features,
    item_features,
    pair_features,
    region_features,
)
from carbonsim.runner import make_simulation, prepare

#: Seeds of episodes are drawn below this bound from the environment's generator.
SEED_BOUND = 2**31 - 1

Obs = dict[str, np.ndarray]


class ExternalBatchPolicy:
    """A batch policy whose choices come from outside the simulation (the environment).

    Without choices, :meth:`schedule` keeps the epoch's observation in :attr:`observed` and raises
    :class:`AwaitDecision`; called again with :attr:`choices` set, it returns their decisions.
    """

    def __init__(self, weights: tuple[float, float, float], max_items: int) -> None:
        self.weights = weights
        self.max_items = max_items
        self.choices: np.ndarray | None = None
        self.observed: Obs | None = None
        self.rows = 0
        self.forced = 0
        self.context: JobContext | None = None

    def reset(self, context: JobContext) -> None:
        """Keeps the static facts (for the region features)."""
        self.context = context

    def observe(self, view: JobView) -> Obs:
        """The padded observation of an epoch."""
        assert self.context is not None, "reset() first"
        n_regions = len(self.context.region_names)
        size = self.max_items
        items, home, current = item_features(view)
        n = min(items.shape[0], size)
        obs_items = np.zeros((size, ITEM_FEATURES), dtype=np.float32)
        obs_items[:n] = items[:n]
        mask = np.zeros(size, dtype=np.float32)
        mask[:n] = 1.0
        pairs = np.zeros((size, n_regions, PAIR_FEATURES), dtype=np.float32)
        pairs[:n] = pair_features(view, home, current, n_regions)[:n]
        return {
            "items": obs_items.reshape(-1),
            "item_mask": mask,
            "pairs": pairs.reshape(-1),
            "regions": region_features(view, self.context).reshape(-1),
            "globals": global_features(view, self.weights, items.shape[0]),
        }

    def schedule(self, view: JobView) -> dict[Any, Any]:
        """Returns the decisions of the supplied choices, or pauses the engine until there are some."""
        choices = self.choices
        if choices is None:
            self.observed = self.observe(view)
            self.rows = len(view.stages)
            raise AwaitDecision
        self.choices = None
        st = view.stages
        full = np.where(st.running > 0, st.region, DEFER).astype(np.int64)  # items past the slots
        k = min(choices.size, full.size)
        full[:k] = choices[:k]
        out, forced = decisions(view, full, self.context)
        self.forced += forced
        return out


class ShiftingEnv(gym.Env[Obs, np.ndarray]):
    """Decides at every batch epoch, for each runnable item, to defer it or run it now in a region.

    Observation (a ``Dict`` of flat vectors, as stable-baselines3 wants them; :func:`unflatten` gives the
    matrices): ``items`` (max_items x :data:`ITEM_FEATURES`), ``item_mask`` (max_items), ``pairs`` (max_items
    x regions x :data:`PAIR_FEATURES`: the item's home, the region it runs in, what waiting for the region's
    cleanest forecast hour within the item's slack would save), ``regions`` (regions x :data:`REGION_FEATURES`),
    ``globals`` (:data:`GLOBAL_FEATURES`: the weights, time, item count); all in [-1, 1].
    Action: ``MultiDiscrete([1 + regions] * max_items)``, 0 defer, ``1 + r`` region ``r``.
    Episodes end (``terminated``) when the run has stopped.

    Args:
        config: Environment configuration.
        run: A complete run configuration to use instead of composing ``config.scenario``.
        render_mode: Unused (no rendering); accepted for Gymnasium's API.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's class attribute

    def __init__(
        self, config: ShiftingEnvConfig | None = None, run: RunConfig | None = None, render_mode: str | None = None
    ) -> None:
        self.config = config or ShiftingEnvConfig()
        base = run if run is not None else load_config([f"scenario={self.config.scenario}", *self.config.overrides])
        sc = base.scenario
        if not sc.batch.has_jobs:
            raise ConfigError("scenario.batch: the shifting environment schedules batch jobs; the scenario has none")
        if sc.faults.active:
            raise ConfigError("scenario.faults: the shifting environment does not simulate faults; expected none")
        self.base = base
        self.n_regions = len(sc.regions)
        size, r = self.config.max_items, self.n_regions
        self._space = gym.spaces.Dict(
            {
                "items": gym.spaces.Box(-1.0, 1.0, shape=(size * ITEM_FEATURES,), dtype=np.float32),
                "item_mask": gym.spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32),
                "pairs": gym.spaces.Box(0.0, 1.0, shape=(size * r * PAIR_FEATURES,), dtype=np.float32),
                "regions": gym.spaces.Box(-1.0, 1.0, shape=(r * REGION_FEATURES,), dtype=np.float32),
                "globals": gym.spaces.Box(-1.0, 1.0, shape=(GLOBAL_FEATURES,), dtype=np.float32),
            }
        )
        self.observation_space = self._space  # type: ignore[assignment]  # Dict is a Space of dicts of arrays
        self.action_space = gym.spaces.MultiDiscrete(np.full(size, 1 + r, dtype=np.int64))
        self.render_mode = render_mode
        self._window_start: datetime.datetime | None = None
        if self.config.window_start_utc:
            self._window_start = parse_utc_hour(self.config.window_start_utc, "window_start_utc")
        elif sc.start_utc:
            self._window_start = parse_utc_hour(sc.start_utc, "scenario.start_utc")
        self._starts = self.config.start_hours()
        self.sim: Simulation | None = None
        self._policy = ExternalBatchPolicy((1.0, 1.0, 1.0), size)
        self._accrual: Accrual | None = None
        self._accrued = np.zeros(4)
        self._result: SimResult | None = None
        self.weights = (1.0, 1.0, 1.0)
        self.episode_start_utc = ""
        self.episode_seed = 0
        self.episode_config_: RunConfig | None = None
        self._signals: dict[tuple[str, int], tuple[Any, Any, Any]] = {}

    def episode_config(self, start_hour: int, seed: int) -> RunConfig:
        """The run configuration of an episode starting ``start_hour`` hours into the window."""
        c = self.config
        return episode_run_config(
            self.base, self._window_start, start_hour, seed, c.episode_hours, c.drain, c.max_drain_hours
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        """Starts an episode and returns the observation of its first epoch.

        Args:
            seed: Seeds the environment's generator (start hour, episode seed and weights are drawn from it).
            options: ``start_hour`` (hours after the window start), ``seed`` (the simulation's seed),
                ``weights`` ([alpha, beta, gamma]) instead of drawn ones.
        """
        super().reset(seed=seed)
        options = options or {}
        start_hour = int(options.get("start_hour", self.np_random.integers(self._starts)))
        if not 0 <= start_hour < self._starts:
            raise ValueError(f"options.start_hour: expected an hour in [0, {self._starts}), got {start_hour}")
        sim_seed = int(options.get("seed", self.np_random.integers(SEED_BOUND)))
        weights = tuple(float(w) for w in options.get("weights", self.config.weights))
        check_weights(weights, "options.weights")
        if not weights:
            draw = self.config.weight_scale * self.np_random.dirichlet(np.ones(3))
            weights = (float(draw[0]), float(draw[1]), float(draw[2]))
        self.weights = (weights[0], weights[1], weights[2])
        cfg = self.episode_config(start_hour, sim_seed)
        world, requests, jobs = self._prepare(cfg)
        if not len(jobs):
            raise ValueError(
                f"episode from {cfg.scenario.start_utc or 't = 0'} (seed {sim_seed}) has no jobs; raise the job "
                "rate or episode_hours"
            )
        self._policy = ExternalBatchPolicy(self.weights, self.config.max_items)
        sim = make_simulation(cfg, world, requests, _make_routing(cfg), sim_seed, jobs=jobs, batch_policy=self._policy)
        sim.start()
        self.sim = sim
        self.episode_config_ = cfg
        self._accrual = sim.batch.accrual if sim.batch is not None else None
        self._accrued = np.zeros(4)
        self._result = None
        self.episode_start_utc = cfg.scenario.start_utc
        self.episode_seed = sim_seed
        if not sim.advance():
            raise ValueError(f"episode from {cfg.scenario.start_utc} (seed {sim_seed}) has no batch epoch")
        return self._obs(), self._info(None)

    def _prepare(self, cfg: RunConfig) -> tuple[Any, Any, Any]:
        """:func:`carbonsim.runner.prepare`, reading measured signals once per episode start.

        Measured signals of a window do not depend on the seed, and reading them (years of hourly data per
        zone) takes about a second, most of a short episode's reset; synthetic ones do, and are not kept.
        """
        scenario = cfg.scenario
        if scenario.carbon.kind == "synthetic_diurnal":
            return prepare(cfg)
        hours = signal_hours(cfg.sim_hours, cfg.drain, cfg.max_drain_hours)
        key = (scenario.start_utc, hours)
        if key not in self._signals:
            self._signals.clear()  # one window at a time: episodes mostly start at different hours
            resolved = resolve_profiles(scenario)
            self._signals[key] = (resolved, *signals(resolved, cfg.seed, hours))
        resolved, carbon, price = self._signals[key]
        world = compile_world(resolved, cfg.seed, hours, carbon=carbon, price=price)
        inputs = request_inputs(resolved)
        requests = draw_requests(
            resolved, cfg.seed, cfg.sim_hours, inputs.load_shape, inputs.replay_s, inputs.replay_workload
        )
        return world, requests, batch_jobs(resolved, cfg.seed, cfg.sim_hours)

    def _obs(self) -> Obs:
        obs = self._policy.observed
        assert obs is not None
        return obs

    def step(self, action: Any) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        """Applies one choice per item slot and runs the simulation to the next epoch."""
        sim, accrual = self.sim, self._accrual
        if sim is None or accrual is None or sim.batch is None:
            raise RuntimeError("step() before reset()")
        if self._result is not None:
            raise RuntimeError("step() after the episode ended; call reset()")
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape != (self.config.max_items,) or a.min() < 0 or a.max() > self.n_regions:
            raise ValueError(
                f"action: expected {self.config.max_items} values in 0..{self.n_regions} (0 defers, 1 + r runs "
                f"in region r), got {action!r}"
            )
        self._policy.choices = a[: self._policy.rows] - 1
        sim.batch.resume()
        pending = sim.advance()
        if pending:
            total = accrual.at(float(sim.env.now))
            obs = self._obs()
        else:
            self._result = sim.finish()  # advances running tasks to the end of the run
            total = accrual.at(self._result.end_s)
            obs = {k: np.zeros(v.shape or (), dtype=np.float32) for k, v in self._space.items()}
        credit = total - self._accrued
        self._accrued = total
        alpha, beta, gamma = self.weights
        reward = -(alpha * credit[0] / 1e3 + beta * credit[3] + gamma * credit[2])
        return obs, float(reward), not pending, False, self._info(credit)

    @property
    def result(self) -> SimResult | None:
        """The finished episode's raw simulation result (None while it runs)."""
        return self._result

    @property
    def totals(self) -> dict[str, float]:
        """What the episode has accrued so far."""
        keys = ("carbon_g", "energy_kwh", "cost_usd", "lateness_h")
        return dict(zip(keys, self._accrued.tolist(), strict=True))

    @property
    def forced(self) -> int:
        """Items the deadline guard has started against the agent's choice this episode."""
        return self._policy.forced

    def _info(self, credit: np.ndarray | None) -> dict[str, Any]:
        sim = self.sim
        assert sim is not None
        info: dict[str, Any] = {
            "sim_time_s": float(sim.env.now),
            "episode_start_utc": self.episode_start_utc,
            "items": self._policy.rows,
            "weights": self.weights,
        }
        if credit is not None:
            info.update(carbon_g=credit[0], energy_kwh=credit[1], cost_usd=credit[2], lateness_h=credit[3])
        return info


def unflatten(obs: Obs, n_regions: int) -> Obs:
    """The observation's matrices: items (N, F), item_mask (N,), pairs (N, R, P), regions (R, F), globals.

    Works on a batch too (a leading dimension, as vectorised environments give).
    """
    lead = obs["item_mask"].shape[:-1]
    n = obs["item_mask"].shape[-1]
    return {
        "items": obs["items"].reshape(*lead, n, ITEM_FEATURES),
        "item_mask": obs["item_mask"],
        "pairs": obs["pairs"].reshape(*lead, n, n_regions, PAIR_FEATURES),
        "regions": obs["regions"].reshape(*lead, n_regions, REGION_FEATURES),
        "globals": obs["globals"],
    }


def _make_routing(cfg: RunConfig) -> Any:
    from carbonsim.policies import make_policy

    return make_policy(cfg.policy)


__all__ = ["Accrual", "ExternalBatchPolicy", "ShiftingEnv", "unflatten"]
