"""Imitation for the learned shifting scheduler: record a teacher's choices per item, fit the network to them.

A teacher is any batch policy (PCAPS, the CASPER batch analogue, ...). :class:`Recorder` runs it in an
ordinary simulation and keeps, at each epoch, the network's inputs
(:func:`carbonsim.learn.shifting_policy.epoch_inputs`) and the teacher's choice per item
(:func:`carbonsim.learn.shifting_features.choices_of`: defer, or the region of its job). :func:`fit`
minimises the cross-entropy of those choices under the network's per-item softmax (behaviour cloning), over
padded batches of epochs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

from carbonsim.config import BatchPolicyConfig, RunConfig
from carbonsim.core.jobs import BatchPolicy, Decision, JobContext, JobView
from carbonsim.core.simulation import SimResult
from carbonsim.learn.shifting_features import choices_of, set_weights
from carbonsim.learn.shifting_model import ShiftingNet
from carbonsim.learn.shifting_policy import epoch_inputs
from carbonsim.policies import make_batch_policy


class Epoch(NamedTuple):
    """One recorded epoch: the network's inputs and the teacher's choices (-1 defer, else a region)."""

    items: np.ndarray
    pairs: np.ndarray
    regions: np.ndarray
    globals_: np.ndarray
    choices: np.ndarray


class Recorder:
    """A batch policy that runs ``teacher`` and records its epochs (a share ``keep`` of them, at random).

    Args:
        teacher: The batch policy imitated.
        weights: The weights written into the recorded global token (the teacher's operating point).
        keep: Probability of recording an epoch.
        rng: Draws which epochs are kept.
        max_items: Epochs with more items keep their first ``max_items`` (in the view's order).
    """

    def __init__(
        self,
        teacher: BatchPolicy,
        weights: tuple[float, float, float],
        keep: float,
        rng: np.random.Generator,
        max_items: int = 256,
    ) -> None:
        self.teacher = teacher
        self.weights = weights
        self.keep = keep
        self.rng = rng
        self.max_items = max_items
        self.epochs: list[Epoch] = []
        self.context: JobContext | None = None

    def reset(self, context: JobContext) -> None:
        """Resets the teacher."""
        self.context = context
        self.teacher.reset(context)

    def schedule(self, view: JobView) -> Mapping[Any, Decision]:
        """The teacher's decisions (recorded with probability ``keep``)."""
        out = self.teacher.schedule(view)
        if len(view.stages) and self.rng.random() < self.keep:
            assert self.context is not None
            items, pairs, regions, globals_ = epoch_inputs(view, self.context, self.weights)
            k = self.max_items
            choices = choices_of(view, out)
            self.epochs.append(Epoch(items[:k], pairs[:k], regions, globals_, choices[:k]))
        return out


def demonstrate(
    run: RunConfig, teacher: BatchPolicyConfig, weights: tuple[float, float, float], keep: float, seed: int
) -> tuple[list[Epoch], SimResult]:
    """Runs ``teacher`` on ``run`` (its scenario and window, seed ``seed``): its recorded epochs and the run."""
    from carbonsim.policies import make_policy
    from carbonsim.runner import make_simulation, prepare

    cfg = dataclasses.replace(run, seed=seed)
    world, requests, jobs = prepare(cfg)
    recorder = Recorder(make_batch_policy(teacher), weights, keep, np.random.default_rng(seed))
    sim = make_simulation(cfg, world, requests, make_policy(cfg.policy), seed, jobs=jobs, batch_policy=recorder)
    return recorder.epochs, sim.run()


def collect(
    run: RunConfig, teacher: BatchPolicyConfig, weights: tuple[float, float, float], keep: float, seed: int
) -> list[Epoch]:
    """Runs ``teacher`` on ``run`` (its scenario and window, seed ``seed``) and returns its recorded epochs."""
    return demonstrate(run, teacher, weights, keep, seed)[0]


def relabel(epochs: Sequence[Epoch], weights: tuple[float, float, float]) -> list[Epoch]:
    """The same epochs with ``weights`` in their global token (the operating point they now stand for)."""
    return [e._replace(globals_=set_weights(e.globals_.copy(), weights)) for e in epochs]


def best_teacher(scores: Sequence[Mapping[str, float]], weights: tuple[float, float, float]) -> int:
    """Index of the run with the lowest alpha x carbon_kg + beta x lateness_h + gamma x cost_usd (first on ties)."""
    values = [weights[0] * s["carbon_kg"] + weights[1] * s["lateness_h"] + weights[2] * s["cost_usd"] for s in scores]
    return int(np.argmin(values))


def collate(
    epochs: Sequence[Epoch],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pads epochs (same region count) into tensors: items, mask, pairs, regions, globals, targets (-100: pad)."""
    n = max(e.items.shape[0] for e in epochs)
    b, r = len(epochs), epochs[0].regions.shape[0]
    items = np.zeros((b, n, epochs[0].items.shape[1]), dtype=np.float32)
    mask = np.zeros((b, n), dtype=np.float32)
    pairs = np.zeros((b, n, r, epochs[0].pairs.shape[2]), dtype=np.float32)
    targets = np.full((b, n), -100, dtype=np.int64)
    for i, e in enumerate(epochs):
        k = e.items.shape[0]
        items[i, :k] = e.items
        mask[i, :k] = 1.0
        pairs[i, :k] = e.pairs
        targets[i, :k] = e.choices + 1
    regions = np.stack([e.regions for e in epochs])
    globals_ = np.stack([e.globals_ for e in epochs])
    return tuple(torch.from_numpy(a) for a in (items, mask, pairs, regions, globals_, targets))  # type: ignore[return-value]


def loss(model: ShiftingNet, epochs: Sequence[Epoch]) -> torch.Tensor:
    """Mean cross-entropy of the teacher's choices over the real items of ``epochs``."""
    items, mask, pairs, regions, globals_, targets = collate(epochs)
    logits, _, _ = model(items, mask, pairs, regions, globals_)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def agreement(model: ShiftingNet, epochs: Sequence[Epoch]) -> float:
    """Share of items whose most likely choice is the teacher's."""
    hit = total = 0
    with torch.inference_mode():
        for start in range(0, len(epochs), 64):
            items, mask, pairs, regions, globals_, targets = collate(epochs[start : start + 64])
            logits, _, _ = model(items, mask, pairs, regions, globals_)
            real = targets >= 0
            hit += int((logits.argmax(-1) == targets)[real].sum())
            total += int(real.sum())
    return hit / total if total else float("nan")


def fit(
    model: ShiftingNet,
    epochs: Sequence[Epoch],
    steps: int,
    rng: np.random.Generator,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
) -> list[float]:
    """Behaviour cloning: ``steps`` Adam steps on random batches of epochs (grouped by region count)."""
    by_regions: dict[int, list[Epoch]] = {}
    for e in epochs:
        by_regions.setdefault(e.regions.shape[0], []).append(e)
    groups = list(by_regions.values())
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    losses = []
    for _ in range(steps):
        group = groups[int(rng.choice(len(groups), p=sizes / sizes.sum()))]
        pick = rng.choice(len(group), size=min(batch_size, len(group)), replace=False)
        value = loss(model, [group[i] for i in pick.tolist()])
        optimizer.zero_grad()
        value.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(value.detach()))
    model.eval()
    return losses


__all__ = [
    "Epoch",
    "Recorder",
    "agreement",
    "best_teacher",
    "collate",
    "collect",
    "demonstrate",
    "fit",
    "loss",
    "relabel",
]
