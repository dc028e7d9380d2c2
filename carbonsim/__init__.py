"""carbonsim: discrete-event simulation of carbon-aware routing of AI inference across cloud regions.

The public API: configuration dataclasses, the policy interface and registry, and functions to run a
configuration (see README for examples).
"""

from carbonsim._hydra import load_config
from carbonsim._schema import ConfigError, build
from carbonsim.config import (
    ArrivalConfig,
    CarbonConfig,
    ExperimentConfig,
    OriginConfig,
    PolicyConfig,
    RegionConfig,
    RunConfig,
    ScenarioConfig,
    ServerPoolConfig,
    ServiceTimeConfig,
    WorkloadConfig,
)
from carbonsim.core.policy import Policy
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.policies import BasePolicy, make_policy, policy_config, policy_names, register
from carbonsim.runner import RunOutput, prepare, run, simulate_policy

__version__ = "0.1.0"

__all__ = [
    "ArrivalConfig",
    "BasePolicy",
    "CarbonConfig",
    "ConfigError",
    "DecisionView",
    "ExperimentConfig",
    "OriginConfig",
    "PlanView",
    "Policy",
    "PolicyConfig",
    "PolicyContext",
    "RegionConfig",
    "RunConfig",
    "RunOutput",
    "ScenarioConfig",
    "ServerPoolConfig",
    "ServiceTimeConfig",
    "WorkloadConfig",
    "__version__",
    "build",
    "load_config",
    "make_policy",
    "policy_config",
    "policy_names",
    "prepare",
    "register",
    "run",
    "simulate_policy",
]
