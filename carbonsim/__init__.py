"""carbonsim: discrete-event simulation of carbon-aware routing of AI inference across cloud regions.

The public API: configuration dataclasses, the routing and batch-job policy interfaces and registries, and
functions to run a configuration (see README for examples).
"""

from carbonsim._hydra import load_config
from carbonsim._schema import ConfigError, build
from carbonsim.config import (
    ArrivalConfig,
    BatchConfig,
    BatchPolicyConfig,
    CarbonConfig,
    ExperimentConfig,
    ForecastConfig,
    OriginConfig,
    PolicyConfig,
    RegionConfig,
    RunConfig,
    ScenarioConfig,
    ServerPoolConfig,
    ServiceTimeConfig,
    WorkloadConfig,
)
from carbonsim.core.jobs import BatchPolicy, JobContext, JobInfo, JobView, Run, RunnableStages
from carbonsim.core.policy import Policy
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.envs import register_envs
from carbonsim.learn import learned_policy as _learned_policy  # noqa: F401  (registers policy=ppo)
from carbonsim.learn import shifting_policy as _shifting_policy  # noqa: F401  (batch_policy=learned_shifting)
from carbonsim.learn import transformer_policy as _transformer_policy  # noqa: F401  (registers policy=transformer)
from carbonsim.policies import (
    BasePolicy,
    batch_policy_config,
    batch_policy_names,
    make_batch_policy,
    make_policy,
    policy_config,
    policy_names,
    register,
    register_batch,
)
from carbonsim.runner import RunOutput, prepare, run, simulate_policy
from carbonsim.signal_config import ArrivalTraceConfig, SignalSourceConfig

register_envs()

__version__ = "0.1.0"

__all__ = [
    "ArrivalConfig",
    "ArrivalTraceConfig",
    "BasePolicy",
    "BatchConfig",
    "BatchPolicy",
    "BatchPolicyConfig",
    "CarbonConfig",
    "ConfigError",
    "DecisionView",
    "ExperimentConfig",
    "ForecastConfig",
    "JobContext",
    "JobInfo",
    "JobView",
    "OriginConfig",
    "PlanView",
    "Policy",
    "PolicyConfig",
    "PolicyContext",
    "RegionConfig",
    "Run",
    "RunConfig",
    "RunOutput",
    "RunnableStages",
    "ScenarioConfig",
    "ServerPoolConfig",
    "ServiceTimeConfig",
    "SignalSourceConfig",
    "WorkloadConfig",
    "__version__",
    "batch_policy_config",
    "batch_policy_names",
    "build",
    "load_config",
    "make_batch_policy",
    "make_policy",
    "policy_config",
    "policy_names",
    "prepare",
    "register",
    "register_batch",
    "run",
    "simulate_policy",
]
