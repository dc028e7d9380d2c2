"""Learning during the run: the learned shifting scheduler updates itself from what its own run accrues.

With ``batch_policy.online.enabled`` (:class:`~carbonsim.learn.shifting_config.ShiftingOnlineConfig`),
:class:`~carbonsim.learn.shifting_policy.LearnedShifting` draws every item's choice from the network's
softmax mixed with a uniform choice (weight ``epsilon``) over the item's *exploration set*, from its own
random stream, and :class:`OnlineShiftingLearner` records each batch epoch: the network's inputs, the choices and
their log-probabilities under that mixture (the behaviour policy). The *reward* of an epoch is what the run
accrued between it and the next epoch, weighted by the policy's own weights,

    reward = -(alpha x carbon_kg + beta x lateness_h + gamma x cost_usd),

read from the engine's account (:class:`~carbonsim.core.jobs.accrual.Accrual`, the one the Shifting-v0
environment's reward reads; ``JobView.accrual``): the per-epoch rewards of a run sum to minus the weighted
totals of its job table (tested). The first epoch's reward counts from the start of the run.

Every ``update_every_h`` simulated hours the learner makes ``epochs`` passes of PPO-clip updates (Schulman
et al. 2017, arXiv:1707.06347) over the epochs recorded since the previous update (on-policy; at most the
``max_samples`` most recent), then the NumPy snapshot the policy decides with is refreshed. Advantages are
generalised advantage estimates (Schulman et al. 2016, arXiv:1506.02438) over that stretch of the trajectory,
per batch epoch (``gamma``, ``gae_lambda``), bootstrapped with the value of the epoch being decided (or
ending at the end of a run); values are the value head's at update time, before the update, and the
advantages are standardised per update. The policy gradient is taken *per item*: each item's probability
ratio (new mixture over behaviour mixture) is clipped on its own and weighted by its epoch's advantage,
averaged over the epoch's items. The joint ratio of an epoch's choices (their product) would move as fast as
the epoch has items, and with tens to hundreds of items nearly every epoch would be clipped; per-item
clipping bounds each factor instead. The policy being improved is the mixture the run deploys, so the
ratios start at 1 (up to the float difference of the NumPy and torch networks).

The exploration set (``explore``): ``stay`` (default), defer or run where the item's job is (where it runs,
else its home), so that exploring never moves a job; ``all``, defer and every region. Measured on
``gpu_training``: a uniform 5 % over all choices, re-drawn at every epoch for every item, moved running jobs
223 times in one 12-hour window (against 6 for the greedy network) and nearly tripled the carbon, each
move carrying a GPU job's state; moves then come only from the network's own softmax.

Randomness: the choices and the minibatch orders come from two child streams of the policy's generator
(``numpy.random.Generator.spawn``), so how many minibatches an update draws does not shift the choices;
nothing draws from torch's generator (the network has no dropout). One torch thread (``torch_threads``):
the same seed gives the same run byte for byte.

What this leaves out: an epoch's choices also change what later epochs can do (a deferral fills a later
hour), and the advantage estimate carries that credit only as far as ``gamma``/``gae_lambda`` and the
value head reach; the first updates of a deployment rest on few epochs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from carbonsim.core.jobs.accrual import Accrual
from carbonsim.learn.shifting_config import ShiftingOnlineConfig
from carbonsim.learn.shifting_model import ShiftingNet, save, to_numpy
from carbonsim.learn.shifting_numpy import ShiftingNumpy

#: The network's inputs of one epoch: items (n, F), pairs (n, R, P), regions (R, F), globals (G,).
Inputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Epoch:
    """One recorded batch epoch."""

    inputs: Inputs
    actions: np.ndarray  # (n,) 0 defers, 1 + r runs in region r
    logp: np.ndarray  # (n,) behaviour log-probabilities
    explore: np.ndarray  # (n, 1 + R) the choices the uniform part draws from
    reward: float = math.nan  # known at the next epoch (or at the end of the run)
    last: bool = False  # the run ended after it


def weighted_reward(credit: np.ndarray, weights: tuple[float, float, float]) -> float:
    """``-(alpha kg + beta late h + gamma USD)`` of an :class:`Accrual` difference (carbon in g)."""
    alpha, beta, gamma = weights
    return -(alpha * float(credit[0]) / 1e3 + beta * float(credit[3]) + gamma * float(credit[2]))


def explore_set(pairs: np.ndarray, how: str) -> np.ndarray:
    """(n, 1 + R) booleans: the choices exploration draws from per item (see the module docstring).

    Args:
        pairs: The epoch's pair features (n, R, P): column 0 the item's home, column 1 where its job runs.
        how: ``stay`` or ``all``.
    """
    n, r = pairs.shape[0], pairs.shape[1]
    out = np.zeros((n, 1 + r), dtype=bool)
    out[:, 0] = True
    if how == "all":
        out[:, 1:] = True
        return out
    runs = pairs[:, :, 1] > 0
    where = np.where(runs.any(axis=1), runs.argmax(axis=1), pairs[:, :, 0].argmax(axis=1))
    out[np.arange(n), 1 + where] = True
    return out


def mixture(logits: np.ndarray, epsilon: float, explore: np.ndarray) -> np.ndarray:
    """Per row: softmax of ``logits`` mixed with a uniform choice over ``explore``'s choices, weight ``epsilon``."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return np.asarray((1.0 - epsilon) * p + epsilon * explore / explore.sum(axis=1, keepdims=True))


class OnlineShiftingLearner:
    """Records the run's epochs and their rewards and updates the network every K simulated hours.

    Args:
        net: The torch network to update (in place; the policy gives it a copy of its own).
        config: Learning parameters.
        weights: The policy's [alpha, beta, gamma].
        rng: The stream of minibatch orders.

    Attributes:
        updates: Updates made so far.
        samples: Epochs used by the updates so far.
        epochs_seen: Epochs recorded so far.
        discarded: Epochs beyond ``max_samples`` when an update came.
        rewards: Rewards of the current run's epochs whose reward is known (:meth:`run_rewards`: all).
    """

    def __init__(
        self,
        net: ShiftingNet,
        config: ShiftingOnlineConfig,
        weights: tuple[float, float, float],
        rng: np.random.Generator,
    ) -> None:
        self.net = net.eval()
        self.config = config
        self.weights = weights
        self.rng = rng
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        self._done: list[_Epoch] = []  # rewards known, not yet used by an update
        self._open: _Epoch | None = None  # the latest epoch, its reward accruing
        self._accrual: Accrual | None = None
        self._accrued = np.zeros(4)
        self._since_s = 0.0
        self._last_s = 0.0
        self.updates = 0
        self.samples = 0
        self.epochs_seen = 0
        self.discarded = 0
        self.rewards: list[float] = []

    def snapshot(self) -> ShiftingNumpy:
        """The NumPy network the policy decides with (a copy of the current weights)."""
        return to_numpy(self.net)

    def start_run(self) -> None:
        """A new run begins: the previous run's last epoch takes what that run accrued until it stopped."""
        self._close_open(last=True)
        self._accrual = None
        self._accrued = np.zeros(4)
        self._last_s = 0.0
        self.rewards = []

    def _close_open(self, last: bool) -> None:
        open_, accrual = self._open, self._accrual
        if open_ is None or accrual is None:
            return
        total = accrual.now()
        open_.reward = weighted_reward(total - self._accrued, self.weights)
        open_.last = last
        self._accrued = total
        self.rewards.append(open_.reward)
        self._done.append(open_)
        self._open = None

    def observe(self, now_s: float, accrual: Accrual) -> bool:
        """A new epoch at ``now_s``: the previous epoch's reward is now known; True if an update is due."""
        self._accrual = accrual
        self._close_open(last=False)
        self._since_s += max(now_s - self._last_s, 0.0)
        self._last_s = now_s
        return self._since_s >= self.config.update_every_h * 3600.0 - 1e-9

    def record(self, inputs: Inputs, actions: np.ndarray, logp: np.ndarray, explore: np.ndarray) -> None:
        """Keeps the epoch just decided until its reward is known."""
        actions = np.asarray(actions, dtype=np.int64)
        self._open = _Epoch(inputs, actions, np.asarray(logp, dtype=np.float64), np.asarray(explore, dtype=bool))
        self.epochs_seen += 1

    def run_rewards(self) -> list[float]:
        """The current run's per-epoch rewards, the latest epoch's as accrued up to now; nothing is changed.

        After a run has stopped, they sum to minus the weighted totals of its job table.
        """
        if self._open is None or self._accrual is None:
            return list(self.rewards)
        return [*self.rewards, weighted_reward(self._accrual.now() - self._accrued, self.weights)]

    def _tensors(self, epochs: list[_Epoch]) -> dict[str, torch.Tensor]:
        """The epochs padded to their largest item count (all with the same number of regions)."""
        b = len(epochs)
        n = max(e.actions.size for e in epochs)
        items0, pairs0, regions0, _ = epochs[0].inputs
        r = regions0.shape[0]
        items = np.zeros((b, n, items0.shape[1]), dtype=np.float32)
        pairs = np.zeros((b, n, r, pairs0.shape[2]), dtype=np.float32)
        mask = np.zeros((b, n), dtype=np.float32)
        actions = np.zeros((b, n), dtype=np.int64)
        logp = np.zeros((b, n), dtype=np.float32)
        explore = np.ones((b, n, r + 1), dtype=bool)
        for i, e in enumerate(epochs):
            k = e.actions.size
            items[i, :k], pairs[i, :k] = e.inputs[0], e.inputs[1]
            mask[i, :k] = 1.0
            actions[i, :k] = e.actions
            logp[i, :k] = e.logp
            explore[i, :k] = e.explore
        return {
            "items": torch.from_numpy(items),
            "mask": torch.from_numpy(mask),
            "pairs": torch.from_numpy(pairs),
            "regions": torch.from_numpy(np.stack([e.inputs[2] for e in epochs]).astype(np.float32)),
            "globals": torch.from_numpy(np.stack([e.inputs[3] for e in epochs]).astype(np.float32)),
            "actions": torch.from_numpy(actions),
            "logp": torch.from_numpy(logp),
            "explore": torch.from_numpy(explore),
        }

    def _values(self, inputs: list[Inputs]) -> np.ndarray:
        """The value head's estimate of each state (no gradient)."""
        out = np.zeros(len(inputs))
        size = self.config.batch_size
        with torch.no_grad():
            for lo in range(0, len(inputs), size):
                chunk = [
                    _Epoch(x, np.zeros(len(x[0]), dtype=np.int64), np.zeros(len(x[0])), np.ones((len(x[0]), 1), bool))
                    for x in inputs[lo : lo + size]
                ]
                groups: dict[int, list[int]] = {}
                for i, e in enumerate(chunk):
                    groups.setdefault(e.inputs[2].shape[0], []).append(i)
                for idx in groups.values():
                    t = self._tensors([chunk[i] for i in idx])
                    _, _, value = self.net(t["items"], t["mask"], t["pairs"], t["regions"], t["globals"])
                    out[[lo + i for i in idx]] = value.numpy().astype(np.float64)
        return out

    def update(self, bootstrap: Inputs | None) -> bool:
        """PPO-clip on the epochs recorded since the previous update; False if there were none.

        Args:
            bootstrap: Inputs of the epoch being decided (its value closes the advantage estimate), or None.
        """
        cfg = self.config
        self._since_s = 0.0
        data = self._done
        self._done = []
        if len(data) > cfg.max_samples:
            self.discarded += len(data) - cfg.max_samples
            data = data[-cfg.max_samples :]
        if not data:
            return False
        values = self._values([e.inputs for e in data] + ([bootstrap] if bootstrap is not None else []))
        advantages = np.zeros(len(data))
        gae, next_value = 0.0, float(values[len(data)]) if bootstrap is not None else 0.0
        for i in range(len(data) - 1, -1, -1):
            e = data[i]
            if e.last:  # the run ended after it: nothing follows
                gae, next_value = 0.0, 0.0
            delta = e.reward + cfg.gamma * next_value - values[i]
            gae = delta + cfg.gamma * cfg.gae_lambda * gae
            advantages[i] = gae
            next_value = float(values[i])
        returns = advantages + values[: len(data)]
        if len(data) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        groups: dict[int, list[int]] = {}
        for i, e in enumerate(data):
            groups.setdefault(e.inputs[2].shape[0], []).append(i)
        self.net.train()
        for _ in range(cfg.epochs):
            for idx in groups.values():
                order = self.rng.permutation(len(idx))
                for lo in range(0, len(order), cfg.batch_size):
                    mb = [idx[j] for j in order[lo : lo + cfg.batch_size]]
                    self._step(self._tensors([data[i] for i in mb]), advantages[mb], returns[mb])
        self.net.eval()
        self.updates += 1
        self.samples += len(data)
        if cfg.save_to:
            save(cfg.save_to, self.net, {"selected_weights": list(self.weights), "online_updates": self.updates})
        return True

    def log_probs(self, logits: torch.Tensor, explore: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of ``actions`` under the deployed mixture of ``logits`` (B, N, 1 + R) -> (B, N).

        (1 - eps) softmax + eps / |explore set| on the set, in log space.
        """
        eps = self.config.epsilon
        logp_all = torch.log_softmax(logits, dim=-1)
        if eps > 0:
            uniform = math.log(eps) - torch.log(explore.sum(-1, keepdim=True).to(logits.dtype))
            uniform = torch.where(explore, uniform.expand_as(logp_all), torch.full_like(logp_all, -math.inf))
            logp_all = torch.logaddexp(logp_all + math.log1p(-eps), uniform)
        return logp_all.gather(-1, actions[..., None]).squeeze(-1)

    def _step(self, t: dict[str, torch.Tensor], advantage: np.ndarray, target: np.ndarray) -> None:
        """One gradient step on a minibatch of epochs."""
        cfg = self.config
        logits, _, value = self.net(t["items"], t["mask"], t["pairs"], t["regions"], t["globals"])
        logp = self.log_probs(logits, t["explore"], t["actions"])
        mask = t["mask"]
        adv = torch.from_numpy(advantage.astype(np.float32))[:, None]
        ratio = torch.exp((logp - t["logp"]) * mask)
        clipped = torch.clamp(ratio, 1.0 - cfg.clip_range, 1.0 + cfg.clip_range)
        per_item = torch.min(ratio * adv, clipped * adv) * mask
        policy_loss = -(per_item.sum(1) / mask.sum(1).clamp(min=1.0)).mean()
        value_loss = torch.mean((value - torch.from_numpy(target.astype(np.float32))) ** 2)
        loss = policy_loss + cfg.value_coef * value_loss
        self.optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optimizer.step()


__all__ = ["Inputs", "OnlineShiftingLearner", "explore_set", "mixture", "weighted_reward"]
