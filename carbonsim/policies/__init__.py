"""Routing policies and their registry.

Importing this package registers every built-in policy. Add a policy by decorating a class with
:func:`register` (see README, "Adding a policy").
"""

from carbonsim.policies import heuristics, hybrid  # noqa: F401  (registers the built-in policies)
from carbonsim.policies.base import BasePolicy, predicted_latency_ms
from carbonsim.policies.hybrid import ConstrainedHybridConfig, HybridConfig
from carbonsim.policies.registry import config_class, make_policy, policy_config, policy_names, register

__all__ = [
    "BasePolicy",
    "ConstrainedHybridConfig",
    "HybridConfig",
    "config_class",
    "make_policy",
    "policy_config",
    "policy_names",
    "predicted_latency_ms",
    "register",
]
