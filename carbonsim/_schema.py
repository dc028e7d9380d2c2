"""Building frozen config dataclasses from plain data, and their Hydra twins.

The frozen dataclasses in :mod:`carbonsim.config` are the single source of truth for the configuration.
Two pieces of machinery live here:

* :func:`build` turns nested plain data (what ``OmegaConf.to_container`` returns, or a hand-written dict)
  into frozen dataclasses. It checks every key and type and names the offending field by its dotted path
  (``scenario.regions[2].pue``), so a bad value is reported where the user wrote it.
* :func:`thaw` derives a mutable twin of a frozen dataclass. OmegaConf marks nodes built from frozen
  dataclasses read-only, which makes Hydra unable to merge YAML and command-line overrides into them; the
  twins carry the same fields, types and defaults and are what Hydra's ConfigStore holds as schemas.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


#: Hooks that pick the concrete subclass of a polymorphic config base from its data (e.g. policies by name).
_SUBCLASS_RESOLVERS: dict[type, Callable[[Mapping[str, Any], str], type]] = {}


def register_subclass_resolver(base: type, resolver: Callable[[Mapping[str, Any], str], type]) -> None:
    """Registers how to choose the concrete dataclass for fields declared as ``base``.

    Args:
        base: The declared (base) dataclass type.
        resolver: Called with the field's data and its dotted path; returns the subclass to build.
    """
    _SUBCLASS_RESOLVERS[base] = resolver


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Builds the frozen dataclass ``cls`` from plain nested data, validating as it goes.

    Args:
        cls: The dataclass type to build.
        data: A mapping of field names to values (nested mappings and lists for nested fields), or an
            instance of ``cls`` already.
        path: Dotted path of ``data`` inside the whole configuration, used in error messages.

    Returns:
        The constructed dataclass instance.

    Raises:
        ConfigError: naming the field path and what was expected.
    """
    return typing.cast(T, _convert(cls, data, path))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build_dataclass(cls: type, data: Any, path: str) -> Any:
    if isinstance(data, cls):
        return data
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{path or cls.__name__}: expected a mapping for {cls.__name__}, got {type(data).__name__} {data!r}"
        )
    resolver = _SUBCLASS_RESOLVERS.get(cls)
    if resolver is not None:
        cls = resolver(data, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise ConfigError(
            f"{path or cls.__name__}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; "
            f"valid fields: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(path, name)
        if name in data:
            value = data[name]
            if isinstance(value, str) and value == "???":
                raise ConfigError(f"{sub}: a value is required")
            kwargs[name] = _convert(hints[name], value, sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{sub}: a value is required")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        # __post_init__ checks know the field but not where the dataclass sits in the whole config.
        raise ConfigError(f"{path}.{exc}" if path else str(exc)) from None


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build_dataclass(tp, value, path)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path}: a value is required, got null")
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for arg in non_none:
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {tp}")
    if origin is tuple or origin is list:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        items = [_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        key_tp, val_tp = typing.get_args(tp)
        return {_convert(key_tp, k, path): _convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if value is None:
        raise ConfigError(f"{path}: a value is required, got null")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported field type {tp!r}")


_THAWED: dict[type, type] = {}


def _thaw_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return thaw(tp)
    if origin in (list, tuple):
        return types.GenericAlias(list, (_thaw_type(typing.get_args(tp)[0]),))
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        return types.GenericAlias(dict, (key_tp, _thaw_type(val_tp)))
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, [_thaw_type(a) for a in typing.get_args(tp)])
    return tp


def _factory(make: Callable[[], Any]) -> Any:
    return dataclasses.field(default_factory=make)


def thaw(cls: type) -> type:
    """Returns a mutable dataclass with the same fields, types and defaults as frozen ``cls``.

    Tuples become lists (OmegaConf has no tuple nodes) and nested dataclasses are thawed recursively;
    subclass relations are kept so that a field declared as a base type accepts any thawed subclass.

    Args:
        cls: A (frozen) dataclass type.

    Returns:
        The thawed twin, cached so the same class always maps to the same twin.
    """
    if cls in _THAWED:
        return _THAWED[cls]
    hints = typing.get_type_hints(cls)
    own = set(inspect.get_annotations(cls))
    specs: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(cls):
        if f.name not in own:
            continue
        tp = _thaw_type(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
            if isinstance(default, tuple) or dataclasses.is_dataclass(default):
                spec = _factory(functools.partial(_thaw_value, default))
            else:
                spec = dataclasses.field(default=default)
        elif f.default_factory is not dataclasses.MISSING:
            spec = _factory(functools.partial(_thaw_call, f.default_factory))
        else:
            spec = dataclasses.field(default=typing.cast(Any, "???"))
        specs.append((f.name, tp, spec))
    bases = tuple(thaw(b) for b in cls.__bases__ if dataclasses.is_dataclass(b))
    twin = dataclasses.make_dataclass(cls.__name__, specs, bases=bases)
    # Importable under a name that says which class it thaws (see __getattr__ below): Hydra's joblib and
    # Ray launchers pickle the ConfigStore to their workers, and a class made at run time pickles by value,
    # which loses the dataclass field sentinels.
    twin.__module__ = __name__
    twin.__qualname__ = twin.__name__ = _THAW_PREFIX + f"{cls.__module__}.{cls.__qualname__}".replace(".", "__")
    _THAWED[cls] = twin
    return twin


_THAW_PREFIX = "Thawed__"


def __getattr__(name: str) -> type:
    """Module attributes ``Thawed__<module>__<Class>``: the thawed twin of that class (for unpickling)."""
    if not name.startswith(_THAW_PREFIX):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    *module, cls_name = name[len(_THAW_PREFIX) :].split("__")
    import importlib

    return thaw(getattr(importlib.import_module(".".join(module)), cls_name))


def _thaw_call(factory: Callable[[], Any]) -> Any:
    return _thaw_value(factory())


def _thaw_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        twin = thaw(type(value))
        return twin(**{f.name: _thaw_value(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, tuple | list):
        return [_thaw_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _thaw_value(v) for k, v in value.items()}
    return value
