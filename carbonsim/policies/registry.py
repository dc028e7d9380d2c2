"""The name -> policy class registry.

Registry names equal the ``conf/policy/*.yaml`` file names. Each entry pairs the policy class with the
frozen dataclass of its parameters; :func:`make_policy` builds a policy from such a config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from carbonsim._schema import ConfigError, build, register_subclass_resolver
from carbonsim.config import PolicyConfig
from carbonsim.core.policy import Policy

P = TypeVar("P", bound=type)

_REGISTRY: dict[str, tuple[type, type[PolicyConfig]]] = {}


def register(name: str, config: type[PolicyConfig] = PolicyConfig) -> Callable[[P], P]:
    """Class decorator that registers a policy under ``name`` with its parameter dataclass.

    The policy class must accept its config as the only constructor argument.
    """

    def deco(cls: P) -> P:
        if name in _REGISTRY:
            raise ValueError(f"policy name {name!r} is already registered by {_REGISTRY[name][0].__name__}")
        _REGISTRY[name] = (cls, config)
        return cls

    return deco


def policy_names() -> list[str]:
    """Registered policy names, sorted."""
    return sorted(_REGISTRY)


def config_class(name: str) -> type[PolicyConfig]:
    """The parameter dataclass of policy ``name``.

    Raises:
        ConfigError: for an unknown name, listing the valid ones.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"policy.name: unknown policy {name!r}; valid policies: {', '.join(policy_names())}")
    return _REGISTRY[name][1]


def registered() -> dict[str, tuple[type, type[PolicyConfig]]]:
    """A copy of the registry: name -> (policy class, config class)."""
    return dict(_REGISTRY)


def policy_config(data: Mapping[str, Any] | PolicyConfig, path: str = "policy") -> PolicyConfig:
    """Builds and validates a policy's config from a mapping such as ``{"name": "hybrid", "alpha": 0.7}``."""
    return build(PolicyConfig, data, path)


def make_policy(cfg: PolicyConfig) -> Policy:
    """Instantiates the policy that ``cfg`` configures."""
    cls, config_cls = _REGISTRY.get(cfg.name, (None, None))
    if cls is None or config_cls is None:
        config_class(cfg.name)  # raises with the list of valid names
        raise AssertionError  # pragma: no cover
    if type(cfg) is not config_cls:
        cfg = build(config_cls, {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "policy")
    policy: Policy = cls(cfg)
    return policy


def _resolve(data: Mapping[str, Any], path: str) -> type:
    name = data.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"{path}.name: a policy name is required; valid policies: {', '.join(policy_names())}")
    try:
        return config_class(name)
    except ConfigError as exc:
        raise ConfigError(f"{path}.name: {str(exc).split(': ', 1)[1]}") from None


register_subclass_resolver(PolicyConfig, _resolve)
