"""The shifting network as a stable-baselines3 policy, for PPO in ``carbonsim/Shifting-v0``.

The environment's observation is a ``Dict`` of flat vectors and its action ``MultiDiscrete([1 + R] * N)``.
:class:`FlatDict` concatenates the vectors (in a fixed order); :class:`ShiftingHeads`, in SB3's "MLP
extractor" slot, splits them back into matrices (:func:`carbonsim.envs.shifting.unflatten`'s shapes) and
runs the whole :class:`~carbonsim.learn.shifting_model.ShiftingNet`: its per-item choice logits, flattened,
are the ``N x (1 + R)`` logits of SB3's multi-categorical distribution (one categorical per item slot, the
joint log-probability their sum), and its value head the critic. SB3's own action and value layers are
identities and its orthogonal re-initialisation is off, so imitated weights are kept; the network object
is shared, so after ``learn`` it holds the trained weights. Padded slots are sampled too but ignored by the
environment: their log-probabilities add noise without signal to the gradient, not bias.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from carbonsim.learn.shifting_features import GLOBAL_FEATURES, ITEM_FEATURES, PAIR_FEATURES, REGION_FEATURES
from carbonsim.learn.shifting_model import ShiftingNet

#: Order in which :class:`FlatDict` concatenates the observation.
KEYS = ("items", "item_mask", "pairs", "regions", "globals")


class FlatDict(BaseFeaturesExtractor):
    """Concatenates the observation's vectors in :data:`KEYS` order."""

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        size = 0
        for k in KEYS:
            shape = observation_space.spaces[k].shape or (0,)
            size += int(shape[0])
        super().__init__(observation_space, features_dim=size)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, total) features."""
        return torch.cat([observations[k].float() for k in KEYS], dim=1)


class ShiftingHeads(nn.Module):
    """SB3's "MLP extractor" slot: features in, (flat choice logits, value) out."""

    def __init__(self, model: ShiftingNet, max_items: int, n_regions: int) -> None:
        super().__init__()
        self.model = model
        self.n, self.r = max_items, n_regions
        self.latent_dim_pi = max_items * (1 + n_regions)
        self.latent_dim_vf = 1
        n, r = max_items, n_regions
        self.sizes = [n * ITEM_FEATURES, n, n * r * PAIR_FEATURES, r * REGION_FEATURES, GLOBAL_FEATURES]

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (batch, N x (1 + R)) and value (batch, 1)."""
        items, mask, pairs, regions, globals_ = torch.split(features, self.sizes, dim=1)
        b, n, r = features.shape[0], self.n, self.r
        logits, _, value = self.model(
            items.reshape(b, n, ITEM_FEATURES),
            mask,
            pairs.reshape(b, n, r, PAIR_FEATURES),
            regions.reshape(b, r, REGION_FEATURES),
            globals_,
        )
        return logits.reshape(b, -1), value[:, None]

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """Action logits only."""
        return self.forward(features)[0]

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """Value only."""
        return self.forward(features)[1]


class ShiftingActorCritic(ActorCriticPolicy):
    """An SB3 actor-critic whose actor and critic are one :class:`ShiftingNet`.

    Args:
        observation_space: The environment's ``Dict`` space.
        action_space: ``MultiDiscrete([1 + R] * N)``.
        lr_schedule: SB3's learning-rate schedule.
        network: The network to train (shared, updated in place).
        **kwargs: Further :class:`ActorCriticPolicy` arguments (``ortho_init`` is forced off).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space[Any],
        action_space: gym.spaces.Space[Any],
        lr_schedule: Schedule,
        network: ShiftingNet | None = None,
        **kwargs: Any,
    ) -> None:
        if network is None:
            raise ValueError("ShiftingActorCritic needs policy_kwargs={'network': ShiftingNet}")
        if not isinstance(action_space, gym.spaces.MultiDiscrete):
            raise ValueError(f"ShiftingActorCritic needs a MultiDiscrete action space, got {action_space}")
        nvec = action_space.nvec
        self._network = (network, int(nvec.size), int(nvec[0]) - 1)
        kwargs["ortho_init"] = False
        kwargs["features_extractor_class"] = FlatDict
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        model, n, r = self._network
        self.mlp_extractor = ShiftingHeads(model, n, r)  # type: ignore[assignment]

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()
        self.value_net = nn.Identity()  # type: ignore[assignment]
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]


__all__ = ["FlatDict", "ShiftingActorCritic", "ShiftingHeads"]
