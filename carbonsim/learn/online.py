"""Continuous learning: the transformer scheduler updates itself from the outcomes of its own decisions.

While it routes, the policy samples each action from its softmax mixed with a uniform choice (weight
``epsilon``, so that it keeps exploring however sharp it gets) and records the state's tokens, the action
and the probability it had of being chosen (the behaviour policy's). The outcome of a request becomes
known when it finishes (or is rejected); the policy reads it from the simulator's telemetry
(:class:`~carbonsim.core.view.RequestOutcomes`) and turns it into that decision's penalty (the seed research's
reward terms, carbon and SLA, per request):

    penalty = alpha x carbon_kg + beta x (SLO excess in s, or ``unserved_s`` if rejected) + gamma x cost_usd,

where the carbon and cost are those of the request's own service: (busy - idle power) x service time / batch
size x PUE, at the intensity and price of the chosen region when it was routed. Every K simulated hours
the learner takes the decisions whose outcomes are known and makes a few epochs of PPO-clip updates
(Schulman et al. 2017, arXiv:1707.06347) on them, each decision a one-step episode (a contextual bandit):
advantage = standardised reward - value head, and the clipped ratio is that of the new policy to the
behaviour policy that chose the action (with epsilon > 0 an action the policy had all but ruled out can
then regain probability within one update). Then those samples are discarded.

What this leaves out, and says so: a decision also lengthens the queue that later requests meet, and that
cost lands in *their* outcomes, not in the decision's own (the one-step credit ignores the externality);
the Gymnasium environment's return does count it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from carbonsim.core.view import RequestOutcomes
from carbonsim.learn.config import OnlineConfig
from carbonsim.learn.transformer import PointerTransformer

#: Joules per kWh.
J_PER_KWH = 3.6e6


@dataclass
class _Pending:
    """Decisions of one run whose outcomes are not all known yet (parallel lists)."""

    outcomes: RequestOutcomes
    ids: list[int]
    tokens: list[np.ndarray]
    actions: list[int]
    logp: list[float]
    carbon_g_per_j: list[float]  # intensity / 3.6e6 x PUE at decision time, for the chosen region
    usd_per_j: list[float]
    marginal_w: list[float]  # busy - idle power of the chosen region's server
    slo_ms: list[float]


@dataclass
class _Ready:
    """Decisions with known outcomes, of one token count."""

    tokens: np.ndarray
    actions: np.ndarray
    logp: np.ndarray
    reward: np.ndarray


class OnlineLearner:
    """Records decisions, reads their outcomes and updates the network every K simulated hours.

    Args:
        model: The network to update (in place).
        config: Learning parameters.
        rng: The random stream for sampling actions and minibatches (the policy's own).
    """

    def __init__(self, model: PointerTransformer, config: OnlineConfig, rng: np.random.Generator) -> None:
        self.model = model
        self.config = config
        self.rng = rng
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        self._pending: list[_Pending] = []
        self._ready: list[_Ready] = []
        self.updates = 0
        self.samples_used = 0
        self.decisions = 0
        self.discarded = 0  # outcomes known but beyond max_samples when an update came
        self.unresolved = 0  # requests of an earlier run that never finished: no outcome will come

    def start_run(self, outcomes: RequestOutcomes) -> None:
        """A new run begins: decisions from now on refer to its request ids.

        What the previous runs' outcomes say is harvested first; decisions whose requests never finished
        (a run that stopped without draining) are dropped, as they will never have an outcome.
        """
        self.harvest()
        self.unresolved += sum(len(p.ids) for p in self._pending)
        self._pending = [_Pending(outcomes, [], [], [], [], [], [], [], [])]

    def record(
        self,
        request: int,
        tokens: np.ndarray,
        action: int,
        logp: float,
        carbon_g_per_j: float,
        usd_per_j: float,
        marginal_w: float,
        slo_ms: float,
    ) -> None:
        """Keeps one decision until its outcome is known."""
        p = self._pending[-1]
        p.ids.append(request)
        p.tokens.append(tokens)
        p.actions.append(action)
        p.logp.append(logp)
        p.carbon_g_per_j.append(carbon_g_per_j)
        p.usd_per_j.append(usd_per_j)
        p.marginal_w.append(marginal_w)
        p.slo_ms.append(slo_ms)
        self.decisions += 1

    def harvest(self) -> None:
        """Moves every recorded decision whose outcome is now known to the samples of the next update."""
        reward = self.config.reward
        kept: list[_Pending] = []
        for p in self._pending:
            if not p.ids:
                if p is self._pending[-1]:
                    kept.append(p)
                continue
            out = p.outcomes.read(np.asarray(p.ids, dtype=np.int64))
            known = out.finished | out.unserved
            if known.any():
                idx = np.flatnonzero(known)
                energy_j = np.asarray(p.marginal_w)[idx] * out.service_s[idx] / out.batch_size[idx]
                energy_j = np.where(out.unserved[idx], 0.0, energy_j)
                carbon_kg = energy_j * np.asarray(p.carbon_g_per_j)[idx] / 1e3
                cost_usd = energy_j * np.asarray(p.usd_per_j)[idx]
                excess_s = np.maximum(out.latency_ms[idx] - np.asarray(p.slo_ms)[idx], 0.0) / 1e3
                excess_s = np.where(out.unserved[idx], reward.unserved_s, excess_s)
                penalty = (
                    reward.carbon_per_kg * carbon_kg + reward.sla_per_s * excess_s + reward.cost_per_usd * cost_usd
                )
                self._ready.append(
                    _Ready(
                        tokens=np.stack([p.tokens[i] for i in idx]),
                        actions=np.asarray(p.actions, dtype=np.int64)[idx],
                        logp=np.asarray(p.logp, dtype=np.float32)[idx],
                        reward=-penalty.astype(np.float32),
                    )
                )
            rest = np.flatnonzero(~known).tolist()
            if rest or p is self._pending[-1]:
                kept.append(
                    _Pending(
                        p.outcomes,
                        [p.ids[i] for i in rest],
                        [p.tokens[i] for i in rest],
                        [p.actions[i] for i in rest],
                        [p.logp[i] for i in rest],
                        [p.carbon_g_per_j[i] for i in rest],
                        [p.usd_per_j[i] for i in rest],
                        [p.marginal_w[i] for i in rest],
                        [p.slo_ms[i] for i in rest],
                    )
                )
        self._pending = kept
        self._trim()

    def _trim(self) -> None:
        """Keeps only the most recent ``max_samples`` ready decisions."""
        budget = self.config.max_samples
        kept: list[_Ready] = []
        for r in reversed(self._ready):
            if budget <= 0:
                self.discarded += len(r.actions)
                continue
            if len(r.actions) > budget:
                self.discarded += len(r.actions) - budget
                r = _Ready(r.tokens[-budget:], r.actions[-budget:], r.logp[-budget:], r.reward[-budget:])
            kept.append(r)
            budget -= len(r.actions)
        self._ready = kept[::-1]

    @property
    def ready(self) -> int:
        """Decisions with known outcomes waiting for the next update."""
        return sum(len(r.actions) for r in self._ready)

    @property
    def waiting(self) -> int:
        """Decisions recorded and not yet used, discarded or given up: ready ones and those without an outcome yet.

        Every decision is counted once: ``decisions == samples_used + discarded + unresolved + waiting``.
        """
        return self.ready + sum(len(p.ids) for p in self._pending)

    def update(self) -> bool:
        """One update from the ready decisions (PPO-clip, one-step episodes); False if there were none."""
        self.harvest()
        groups: dict[int, list[_Ready]] = {}
        for r in self._ready:
            groups.setdefault(r.tokens.shape[1], []).append(r)
        self._ready = []
        if not groups:
            return False
        cfg = self.config
        data = []
        rewards = np.concatenate([r.reward for rs in groups.values() for r in rs])
        mean, std = float(rewards.mean()), float(rewards.std()) + 1e-8
        for rs in groups.values():
            data.append(
                (
                    torch.from_numpy(np.concatenate([r.tokens for r in rs])),
                    torch.from_numpy(np.concatenate([r.actions for r in rs])),
                    torch.from_numpy(np.concatenate([r.logp for r in rs])),
                    torch.from_numpy((np.concatenate([r.reward for r in rs]) - mean) / std),
                )
            )
        model = self.model
        model.train()
        for _ in range(cfg.epochs):
            for tokens, actions, old_logp, target in data:
                order = self.rng.permutation(len(actions))
                for lo in range(0, len(order), cfg.batch_size):
                    mb = torch.from_numpy(order[lo : lo + cfg.batch_size])
                    logits, _, value = model(tokens[mb])
                    logp_all = torch.log_softmax(logits / cfg.temperature, dim=-1)
                    logp = logp_all.gather(1, actions[mb, None]).squeeze(1)
                    advantage = target[mb] - value.detach()
                    ratio = torch.exp(logp - old_logp[mb])
                    clipped = torch.clamp(ratio, 1.0 - cfg.clip_range, 1.0 + cfg.clip_range)
                    policy_loss = -torch.min(ratio * advantage, clipped * advantage).mean()
                    value_loss = torch.mean((value - target[mb]) ** 2)
                    loss = policy_loss + cfg.value_coef * value_loss
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
        model.eval()
        self.updates += 1
        self.samples_used += int(sum(len(d[1]) for d in data))
        return True


__all__ = ["J_PER_KWH", "OnlineLearner"]
