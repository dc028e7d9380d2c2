"""Imitation: the transformer scheduler learns a teacher policy's decisions (behaviour cloning).

The teacher (any registered routing policy; constrained_hybrid by default) routes ordinary simulations of
training windows; a wrapper records, at each decision, the state's tokens and the teacher's choice. The
network is then fitted by cross-entropy to predict the teacher's region (Pomerleau 1991's behaviour
cloning, as the first stage of the seed research's "pre-train on history, then fine-tune with PPO"). The
wrapper changes nothing in the run: the teacher sees the same views in the same order as in a CLI run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from carbonsim.config import RunConfig
from carbonsim.core.policy import Policy
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.learn.config import EvalWindow, FeatureConfig, ImitationConfig, RoutingEnvConfig
from carbonsim.learn.evaluation import window_run
from carbonsim.learn.tokens import TokenBuilder
from carbonsim.learn.transformer import PointerTransformer
from carbonsim.policies import make_policy, policy_config
from carbonsim.runner import make_simulation, prepare


@dataclass
class Demonstrations:
    """Recorded decisions: token matrices of one shape and the teacher's actions.

    Attributes:
        tokens: Shape (n, tokens, width), float32.
        actions: The teacher's region per decision, shape (n,).
    """

    tokens: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


class Recorder:
    """A routing policy that lets ``teacher`` decide and records a share of its decisions.

    Args:
        teacher: The policy to imitate.
        features: The tokens' contents.
        keep: Probability of recording a decision (the rest are routed but not kept).
        rng: Decides which decisions are kept (a stream of its own: the teacher's is untouched).
    """

    def __init__(self, teacher: Policy, features: FeatureConfig, keep: float, rng: np.random.Generator) -> None:
        self.teacher = teacher
        self.features = features
        self.keep = keep
        self.rng = rng
        self.tokens: list[np.ndarray] = []
        self.actions: list[int] = []
        self._builder: TokenBuilder | None = None

    def reset(self, context: PolicyContext) -> None:
        """Resets the teacher and prepares the tokens."""
        self.teacher.reset(context)
        self._builder = TokenBuilder(context, self.features)

    def plan(self, view: PlanView) -> None:
        """The teacher plans."""
        self.teacher.plan(view)

    def decide(self, view: DecisionView) -> int:
        """The teacher's decision, recorded with probability ``keep``."""
        action = self.teacher.decide(view)
        if self.rng.random() < self.keep:
            assert self._builder is not None
            self.tokens.append(self._builder.build(view))
            self.actions.append(action)
        return action


def training_windows(env: RoutingEnvConfig, count: int, rng: np.random.Generator) -> list[tuple[EvalWindow, int]]:
    """``count`` windows of ``env.episode_hours`` with random whole-hour starts in the env's window, and seeds."""
    import datetime

    from carbonsim.learn.config import parse_utc_hour

    start = parse_utc_hour(env.window_start_utc, "window_start_utc")
    hours = rng.integers(env.start_hours(), size=count)
    seeds = rng.integers(2**31 - 1, size=count)
    return [
        (
            EvalWindow((start + datetime.timedelta(hours=int(h))).strftime("%Y-%m-%dT%H:00:00Z"), env.episode_hours),
            int(seed),
        )
        for h, seed in zip(hours, seeds, strict=True)
    ]


def collect(
    run: RunConfig,
    env: RoutingEnvConfig,
    teacher: Mapping[str, Any],
    windows: Sequence[tuple[EvalWindow, int]],
    features: FeatureConfig,
    keep: float,
    rng: np.random.Generator,
    log: Callable[[str], None] = print,
) -> Demonstrations:
    """Runs the teacher on every window and returns the recorded decisions."""
    tokens: list[np.ndarray] = []
    actions: list[int] = []
    for k, (window, seed) in enumerate(windows):
        cfg = window_run(run, env, window, seed)
        world, requests, _ = prepare(cfg)
        recorder = Recorder(make_policy(policy_config(dict(teacher))), features, keep, rng)
        make_simulation(cfg, world, requests, recorder, seed).run()
        tokens += recorder.tokens
        actions += recorder.actions
        log(f"window {k + 1}/{len(windows)} from {window.start_utc}: {len(recorder.actions)} decisions kept")
    if not actions:
        raise ValueError("imitation: no decisions recorded; raise keep_fraction, windows or the arrival rate")
    return Demonstrations(np.stack(tokens), np.asarray(actions, dtype=np.int64))


def agreement(model: PointerTransformer, demos: Demonstrations, batch_size: int = 1024) -> float:
    """Share of decisions where the network's best region is the teacher's."""
    hits = 0
    with torch.inference_mode():
        for lo in range(0, len(demos), batch_size):
            logits, _, _ = model(torch.from_numpy(demos.tokens[lo : lo + batch_size]))
            hits += int((logits.argmax(dim=1).numpy() == demos.actions[lo : lo + batch_size]).sum())
    return hits / max(len(demos), 1)


def split(demos: Demonstrations, validation: float, rng: np.random.Generator) -> tuple[Demonstrations, Demonstrations]:
    """A random split into training and validation decisions."""
    order = rng.permutation(len(demos))
    n_val = round(validation * len(demos))
    val, train = order[:n_val], order[n_val:]
    return (
        Demonstrations(demos.tokens[train], demos.actions[train]),
        Demonstrations(demos.tokens[val], demos.actions[val]),
    )


def fit(
    model: PointerTransformer,
    train: Demonstrations,
    val: Demonstrations,
    cfg: ImitationConfig,
    rng: np.random.Generator,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Cross-entropy training towards the teacher's regions; returns one row per epoch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    tokens = torch.from_numpy(train.tokens)
    actions = torch.from_numpy(train.actions)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        total, batches = 0.0, 0
        for lo in range(0, len(order), cfg.batch_size):
            mb = torch.from_numpy(order[lo : lo + cfg.batch_size])
            logits, _, _ = model(tokens[mb])
            loss = torch.nn.functional.cross_entropy(logits, actions[mb])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        model.eval()
        row = {
            "epoch": float(epoch),
            "loss": total / max(batches, 1),
            "train_agreement": agreement(model, train),
            "val_agreement": agreement(model, val) if len(val) else float("nan"),
        }
        history.append(row)
        log(
            f"epoch {epoch}: loss {row['loss']:.4f}, agreement train {row['train_agreement']:.3f}, "
            f"validation {row['val_agreement']:.3f}"
        )
    return history


__all__ = [
    "Demonstrations",
    "Recorder",
    "agreement",
    "collect",
    "fit",
    "split",
    "training_windows",
]
