"""``policy=ppo``: a routing policy trained by reinforcement learning, loaded from a safe checkpoint.

``experiments/train_ppo.py`` trains a stable-baselines3 PPO agent in ``carbonsim/Routing-v0`` and exports
its policy network (:mod:`carbonsim.learn.checkpoint`). Here that network runs in NumPy on the same
observation the environment gave it (:mod:`carbonsim.learn.features`) and routes each request to the
region with the largest logit (the agent's greedy action). A checkpoint fits only scenarios with the
regions and workloads it was trained on, in the same order; anything else is refused with the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import PolicyConfig
from carbonsim.core.view import DecisionView, PolicyContext
from carbonsim.learn import checkpoint as ckpt
from carbonsim.learn.config import FeatureConfig, RewardConfig
from carbonsim.learn.features import FeatureBuilder, feature_size
from carbonsim.policies.base import BasePolicy
from carbonsim.policies.registry import register


@dataclass(frozen=True)
class LearnedPolicyConfig(PolicyConfig):
    """Parameters of :class:`LearnedPolicy`.

    Attributes:
        checkpoint: Path of the policy checkpoint (``policy.npz`` written by ``experiments/train_ppo.py``).
    """

    name: str = "ppo"
    checkpoint: str = ""


def greedy_choice(logits: np.ndarray, available: Sequence[bool]) -> tuple[int, bool]:
    """The available region with the largest logit, and whether a logit overflowed (was not finite).

    A network whose weights are far too large computes infinite or NaN logits; ``np.argmax`` would then pick
    the first NaN, i.e. some fixed region, without a word. Here NaN never wins (+inf does), the choice falls
    back to the first available region if nothing finite is left, and the overflow is reported so that the
    policy can count it (``policy_nonfinite_decisions`` in the summary, and a warning).

    Args:
        logits: One score per region.
        available: Whether each region can take the request (all false: every region counts).
    """
    scores = np.asarray(logits, dtype=np.float64)
    mask = np.asarray(available, dtype=bool)
    if not mask.any():
        mask = np.ones(scores.size, dtype=bool)
    overflow = not bool(np.isfinite(scores[mask]).all())
    masked = np.where(mask & ~np.isnan(scores), scores, -np.inf)
    if overflow and np.isneginf(masked).all():
        return int(np.argmax(mask)), overflow
    return int(np.argmax(masked)), overflow


@register("ppo", LearnedPolicyConfig)
class LearnedPolicy(BasePolicy):
    """Routes with a trained policy network (greedy action)."""

    config: LearnedPolicyConfig

    def __init__(self, config: LearnedPolicyConfig) -> None:
        super().__init__(config)
        self.config = config
        if not config.checkpoint:
            raise ConfigError("policy.checkpoint: expected the path of a trained policy (policy.npz), got ''")
        try:
            self.network = ckpt.load(Path(config.checkpoint))
        except ckpt.CheckpointError as exc:
            raise ConfigError(f"policy.checkpoint: {exc}") from None
        meta = self.network.meta
        try:
            self.features = FeatureConfig(**meta["features"])
            self.reward = RewardConfig(**meta.get("reward", {}))
        except (TypeError, ConfigError) as exc:
            raise ConfigError(f"policy.checkpoint: {config.checkpoint}: header 'features'/'reward': {exc}") from None
        self._builder: FeatureBuilder | None = None
        self.nonfinite_decisions = 0

    def reset(self, context: PolicyContext) -> None:
        """Checks that the scenario is the one the network was trained for and prepares the features."""
        super().reset(context)
        meta = self.network.meta
        for key, names in (("regions", context.region_names), ("workloads", context.workload_names)):
            if list(meta[key]) != list(names):
                raise ConfigError(
                    f"policy.checkpoint: {self.config.checkpoint} was trained for {key} {list(meta[key])}, "
                    f"the scenario has {list(names)}"
                )
        size = feature_size(context.n_regions, len(context.workload_names), self.features)
        if (self.network.obs_size, self.network.n_actions) != (size, context.n_regions):
            raise ConfigError(
                f"policy.checkpoint: {self.config.checkpoint} maps {self.network.obs_size} features to "
                f"{self.network.n_actions} actions; this scenario needs {size} to {context.n_regions}"
            )
        self._builder = FeatureBuilder(context, self.features)
        self._builder.set_reward(self.reward)
        self.nonfinite_decisions = 0

    def decide(self, view: DecisionView) -> int:
        """The available region with the largest logit."""
        assert self._builder is not None, "reset() first"
        obs = self._builder.build(view)
        with np.errstate(over="ignore", invalid="ignore"):
            logits = self.network.logits(obs)
        choice, overflow = greedy_choice(logits, view.available)
        self.nonfinite_decisions += overflow
        return choice

    def stats(self) -> dict[str, float]:
        """Decisions whose logits were not all finite (weights so large that the network overflows), if any."""
        return {"nonfinite_decisions": float(self.nonfinite_decisions)} if self.nonfinite_decisions else {}
