"""The name -> policy class registries: routing policies and batch-job policies.

Registry names equal the file names of ``conf/policy/*.yaml`` (routing) and ``conf/batch_policy/*.yaml``
(batch jobs). Each entry pairs the policy class with the frozen dataclass of its parameters;
:func:`make_policy` / :func:`make_batch_policy` build a policy from such a config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from carbonsim._schema import ConfigError, build, register_subclass_resolver
from carbonsim.config import BatchPolicyConfig, PolicyConfig
from carbonsim.core.jobs import BatchPolicy
from carbonsim.core.policy import Policy

P = TypeVar("P", bound=type)


class Registry:
    """Policy classes by name, with their parameter dataclasses.

    Args:
        kind: What the policies are, for messages (``policy``, ``batch policy``).
        field: The configuration field that names them (``policy``, ``batch_policy``).
        base: The base parameter dataclass.
    """

    def __init__(self, kind: str, field: str, base: type[PolicyConfig]) -> None:
        self.kind = kind
        self.field = field
        self.base = base
        self.plural = kind.replace("policy", "policies")
        self.entries: dict[str, tuple[type, type[PolicyConfig]]] = {}
        register_subclass_resolver(base, self._resolve)

    def register(self, name: str, config: type[PolicyConfig] | None = None) -> Callable[[P], P]:
        """Class decorator that registers a policy under ``name`` with its parameter dataclass.

        The policy class must accept its config as the only constructor argument.
        """
        config = config or self.base

        def deco(cls: P) -> P:
            if name in self.entries:
                raise ValueError(f"{self.kind} name {name!r} is already registered by {self.entries[name][0].__name__}")
            if not issubclass(config, self.base):
                raise TypeError(f"{self.kind} {name!r}: its config must subclass {self.base.__name__}")
            self.entries[name] = (cls, config)
            return cls

        return deco

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self.entries)

    def config_class(self, name: str) -> type[PolicyConfig]:
        """The parameter dataclass of ``name``; raises ConfigError listing the valid names if unknown."""
        if name not in self.entries:
            raise ConfigError(
                f"{self.field}.name: unknown {self.kind} {name!r}; valid {self.plural}: {', '.join(self.names())}"
            )
        return self.entries[name][1]

    def config(self, data: Mapping[str, Any] | PolicyConfig, path: str) -> PolicyConfig:
        """Builds and validates a config from a mapping such as ``{"name": "hybrid", "alpha": 0.7}``."""
        return build(self.base, data, path)

    def make(self, cfg: PolicyConfig) -> Any:
        """Instantiates the policy that ``cfg`` configures."""
        cls, config_cls = self.entries.get(cfg.name, (None, None))
        if cls is None or config_cls is None:
            self.config_class(cfg.name)  # raises with the list of valid names
            raise AssertionError  # pragma: no cover
        if type(cfg) is not config_cls:
            cfg = build(config_cls, {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, self.field)
        return cls(cfg)

    def _resolve(self, data: Mapping[str, Any], path: str) -> type:
        name = data.get("name")
        if not isinstance(name, str):
            raise ConfigError(
                f"{path}.name: a {self.kind} name is required; valid {self.plural}: {', '.join(self.names())}"
            )
        try:
            return self.config_class(name)
        except ConfigError as exc:
            raise ConfigError(f"{path}.name: {str(exc).split(': ', 1)[1]}") from None


ROUTING = Registry("policy", "policy", PolicyConfig)
BATCH = Registry("batch policy", "batch_policy", BatchPolicyConfig)


def register(name: str, config: type[PolicyConfig] = PolicyConfig) -> Callable[[P], P]:
    """Class decorator that registers a routing policy under ``name`` with its parameter dataclass."""
    return ROUTING.register(name, config)


def register_batch(name: str, config: type[BatchPolicyConfig] = BatchPolicyConfig) -> Callable[[P], P]:
    """Class decorator that registers a batch-job policy under ``name`` with its parameter dataclass."""
    return BATCH.register(name, config)


def policy_names() -> list[str]:
    """Registered routing policy names, sorted."""
    return ROUTING.names()


def batch_policy_names() -> list[str]:
    """Registered batch policy names, sorted."""
    return BATCH.names()


def config_class(name: str) -> type[PolicyConfig]:
    """The parameter dataclass of routing policy ``name`` (ConfigError listing the valid names if unknown)."""
    return ROUTING.config_class(name)


def registered() -> dict[str, tuple[type, type[PolicyConfig]]]:
    """A copy of the routing registry: name -> (policy class, config class)."""
    return dict(ROUTING.entries)


def policy_config(data: Mapping[str, Any] | PolicyConfig, path: str = "policy") -> PolicyConfig:
    """Builds and validates a routing policy's config from a mapping."""
    return ROUTING.config(data, path)


def batch_policy_config(data: Mapping[str, Any] | PolicyConfig, path: str = "batch_policy") -> BatchPolicyConfig:
    """Builds and validates a batch policy's config from a mapping."""
    cfg = BATCH.config(data, path)
    assert isinstance(cfg, BatchPolicyConfig)
    return cfg


def make_policy(cfg: PolicyConfig) -> Policy:
    """Instantiates the routing policy that ``cfg`` configures."""
    policy: Policy = ROUTING.make(cfg)
    return policy


def make_batch_policy(cfg: PolicyConfig) -> BatchPolicy:
    """Instantiates the batch policy that ``cfg`` configures."""
    policy: BatchPolicy = BATCH.make(cfg)
    return policy
