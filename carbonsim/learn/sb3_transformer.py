"""The transformer scheduler as a stable-baselines3 policy, for PPO fine-tuning in ``carbonsim/Routing-v0``.

SB3's :class:`~stable_baselines3.common.policies.ActorCriticPolicy` normally puts an MLP and two linear
heads after a features extractor. Here the environment's observation is the token matrix
(``features.layout: tokens``), SB3's default extractor flattens it, and :class:`PointerHeads` reshapes it
back and runs the whole :class:`~carbonsim.learn.transformer.PointerTransformer`: its pointer scores are
the action logits and its value head the critic. SB3's own action and value layers are replaced by
identities, and its orthogonal re-initialisation is turned off so that pre-trained and imitated weights
are kept. The network object is shared, so after ``learn`` the same :class:`PointerTransformer` holds the
fine-tuned weights.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from carbonsim.learn.tokens import FIXED_TOKENS
from carbonsim.learn.transformer import PointerTransformer


class PointerHeads(nn.Module):
    """SB3's "MLP extractor" slot: tokens in, (action logits, value) out.

    Args:
        model: The network.
        n_tokens: Tokens per state.
        width: Values per token.
    """

    def __init__(self, model: PointerTransformer, n_tokens: int, width: int) -> None:
        super().__init__()
        self.model = model
        self.n_tokens = n_tokens
        self.width = width
        self.latent_dim_pi = n_tokens - FIXED_TOKENS
        self.latent_dim_vf = 1

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (batch, regions) and value (batch, 1) from flattened token matrices."""
        logits, _, value = self.model(features.reshape(-1, self.n_tokens, self.width))
        return logits, value[:, None]

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        """Action logits only."""
        return self.forward(features)[0]

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        """Value only."""
        return self.forward(features)[1]


class TransformerActorCritic(ActorCriticPolicy):
    """An SB3 actor-critic whose actor and critic are one :class:`PointerTransformer`.

    Args:
        observation_space: The environment's token-matrix space.
        action_space: ``Discrete(regions)``.
        lr_schedule: SB3's learning-rate schedule.
        transformer: The network to fine-tune (shared, updated in place).
        **kwargs: Further :class:`ActorCriticPolicy` arguments (``ortho_init`` is forced off).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space[Any],
        action_space: gym.spaces.Space[Any],
        lr_schedule: Schedule,
        transformer: PointerTransformer | None = None,
        **kwargs: Any,
    ) -> None:
        if transformer is None:
            raise ValueError("TransformerActorCritic needs policy_kwargs={'transformer': PointerTransformer}")
        shape = observation_space.shape
        if shape is None or len(shape) != 2:
            raise ValueError(f"TransformerActorCritic needs a token-matrix observation, got shape {shape}")
        # Kept in a tuple: nn.Module refuses module attributes before its __init__, which builds the heads.
        self._network = (transformer, int(shape[0]), int(shape[1]))
        kwargs["ortho_init"] = False
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        model, n_tokens, width = self._network
        self.mlp_extractor = PointerHeads(model, n_tokens, width)  # type: ignore[assignment]

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()
        self.value_net = nn.Identity()  # type: ignore[assignment]
        # Rebuilt without the replaced linear layers' parameters.
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]


__all__ = ["PointerHeads", "TransformerActorCritic"]
