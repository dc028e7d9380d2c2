"""The one error path: a mistake in the input ends as one line and exit status 2; a bug keeps its traceback.

What counts as a mistake in the input (:data:`USER_ERRORS`): :class:`~carbonsim._schema.ConfigError` (a
configuration value), :class:`~carbonsim.data.errors.DataError` (a data file, or a request for one) and
:class:`~carbonsim.learn.checkpoint.CheckpointError` (a trained policy's file), wherever they are raised,
and everything Hydra rejects while it composes the configuration from the command line (an unknown option,
a value of the wrong type, an override it cannot parse, a run folder it cannot create). Each is printed as

    carbonsim: <field or file>: <what was expected and what was found>

on stderr, and the command exits with status 2 (:data:`EXIT_BAD_INPUT`). A sweep records such an error in
the job's ``failed.json`` and goes on; the sweep then exits with status 1 (:data:`EXIT_JOBS_NOT_DONE`).
Any other exception is a bug in carbonsim and keeps Hydra's traceback. ``HYDRA_FULL_ERROR=1`` or
``CARBONSIM_DEBUG=1`` shows the full traceback of every error, mistakes included. ``docs/errors.md`` lists
the exit statuses.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

from carbonsim._schema import ConfigError
from carbonsim.data.errors import DataError
from carbonsim.learn.checkpoint import CheckpointError

#: Exceptions that describe a mistake in the user's input, not a bug.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, CheckpointError)

EXIT_BAD_INPUT = 2
"""Exit status of a command whose input (command line, configuration, data file, checkpoint) is wrong."""

EXIT_JOBS_NOT_DONE = 1
"""Exit status of a sweep or experiment in which a job failed or is missing (the tables are written)."""

DEBUG_VARIABLES = ("HYDRA_FULL_ERROR", "CARBONSIM_DEBUG")
"""Environment variables that, set to 1, turn the one-line messages back into full tracebacks."""


def debugging() -> bool:
    """Whether the user asked for full tracebacks (:data:`DEBUG_VARIABLES`)."""
    return any(os.environ.get(name) == "1" for name in DEBUG_VARIABLES)


def one_line(exc: BaseException) -> str:
    """The message of an exception on one line (its lines joined with ``; ``)."""
    text = str(exc) if isinstance(exc, USER_ERRORS) else _hydra_message(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a mistake in the input (:data:`USER_ERRORS` or a Hydra composition error)."""
    from hydra.errors import CompactHydraException, MissingConfigException

    return isinstance(exc, (*USER_ERRORS, CompactHydraException, MissingConfigException))


def report(prog: str, exc: BaseException) -> None:
    """Prints ``<prog>: <message on one line>`` to stderr."""
    print(f"{prog}: {one_line(exc)}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def exit_on_user_error(prog: str) -> Iterator[None]:
    """Turns a :data:`USER_ERRORS` exception raised inside into one line on stderr and exit status 2."""
    try:
        yield
    except USER_ERRORS as exc:
        if debugging():
            raise
        report(prog, exc)
        raise SystemExit(EXIT_BAD_INPUT) from None


class _State:
    """Whether carbonsim's own code has started (before it, every error is Hydra composing the input)."""

    started = False


def mark_started() -> None:
    """Called by the task (and the sweep's start): from now on an unexpected exception is a bug."""
    _State.started = True


def run_hydra_app(prog: str, app: Callable[[], Any]) -> None:
    """Runs a ``hydra.main`` application with carbonsim's error path instead of Hydra's error printing.

    Hydra catches every exception of composing the configuration and of the task, prints a sanitised
    traceback and exits with status 1. Here, while ``app`` runs, Hydra's reporting function is wrapped:
    a mistake in the input (:func:`is_user_error`, or any exception before carbonsim's own code started,
    such as a run folder that cannot be created) prints one line and exits with status 2; anything else
    goes to Hydra's own reporting (a traceback). ``HYDRA_FULL_ERROR=1``/``CARBONSIM_DEBUG=1`` leave
    Hydra's behaviour untouched.

    Args:
        prog: Name that starts each message (``carbonsim``, or the script's name).
        app: The decorated ``hydra.main`` function, called without arguments.
    """
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report
    _State.started = False

    def run_and_report(func: Callable[[], Any]) -> Any:
        if debugging():
            return original(func)
        try:
            return func()
        except Exception as exc:
            if is_user_error(exc) or not _State.started:
                report(prog, exc)
                raise SystemExit(EXIT_BAD_INPUT) from None
            return original(functools_raise(exc))

    hydra_utils.run_and_report = run_and_report
    try:
        app()
    finally:
        hydra_utils.run_and_report = original


def functools_raise(exc: BaseException) -> Callable[[], Any]:
    """A function that raises ``exc`` (for handing an exception caught here on to Hydra's reporting)."""

    def again() -> Any:
        raise exc

    return again


# --- Hydra's messages on one line ----------------------------------------------------------------------------

_CONVERT = re.compile(r"Value '(?P<value>.*)' of type '\w+' could not be converted to (?P<type>\w+)")
_BOOL = re.compile(r"Value '(?P<value>.*)' is not a valid bool")
_WRONG_NODE = re.compile(r"Invalid type assigned: \w+ is not a subclass of (?P<cls>\S+?)\. value: (?P<value>.*)")
_UNKNOWN_KEY = re.compile(r"Key '(?P<key>[^']*)' (?:not in|is not in struct)")
_TYPE_WORDS = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def _hydra_message(exc: BaseException) -> str:
    """``<field>: expected ..., got ...`` for the errors Hydra raises while composing a configuration."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(exc, MissingConfigException) and exc.options:
        group, _, name = (exc.missing_cfg_file or "").rpartition("/")
        return f"{group or 'config'}: expected one of {', '.join(exc.options)}, got {name!r}"
    if isinstance(exc, OverrideParseException):
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"command line: expected overrides such as key=value, got an unparsable one ({first})"
    cause = exc.__cause__
    key = getattr(cause, "full_key", None)
    if cause is not None and key:
        detail = str(cause).splitlines()[0]
        if m := _CONVERT.match(detail):
            word = _TYPE_WORDS.get(m["type"], m["type"].lower())
            return f"{key}: expected {word}, got {m['value']!r}"
        if m := _BOOL.match(detail):
            return f"{key}: expected true or false, got {m['value']!r}"
        if (m := _WRONG_NODE.match(detail)) and key.endswith("]") and m["value"] == "{}":
            return f"{key}: expected an element of the list, got an index past its end"
        if m := _WRONG_NODE.match(detail):
            schema = m["cls"].rsplit("__", 1)[-1]
            return f"{key}: expected a mapping (the fields of {schema}), got {m['value']!r}"
        if _UNKNOWN_KEY.match(detail):
            return f"{key}: expected a known key, got an unknown one (to add a key, prefix the override with +)"
        return f"{key}: {detail}"
    if isinstance(exc, AssertionError) and "Unexpected type for root" in str(exc):
        # OmegaConf's answer to setting a key below a null node, e.g. experiment.run=3 without +experiment=...
        return "command line: expected a key below a configured node, got a key below a null one (experiment.*?)"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"command line: {exc}"


__all__ = [
    "DEBUG_VARIABLES",
    "EXIT_BAD_INPUT",
    "EXIT_JOBS_NOT_DONE",
    "USER_ERRORS",
    "debugging",
    "exit_on_user_error",
    "is_user_error",
    "mark_started",
    "one_line",
    "report",
    "run_hydra_app",
]
