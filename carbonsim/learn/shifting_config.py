"""Configuration of the shifting environment ``carbonsim/Shifting-v0`` and of the learned shifting scheduler.

Frozen dataclasses, like :mod:`carbonsim.learn.config`; the environment and the training script receive
these objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from carbonsim._schema import ConfigError
from carbonsim.learn.config import (
    _check,
    check_episode_lengths,
    check_episode_window,
    episode_start_hours,
    parse_utc_hour,
)

#: Default cap on the items (runnable stages) the environment's fixed-size observation holds.
MAX_ITEMS = 64
#: Backbones of the shifting network (:class:`ShiftingModelConfig`).
BACKBONES = ("scratch", "minilm")
#: all-MiniLM-L6-v2's sizes (its config.json; :func:`carbonsim.learn.shifting_model.build` checks them).
MINILM_WIDTH, MINILM_HEADS, MINILM_FFN, MINILM_LAYERS = 384, 12, 1536, 6
#: LayerNorm epsilon by backbone: torch's default, and BERT's (MiniLM's config.json ``layer_norm_eps``).
LAYER_NORM_EPS = {"scratch": 1e-5, "minilm": 1e-12}


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
        check_episode_lengths(self.episode_hours, self.max_drain_hours)
        _check(self.max_items >= 1, "max_items", self.max_items, "an integer >= 1")
        check_weights(tuple(self.weights), "weights")
        _check(
            math.isfinite(self.weight_scale) and self.weight_scale > 0,
            "weight_scale",
            self.weight_scale,
            "a number > 0",
        )
        check_episode_window(self.window_start_utc, self.window_end_utc, self.episode_hours)

    def start_hours(self) -> int:
        """Number of whole hours an episode may start at within the window (1 without a window)."""
        return episode_start_hours(self.window_start_utc, self.window_end_utc, self.episode_hours)


@dataclass(frozen=True)
class ShiftingOnlineConfig:
    """Learning while it schedules: ``batch_policy.online`` of ``learned_shifting``.

    See :mod:`carbonsim.learn.shifting_online`.

    Attributes:
        enabled: Learn during the run from what the run accrues; off: the frozen network (needs no torch).
        update_every_h: Simulated hours between updates (K).
        epsilon: Each item's choice is drawn from the network's softmax mixed with a uniform choice over
            ``explore`` with this weight (exploration a sharp network keeps).
        explore: The uniform choice's set: ``stay``, defer or run where the item's job is (where it runs,
            else its home: exploring never moves a job); ``all``, defer and every region.
        learning_rate: Adam step size.
        epochs: Passes over an update's epochs.
        batch_size: Batch epochs per minibatch.
        clip_range: PPO's clip range of the ratio of new to behaviour probabilities (per item).
        value_coef: Weight of the value head's squared error in the loss.
        max_grad_norm: The gradient's norm is clipped to this (0: not clipped).
        gamma: Discount per batch epoch (as the environment's PPO training discounts its steps).
        gae_lambda: lambda of the generalised advantage estimate.
        max_samples: At most this many of the most recent batch epochs enter an update.
        torch_threads: Threads torch may use (0: leave torch's setting alone).
        save_to: After every update, write the network there (``.npz``, atomically; empty: nowhere).
    """

    enabled: bool = False
    update_every_h: float = 6.0
    epsilon: float = 0.05
    explore: str = "stay"
    learning_rate: float = 1e-4
    epochs: int = 4
    batch_size: int = 32
    clip_range: float = 0.2
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    gamma: float = 0.999
    gae_lambda: float = 0.95
    max_samples: int = 4096
    torch_threads: int = 1
    save_to: str = ""

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), "enabled", self.enabled, "true or false")
        for name in ("update_every_h", "learning_rate", "clip_range"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, name, value, "a positive number")
        for name in ("epochs", "batch_size", "max_samples"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, name, value, "an integer >= 1")
        for name in ("value_coef", "max_grad_norm"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, name, value, "a number >= 0")
        _check(0 <= self.epsilon < 1, "epsilon", self.epsilon, "a fraction in [0, 1)")
        _check(self.explore in ("stay", "all"), "explore", self.explore, "stay or all")
        _check(0 < self.gamma <= 1, "gamma", self.gamma, "a discount in (0, 1]")
        _check(0 <= self.gae_lambda <= 1, "gae_lambda", self.gae_lambda, "a number in [0, 1]")
        _check(
            isinstance(self.torch_threads, int) and self.torch_threads >= 0,
            "torch_threads",
            self.torch_threads,
            "an integer >= 0",
        )
        _check(
            not self.save_to or self.save_to.endswith(".npz"),
            "save_to",
            self.save_to,
            "the path of a .npz file (or empty)",
        )


@dataclass(frozen=True)
class ShiftingModelConfig:
    """Size of the network.

    Attributes:
        width: Embedding width.
        heads: Attention heads (divides ``width``).
        layers: Blocks.
        inducing: Learned queries that summarise the items.
        ffn: Hidden units of the feed-forward layers.
        forecasts: Read the forecast columns of the region tokens and of the item x region pairs (false:
            they are zeroed inside the network, in training and at run time alike: the "no forecasts"
            ablation, which sees only the intensity now).
        backbone: ``scratch``: every weight at random. ``minilm``: block i's attentions, feed-forward layers
            and LayerNorms start from layer i of the pre-trained all-MiniLM-L6-v2 encoder (so ``layers`` <= 6,
            and the LayerNorms use its epsilon, 1e-12); embeddings, summary queries and heads at random.
            Its sizes are MiniLM's: ``width`` 384, ``heads`` 12, ``ffn`` 1536. Left at the scratch defaults
            (32, 2, 64), they become these, so ``model.backbone=minilm`` alone is enough; other values are
            an error.
    """

    width: int = 32
    heads: int = 2
    layers: int = 2
    inducing: int = 4
    ffn: int = 64
    forecasts: bool = True
    backbone: str = "scratch"

    @property
    def layer_norm_eps(self) -> float:
        """The LayerNorms' epsilon (the backbone's)."""
        return LAYER_NORM_EPS[self.backbone]

    def __post_init__(self) -> None:
        for name in ("width", "heads", "layers", "inducing", "ffn"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.forecasts, bool):
            raise ConfigError(f"forecasts: expected true or false, got {self.forecasts!r}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone: expected one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.backbone == "minilm":
            for name, scratch, minilm in (
                ("width", 32, MINILM_WIDTH),
                ("heads", 2, MINILM_HEADS),
                ("ffn", 64, MINILM_FFN),
            ):
                value = getattr(self, name)
                if value == scratch:  # left at the scratch default: MiniLM's size
                    object.__setattr__(self, name, minilm)
                elif value != minilm:
                    raise ConfigError(f"{name}: expected {minilm} (MiniLM's) with backbone minilm, got {value}")
            if self.layers > MINILM_LAYERS:
                most = f"at most {MINILM_LAYERS} (MiniLM's layers)"
                raise ConfigError(f"layers: expected {most} with backbone minilm, got {self.layers}")
        if self.width % self.heads:
            raise ConfigError(f"heads: expected a divisor of width {self.width}, got {self.heads}")


@dataclass(frozen=True)
class TeacherConfig:
    """A teacher of the imitation stage and the weights its demonstrations are labelled with.

    Attributes:
        policy: The batch policy (a mapping with a ``name``, as ``batch_policy`` takes).
        weights: [alpha, beta, gamma] written into the weights token of its demonstrations: the operating
            point it stands for (a carbon-aware teacher at a high alpha, carbon_agnostic at a low one), so
            that the network learns from the start that the weights move its choices.
    """

    policy: dict[str, Any] = field(default_factory=lambda: {"name": "pcaps"})
    weights: tuple[float, ...] = (2.5, 0.5, 0.0)

    def __post_init__(self) -> None:
        _check("name" in self.policy, "policy", self.policy, "a batch policy mapping with a name")
        check_weights(tuple(self.weights), "weights")
        _check(len(self.weights) == 3, "weights", list(self.weights), "[alpha, beta, gamma]")


def _default_teachers() -> tuple[TeacherConfig, ...]:
    return (
        TeacherConfig({"name": "casper_batch"}, (2.5, 0.5, 0.0)),
        TeacherConfig({"name": "carbon_agnostic"}, (0.1, 2.8, 0.1)),
    )


@dataclass(frozen=True)
class TrainShiftingConfig:
    """``experiments/train_shifting.py``: imitation of teachers, then PPO in Shifting-v0, then selection.

    The defaults are those of ``conf/train_shifting.yaml`` (the GPU-training recipe of docs/learning_shifting.md).

    Attributes:
        seed: Root seed (windows, initialisation, minibatches, environments).
        model: The network.
        init_checkpoint: Start from this network (``shifting.npz``: resume) instead of a new one.
        teachers: Imitation teachers (empty, or ``imitation_steps: 0``: no imitation).
        imitation_windows: Training windows (``env.episode_hours`` each) per teacher.
        relabel: 0: each teacher's demonstrations carry its own ``weights``. k > 0: every teacher runs on
            the same windows and, per window, k weightings are drawn as the environment draws them (or
            ``env.weights`` if fixed: a fixed-weight model); each takes the demonstrations of the teacher
            whose run is best at that weighting (lowest alpha carbon + beta lateness + gamma cost), labelled
            with it, so the network learns which behaviour each operating point calls for.
        imitation_keep: Share of a teacher's epochs recorded.
        imitation_steps: Adam steps of behaviour cloning.
        imitation_batch: Epochs per step.
        imitation_lr: Its learning rate.
        env: The PPO environment and the training window (imitation draws its windows from it too).
        ppo_timesteps: PPO environment steps (0: no PPO).
        n_envs: Vectorised environments.
        subprocess: Run them in subprocesses (else in this process, one after the other).
        n_steps: Steps per environment per PPO rollout.
        batch_size: PPO minibatch size.
        n_epochs: PPO epochs per rollout.
        learning_rate: PPO step size.
        gamma: PPO discount per epoch (steps are short: an hour has thousands on dag_tpch).
        ent_coef: PPO entropy bonus.
        select_starts: Selection windows (ISO UTC hours, from 2023) on which the imitation-only and the PPO
            network are compared; the better by the reward at ``select_weights`` is written.
        select_hours: Arrival window of each selection run in hours.
        select_weights: The operating point of the selection and the checkpoint's default weights.
        torch_threads: Threads torch may use.
        out_dir: Output folder; empty: the Hydra run folder.
    """

    seed: int = 0
    model: ShiftingModelConfig = field(default_factory=ShiftingModelConfig)
    init_checkpoint: str = ""
    teachers: tuple[TeacherConfig, ...] = field(default_factory=_default_teachers)
    imitation_windows: int = 30
    relabel: int = 4
    imitation_keep: float = 0.5
    imitation_steps: int = 3000
    imitation_batch: int = 32
    imitation_lr: float = 3e-3
    env: ShiftingEnvConfig = field(
        default_factory=lambda: ShiftingEnvConfig(
            scenario="gpu_training",
            window_start_utc="2021-01-01T00:00:00Z",
            window_end_utc="2023-01-01T00:00:00Z",
            episode_hours=6.0,
            max_items=32,
            max_drain_hours=72.0,
        )
    )
    ppo_timesteps: int = 4096
    n_envs: int = 2
    subprocess: bool = False
    n_steps: int = 256
    batch_size: int = 64
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.999
    ent_coef: float = 0.0
    select_starts: tuple[str, ...] = ("2023-03-06T00:00:00Z", "2023-09-04T12:00:00Z")
    select_hours: float = 12.0
    select_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    torch_threads: int = 1
    out_dir: str = ""

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "torch_threads", "imitation_batch"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        for name in ("imitation_windows", "imitation_steps", "ppo_timesteps", "relabel"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "an integer >= 0")
        _check(0 < self.imitation_keep <= 1, "imitation_keep", self.imitation_keep, "a share in (0, 1]")
        _check(self.imitation_lr > 0, "imitation_lr", self.imitation_lr, "a positive step size")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive step size")
        _check(0 < self.gamma <= 1, "gamma", self.gamma, "a discount in (0, 1]")
        _check(self.ent_coef >= 0, "ent_coef", self.ent_coef, "a number >= 0")
        _check(self.select_hours > 0, "select_hours", self.select_hours, "a positive number of hours")
        for i, start in enumerate(self.select_starts):
            parse_utc_hour(start, f"select_starts[{i}]")
        check_weights(tuple(self.select_weights), "select_weights")
        _check(len(self.select_weights) == 3, "select_weights", list(self.select_weights), "[alpha, beta, gamma]")
        if (self.imitation_steps and self.teachers) or self.ppo_timesteps:
            _check(
                bool(self.env.window_start_utc),
                "env.window_start_utc",
                self.env.window_start_utc,
                "a training window (imitation and PPO draw their episodes from it)",
            )


__all__ = [
    "BACKBONES",
    "LAYER_NORM_EPS",
    "MAX_ITEMS",
    "MINILM_FFN",
    "MINILM_HEADS",
    "MINILM_LAYERS",
    "MINILM_WIDTH",
    "ShiftingEnvConfig",
    "ShiftingModelConfig",
    "ShiftingOnlineConfig",
    "TeacherConfig",
    "TrainShiftingConfig",
    "check_weights",
]
