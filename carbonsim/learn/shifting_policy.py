"""``batch_policy=learned_shifting`` and the ``learned`` base scheduler of PCAPS/CAP: the shifting network at work.

:class:`LearnedShifting` reads the epoch (:mod:`carbonsim.learn.shifting_features`), runs the network
(:mod:`carbonsim.learn.shifting_model`) and, for every runnable item, takes the most likely of "defer" and
the regions (or samples, ``sample: true``, from the policy's own random stream); the deadline guard then
starts what must start (:func:`carbonsim.learn.shifting_features.decisions`). The operator's priorities
``weights: [alpha, beta, gamma]`` are inputs of the network: the same checkpoint serves any weighting.
With ``decode: capacity`` the most likely choices are read under the clusters' free capacity instead of per
item (:mod:`carbonsim.learn.shifting_decode`).

:class:`LearnedScorer` (``batch_policy.base=learned``) gives PCAPS or CAP the network's importance logits
over the runnable stages (issue 17's "a learned scheduler that exposes probabilities" as PCAPS's base).

With ``online.enabled`` :class:`LearnedShifting` keeps learning during the run: it samples its choices, reads
what the run accrues and updates its network every ``online.update_every_h`` simulated hours
(:mod:`carbonsim.learn.shifting_online`; needs torch).

Both run the network in NumPy (:class:`~carbonsim.learn.shifting_numpy.ShiftingNumpy`): running them from a
checkpoint needs no torch (torch trains the network, :mod:`carbonsim.learn.shifting_model`). Given a torch
network instead (training and selection pass their own), :class:`LearnedShifting` takes a NumPy snapshot of
its weights when it is built: later training steps do not reach that policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import BatchPolicyConfig
from carbonsim.core.jobs import Decision, JobContext, JobView
from carbonsim.learn.checkpoint import CheckpointError
from carbonsim.learn.shifting_config import ShiftingOnlineConfig, check_weights
from carbonsim.learn.shifting_decode import capacity_choices
from carbonsim.learn.shifting_features import (
    decisions,
    global_features,
    item_features,
    pair_features,
    region_features,
)
from carbonsim.learn.shifting_numpy import ShiftingNumpy
from carbonsim.policies.registry import register_batch
from carbonsim.policies.scorers import StageSchedulerConfig, register_scorer

if TYPE_CHECKING:
    from carbonsim.learn.shifting_model import ShiftingNet
    from carbonsim.learn.shifting_online import OnlineShiftingLearner

#: How to install what learning during the run needs.
TORCH_HINT = 'pip install torch==2.13.0 && pip install ".[rl]"'

#: Weights when neither the config nor the checkpoint gives any.
DEFAULT_WEIGHTS = (1.0, 1.0, 1.0)
#: Values of ``LearnedShiftingConfig.decode``.
DECODES = ("independent", "capacity")


def load_network(path: str, field: str) -> tuple[ShiftingNumpy, dict[str, Any]]:
    """The network of checkpoint ``path`` (NumPy inference) and its header, or a ConfigError naming ``field``."""
    if not path:
        raise ConfigError(f"{field}: expected the path of a trained shifting network (shifting.npz), got ''")
    try:
        return ShiftingNumpy.load(Path(path))
    except CheckpointError as exc:
        raise ConfigError(f"{field}: {exc}") from None


def weights_of(configured: tuple[float, ...], header: dict[str, Any]) -> tuple[float, float, float]:
    """The configured weights, else the checkpoint's ``selected_weights``, else 1, 1, 1."""
    w = tuple(configured) or tuple(header.get("selected_weights", DEFAULT_WEIGHTS))
    return (float(w[0]), float(w[1]), float(w[2]))


def epoch_inputs(
    view: JobView, context: JobContext, weights: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The network's inputs for one epoch: items, pairs (n, R, PAIR_FEATURES), regions, globals."""
    items, home, current = item_features(view)
    pairs = pair_features(view, home, current, len(context.region_names))
    return items, pairs, region_features(view, context), global_features(view, weights, items.shape[0])


@dataclass(frozen=True)
class LearnedShiftingConfig(BatchPolicyConfig):
    """Parameters of :class:`LearnedShifting`.

    Attributes:
        name: ``learned_shifting``.
        checkpoint: The network (``shifting.npz`` written by ``experiments/train_shifting.py``).
        weights: The operator's priorities [alpha, beta, gamma]: per kg CO2eq, per job-hour late, per USD
            (empty: those the checkpoint was selected at).
        sample: Sample each item's choice from the network's softmax (the policy's random stream) instead of
            taking the most likely.
        blas_threads: Threads NumPy's BLAS may use while the network runs (0: NumPy's setting); one is the
            fastest for these thin products, and far faster on a busy machine.
        online: Learning during the run (off: the frozen network).
        decode: How the greedy choices are read from the logits: ``independent``, each item its most likely
            choice; ``capacity``, the most confident items first, each its most likely choice that fits the
            free capacity left (:mod:`carbonsim.learn.shifting_decode`). ``capacity`` needs ``sample: false``
            and ``online.enabled: false``.
    """

    name: str = "learned_shifting"
    checkpoint: str = ""
    weights: tuple[float, ...] = ()
    sample: bool = False
    blas_threads: int = 1
    online: ShiftingOnlineConfig = field(default_factory=ShiftingOnlineConfig)
    decode: str = "independent"

    def __post_init__(self) -> None:
        check_weights(tuple(self.weights), "weights")
        if self.blas_threads < 0:
            raise ConfigError(f"blas_threads: expected a number of threads >= 0, got {self.blas_threads!r}")
        if self.decode not in DECODES:
            raise ConfigError(f"decode: expected one of {', '.join(DECODES)}, got {self.decode!r}")
        if self.decode == "capacity" and (self.sample or self.online.enabled):
            raise ConfigError(
                "decode: 'capacity' decodes the most likely choices; expected sample: false and online.enabled: false"
            )


@register_batch("learned_shifting", LearnedShiftingConfig)
class LearnedShifting:
    """Defers or places every runnable item with the shifting network (see the module docstring).

    Args:
        config: The policy's parameters.
        model: A network to use instead of reading ``config.checkpoint`` (training and tests pass their own): a
            NumPy one, or a torch :class:`~carbonsim.learn.shifting_model.ShiftingNet`, whose weights are
            copied now (a snapshot: later changes to it do not reach this policy).

    With ``online.enabled`` the policy learns during the run (:mod:`carbonsim.learn.shifting_online`) from a
    torch copy of the network (read from ``config.checkpoint``, or of ``model`` if that is a torch network;
    a NumPy network cannot learn), which persists across the runs of this instance.

    Attributes:
        forced: Items the deadline guard started against the network's choice so far.
        learner: The online learner (None when frozen).
    """

    def __init__(self, config: LearnedShiftingConfig, model: ShiftingNumpy | ShiftingNet | None = None) -> None:
        self.config = config
        header: dict[str, Any] = {}
        self.learner: OnlineShiftingLearner | None = None
        if config.online.enabled:
            model, header = self._learning_network(model)
        elif model is None:
            model, header = load_network(config.checkpoint, "batch_policy.checkpoint")
        elif not isinstance(model, ShiftingNumpy):
            from carbonsim.learn.shifting_model import to_numpy  # torch is loaded: model is a torch network

            model = to_numpy(model)
        self.model: ShiftingNumpy = model
        self.weights = weights_of(tuple(config.weights), header)
        self.context: JobContext | None = None
        self.forced = 0
        self._rng: np.random.Generator | None = None

    def _learning_network(self, model: ShiftingNumpy | ShiftingNet | None) -> tuple[ShiftingNumpy, dict[str, Any]]:
        """The torch network online learning updates (a copy) and its NumPy snapshot; the header."""
        field_ = "batch_policy.online.enabled"
        try:
            import torch

            from carbonsim.learn import shifting_model as sm
        except ImportError as exc:
            raise ConfigError(f"{field_}: learning during the run needs torch ({exc}); install: {TORCH_HINT}") from None
        header: dict[str, Any] = {}
        if model is None:
            if not self.config.checkpoint:
                load_network("", "batch_policy.checkpoint")  # its message
            try:
                net, header = sm.load(Path(self.config.checkpoint))
            except CheckpointError as exc:
                raise ConfigError(f"batch_policy.checkpoint: {exc}") from None
        elif isinstance(model, ShiftingNumpy):
            raise ConfigError(
                f"{field_}: learning needs the torch network; give batch_policy.checkpoint, not a NumPy network"
            )
        else:
            import copy

            net = copy.deepcopy(model)
        online = self.config.online
        if online.torch_threads:
            torch.set_num_threads(online.torch_threads)
        self._torch_net = net
        self._header = header
        return sm.to_numpy(net), header

    def reset(self, context: JobContext) -> None:
        """Keeps the static facts; with online learning, splits the policy's stream and starts a run."""
        self.context = context
        self.forced = 0
        if self.config.online.enabled:
            from carbonsim.learn.shifting_online import OnlineShiftingLearner

            sample_rng, learn_rng = context.rng.spawn(2)
            self._rng = sample_rng
            if self.learner is None:
                self.learner = OnlineShiftingLearner(self._torch_net, self.config.online, self.weights, learn_rng)
            else:
                self.learner.rng = learn_rng
            self.learner.start_run()

    def choices(self, view: JobView) -> np.ndarray:
        """Per row of ``view.stages``: -1 (defer) or a region."""
        assert self.context is not None, "reset() first"
        inputs = epoch_inputs(view, self.context, self.weights)
        if self.learner is not None:
            return self._learn_and_choose(view, inputs)
        logits, _ = self.model.decide(*inputs, blas_threads=self.config.blas_threads)
        if self.config.sample:
            z = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            u = self.context.rng.random(p.shape[0])
            pick = (np.cumsum(p, axis=1) < u[:, None]).sum(axis=1)
            return np.asarray(np.minimum(pick, p.shape[1] - 1) - 1, dtype=np.int64)
        if self.config.decode == "capacity":
            return capacity_choices(view, logits)
        return np.asarray(logits.argmax(axis=1) - 1, dtype=np.int64)

    def _learn_and_choose(
        self, view: JobView, inputs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Credits the previous epoch, updates if due, samples this epoch's choices and records them."""
        from carbonsim.learn.shifting_online import explore_set, mixture

        learner, rng = self.learner, self._rng
        assert learner is not None and rng is not None
        if learner.observe(view.now_s, view.accrual) and learner.update(inputs):
            self.model = learner.snapshot()
        logits, _ = self.model.decide(*inputs, blas_threads=self.config.blas_threads)
        explore = explore_set(inputs[1], self.config.online.explore)
        p = mixture(logits, self.config.online.epsilon, explore)
        u = np.asarray(rng.random(p.shape[0]))
        pick = np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)
        logp = np.log(np.maximum(p[np.arange(p.shape[0]), pick], 1e-300))
        learner.record(inputs, pick, logp, explore)
        return np.asarray(pick - 1, dtype=np.int64)

    def schedule(self, view: JobView) -> Mapping[Any, Decision]:
        """The network's choices under the deadline guard."""
        if not len(view.stages):
            return {}
        out, forced = decisions(view, self.choices(view), self.context)
        self.forced += forced
        return out

    def stats(self) -> dict[str, float]:
        """Items forced by the deadline guard; with online learning, the learner's figures.

        ``online_updates`` (so far), ``online_samples`` (epochs the updates used), ``online_epochs`` (epochs
        recorded), ``online_discarded`` (beyond ``max_samples``), and of the current run: ``online_return``
        (sum of its epochs' rewards, the last one's up to now) and ``online_mean_reward`` (per epoch).
        """
        out = {"deadline_forced": float(self.forced)}
        learner = self.learner
        if learner is not None:
            rewards = learner.run_rewards()
            out.update(
                online_updates=float(learner.updates),
                online_samples=float(learner.samples),
                online_epochs=float(learner.epochs_seen),
                online_discarded=float(learner.discarded),
                online_return=float(sum(rewards)),
                online_mean_reward=float(np.mean(rewards)) if rewards else 0.0,
            )
        return out


@register_scorer("learned")
class LearnedScorer:
    """The network's importance logits over the runnable stages (a PCAPS/CAP base scheduler)."""

    def __init__(self, cfg: StageSchedulerConfig) -> None:
        self.model, header = load_network(cfg.checkpoint, "batch_policy.checkpoint")
        self.weights = weights_of(tuple(cfg.weights), header)
        self.context: JobContext | None = None

    def reset(self, context: JobContext) -> None:
        """Keeps the static facts."""
        self.context = context

    def logits(self, view: JobView) -> np.ndarray:
        """One importance logit per row of ``view.stages``."""
        assert self.context is not None, "reset() first"
        if not len(view.stages):
            return np.zeros(0)
        _, importance = self.model.decide(*epoch_inputs(view, self.context, self.weights))
        return np.asarray(importance, dtype=np.float64)


__all__ = ["LearnedScorer", "LearnedShifting", "LearnedShiftingConfig", "epoch_inputs", "load_network"]
