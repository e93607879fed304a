"""Check a config section's options against the signature of the builder they go to.

Used for the optimizer and schedule sections (:mod:`spikeforge.train.optim`): an unknown key names the
section and lists the valid keys, and a value of the wrong type names the key, instead of a builder's
internal ``TypeError`` (``_adam() got an unexpected keyword argument``) or torch's own comparison error.
"""
from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from spikeforge.registry import option_names

__all__ = ["check_options", "option_names"]


def _describe(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if hint is float:
        return "a number"
    if hint is int:
        return "an integer"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    if typing.get_origin(hint) in (tuple, list):
        return f"a list of {len(args) if args and args[-1] is not Ellipsis else 'any number of'} numbers"
    return getattr(hint, "__name__", str(hint))


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if args and args[-1] is not Ellipsis and len(args) != len(value):
            return False
        return all(_matches(v, args[0]) for v in value) if args else True
    return True  # a type this check does not know: the builder decides


def check_options(what: str, section: str, fn: Callable[..., Any], options: dict[str, Any],
                  skip: tuple[str, ...] = ()) -> None:
    """Raise if ``options`` do not fit ``fn``'s keyword parameters (``skip`` excluded).

    Args:
        what: the thing built, first in the message (``"optimizer 'adam'"``).
        section: the config section, to name keys as ``section.key``.
        fn: the builder; its type hints give the types checked.
        options: the keys and values it is about to get.
        skip: parameters not set from the config (``params``, ``epochs``).

    Raises:
        ValueError: an unknown key (listing the valid ones), a missing required key, or a value of the wrong type.
    """
    sig = inspect.signature(fn)
    valid = option_names(fn, skip)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in options if k not in valid]
    if unknown and not takes_any:
        raise ValueError(f"{what} has no option {', '.join(f'{section}.{k}' for k in unknown)}; "
                         f"valid: {', '.join(f'{section}.{k}' for k in valid)}")
    missing = [n for n in valid if sig.parameters[n].default is inspect.Parameter.empty and n not in options]
    if missing:
        raise ValueError(f"{what} needs {', '.join(f'{section}.{k}' for k in missing)}")
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):  # an annotation that cannot be evaluated here: leave types to the builder
        hints = {}
    for key, value in options.items():
        if key in hints and not _matches(value, hints[key]):
            raise ValueError(f"{what}: {section}.{key} must be {_describe(hints[key])}, got {value!r}")
