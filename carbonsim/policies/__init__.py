"""Routing policies and their registry.

Importing this package registers every built-in rule-based policy; the learned ones (``ppo``,
``transformer``) live in :mod:`carbonsim.learn` and are registered when ``carbonsim`` is imported, so that
``learn`` depends on ``policies`` and never the reverse. Add a policy by decorating a class with
:func:`register` (see README, "Adding a policy").
"""

from carbonsim.policies import (  # noqa: F401  (registers the built-in policies)
    batch,
    cap,
    carbonclipper,
    carbonscaler,
    casper,
    casper_batch,
    heuristics,
    hybrid,
    llm_planner,
    pcaps,
)
from carbonsim.policies.base import BasePolicy, predicted_latency_ms
from carbonsim.policies.hybrid import ConstrainedHybridConfig, HybridConfig
from carbonsim.policies.registry import (
    batch_policy_config,
    batch_policy_names,
    config_class,
    make_batch_policy,
    make_policy,
    policy_config,
    policy_names,
    register,
    register_batch,
)

__all__ = [
    "BasePolicy",
    "ConstrainedHybridConfig",
    "HybridConfig",
    "batch_policy_config",
    "batch_policy_names",
    "config_class",
    "make_batch_policy",
    "make_policy",
    "policy_config",
    "policy_names",
    "predicted_latency_ms",
    "register",
    "register_batch",
]
