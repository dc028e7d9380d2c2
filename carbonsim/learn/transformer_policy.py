"""``policy=transformer``: the transformer ("LLM-driven") scheduler, loaded from a safe checkpoint.

The network (:mod:`carbonsim.learn.transformer`) reads the state as tokens, one per candidate region plus
the request, the time and "defer" (:mod:`carbonsim.learn.tokens`), and a pointer head scores the region
tokens: the same checkpoint routes over any number of regions, including region sets it never saw.
Requests are not deferrable in this simulator, so the defer token is scored but never chosen.

Frozen (the default), the policy routes each request to the region with the highest score. With
``online.enabled`` it keeps learning while it routes (:mod:`carbonsim.learn.online`): it samples its
actions, reads the outcomes of its own decisions and updates itself every ``online.update_every_h``
simulated hours. The same policy object may serve several runs in a row (the drift experiment does): its
weights and its learning state carry over.

Needs torch and transformers (extra ``llm``); they are imported when the policy is built, so the rest of
carbonsim works without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import PolicyConfig
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.learn.config import OnlineConfig
from carbonsim.learn.learned_policy import greedy_choice
from carbonsim.policies.base import BasePolicy
from carbonsim.policies.registry import register

if TYPE_CHECKING:
    from carbonsim.learn.online import OnlineLearner
    from carbonsim.learn.tokens import TokenBuilder
    from carbonsim.learn.transformer import PointerTransformer

INSTALL_HINT = 'pip install torch==2.13.0 && pip install ".[llm]"'


@dataclass(frozen=True)
class TransformerPolicyConfig(PolicyConfig):
    """Parameters of :class:`TransformerPolicy`.

    Attributes:
        checkpoint: Path of the network (``transformer.safetensors`` written by
            ``experiments/train_transformer.py``).
        torch_threads: Threads torch may use (0: leave torch's setting alone).
        online: Continuous learning while routing (off: a frozen, greedy policy).
    """

    name: str = "transformer"
    checkpoint: str = ""
    torch_threads: int = 1
    online: OnlineConfig = field(default_factory=OnlineConfig)

    def __post_init__(self) -> None:
        if self.torch_threads < 0:
            raise ConfigError(f"torch_threads: expected a number of threads >= 0, got {self.torch_threads!r}")


def import_torch() -> Any:
    """torch, or an ImportError saying which extra to install."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"policy=transformer needs torch and transformers ({exc}); install: {INSTALL_HINT}") from exc
    return torch


@register("transformer", TransformerPolicyConfig)
class TransformerPolicy(BasePolicy):
    """Routes with the transformer network; optionally keeps learning from its own outcomes.

    Args:
        config: The policy's parameters.
        model: A network to use instead of reading ``config.checkpoint`` (training code passes its own).
    """

    config: TransformerPolicyConfig

    def __init__(self, config: TransformerPolicyConfig, model: PointerTransformer | None = None) -> None:
        super().__init__(config)
        self.config = config
        self.torch = import_torch()
        from carbonsim.learn import transformer as tf

        if config.torch_threads:
            self.torch.set_num_threads(config.torch_threads)
        if model is None:
            if not config.checkpoint:
                raise ConfigError(
                    "policy.checkpoint: expected the path of a trained network (transformer.safetensors), got ''"
                )
            try:
                model, _ = tf.load(Path(config.checkpoint))
            except tf.CheckpointError as exc:
                raise ConfigError(f"policy.checkpoint: {exc}") from None
        self.model = model
        self._builder: TokenBuilder | None = None
        self._learner: OnlineLearner | None = None
        self._since_update_s = 0.0
        self._last_plan_s = 0.0
        self._marginal_w: tuple[float, ...] = ()
        self._pue: tuple[float, ...] = ()
        self.nonfinite_decisions = 0

    def reset(self, context: PolicyContext) -> None:
        """Prepares the tokens for this run's regions; a learning policy keeps what it has learned."""
        from carbonsim.learn.online import OnlineLearner
        from carbonsim.learn.tokens import TokenBuilder

        previous = self.context
        super().reset(context)
        if previous is not None:
            # The previous run's arrival window after its last planning call counts as deployment time too.
            self._since_update_s += max(previous.horizon_s - self._last_plan_s, 0.0)
        self._builder = TokenBuilder(context, self.model.config.features)
        online = self.config.online
        if online.enabled:
            if context.outcomes is None:
                raise ValueError("policy transformer with online learning needs the simulator's outcomes")
            if self._learner is None:
                self._learner = OnlineLearner(self.model, online, context.rng)
            else:
                self._learner.rng = context.rng
            self._learner.start_run(context.outcomes)
        self._last_plan_s = 0.0
        self.nonfinite_decisions = 0
        self._marginal_w = tuple(b - i for b, i in zip(context.busy_w, context.idle_w, strict=True))
        self._pue = context.pue

    def plan(self, view: PlanView) -> None:
        """Counts simulated time and, every ``online.update_every_h`` hours, updates the network."""
        if self._learner is None:
            return
        self._since_update_s += view.now_s - self._last_plan_s
        self._last_plan_s = view.now_s
        if self._since_update_s >= self.config.online.update_every_h * 3600.0 - 1e-9:
            self._since_update_s = 0.0
            self._learner.update()

    def decide(self, view: DecisionView) -> int:
        """The best-scored region (frozen), or a sample from the exploring softmax (learning)."""
        builder = self._builder
        assert builder is not None, "reset() first"
        tokens = builder.build(view)
        logits = self.model.region_logits(tokens)
        available = view.available
        greedy, overflow = greedy_choice(logits, available)
        self.nonfinite_decisions += overflow
        if overflow:
            logits = np.where(np.arange(len(logits)) == greedy, 0.0, -np.inf)  # no softmax over NaN
        if not all(available) and any(available):
            # Regions that cannot take the request are masked out of the pointer's choice.
            logits = np.where(np.asarray(available), logits, -np.inf)
        learner = self._learner
        if learner is None:
            return greedy
        online = self.config.online
        z = logits.astype(np.float64) / online.temperature
        z -= z.max()
        p = np.exp(z)
        p *= (1.0 - online.epsilon) / p.sum()
        if online.explore == "feasible":
            slo = view.slo_ms
            explore = np.array([lat <= slo for lat in view.predicted_latency_ms("mean", True)])
        else:
            explore = np.asarray(available)
        n_explore = int(explore.sum())
        p += online.epsilon / n_explore * explore if n_explore else online.epsilon / len(p)
        action = min(int(np.searchsorted(np.cumsum(p), learner.rng.random(), side="right")), len(p) - 1)
        intensity = view.intensity_gco2_per_kwh[action]
        learner.record(
            view.request_id,
            tokens,
            action,
            math.log(max(float(p[action]), 1e-30)),
            intensity * self._pue[action] / 3.6e6,
            view.price_usd_per_kwh[action] * self._pue[action] / 3.6e6,
            self._marginal_w[action],
            view.slo_ms,
        )
        return action

    def stats(self) -> dict[str, float]:
        """Learning counters (cumulative over the runs this policy has served)."""
        # Present only when it happened (the summary's keys stay those of a sound network otherwise).
        counts = {"nonfinite_decisions": float(self.nonfinite_decisions)} if self.nonfinite_decisions else {}
        if self._learner is None:
            return counts
        return {
            **counts,
            "online_updates": float(self._learner.updates),
            "online_samples": float(self._learner.samples_used),
            "online_decisions": float(self._learner.decisions),
            "online_discarded": float(self._learner.discarded),
            "online_unresolved": float(self._learner.unresolved),
            "online_waiting": float(self._learner.waiting),
        }


__all__ = ["TransformerPolicy", "TransformerPolicyConfig"]
