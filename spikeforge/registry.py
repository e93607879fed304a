"""One small registry mechanism shared by every kind of named thing (STYLE.md, "Registries").

Each kind (surrogates, kernels, methods, losses, models, datasets) owns one :class:`Registry`
instance in one file; nothing else in the library switches on strings. A closed set of choices that
users do not extend (a neuron kind, a Yao cell) is a plain mapping in its owning module, read with the
same two functions the registries use: :func:`lookup_in` (an unknown name lists the choices) and
:func:`build_from` (a name or ``{"name": ..., **options}`` built, bad options named).
"""
from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Mapping
from typing import Any, Callable, Generic, TypeVar

__all__ = ["Registry", "build_from", "lookup_in", "option_names"]

T = TypeVar("T")
C = TypeVar("C")

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def option_names(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> list[str]:
    """The keyword options of ``fn`` in signature order, without ``skip`` and ``self``."""
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in _NAMED and p.name not in (*skip, "self")]


def lookup_in(kind: str, table: Mapping[str, C], name: str) -> C:
    """``table[name]``; an unknown name raises ``ValueError`` suggesting close names and listing all (sorted).

    Example:
        >>> lookup_in("window kind", {"quadrant": 1, "dilated": 2}, "dilate")
        Traceback (most recent call last):
        ...
        ValueError: window kind 'dilate' is not registered; did you mean: dilated? choose one of: dilated, quadrant
    """
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, got {type(name).__name__}")
    try:
        return table[name]
    except KeyError:
        names = sorted(table)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"did you mean: {', '.join(close)}? " if close else ""
        raise ValueError(f"{kind} {name!r} is not registered; {hint}choose one of: {', '.join(names)}") from None


def _pass_through(kind: str, obj: Any, options: Mapping[str, Any]) -> Any:
    """A callable that is not a name, unchanged; options with it raise."""
    if not callable(obj):
        raise TypeError(f"{kind} must be a name or a callable, got {type(obj).__name__}")
    if options:
        raise ValueError(f"{kind}: keyword arguments {sorted(options)} need a registered name, got a callable")
    return obj


def _valid_options(constructor: Callable[..., Any]) -> str:
    """``valid options: a, b`` from the constructor's signature (``**kw`` when it passes more on)."""
    try:
        params = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):
        return "its valid options cannot be read from its signature"
    names = option_names(constructor) + [f"**{p.name}" for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    return f"valid options: {', '.join(names) if names else 'none'}"


def build_from(kind: str, table: Mapping[str, Callable[..., T]], spec: str | Mapping[str, Any] | Any,
               **defaults: Any) -> T:
    """Build a thing of ``kind`` from ``table`` (:meth:`Registry.build` on a plain mapping; see there)."""
    if isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("name", None)
        if name is None:
            raise ValueError(f"{kind} mapping needs a 'name', got {dict(spec)}")
        options = {**defaults, **options}
    elif isinstance(spec, str):
        name, options = spec, dict(defaults)
    else:
        return _pass_through(kind, spec, defaults)
    constructor = lookup_in(kind, table, name)
    try:
        return constructor(**options)
    except TypeError as err:
        raise ValueError(f"{kind} {name!r}: bad option in {options}: {err}; {_valid_options(constructor)}") from None


class Registry(Generic[T]):
    """Maps names to constructors.

    Args:
        kind: what the registry holds, used in error messages (``"surrogate"``, ``"kernel"``).

    Example:
        >>> SURROGATES = Registry("surrogate")
        >>> @SURROGATES.register("atan")
        ... class ATan: ...
        >>> SURROGATES.get("atan")  # doctest: +SKIP
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str, obj: Callable[..., T] | None = None):
        """Register ``obj`` under ``name``; usable as a decorator. Duplicate names raise."""

        def add(target: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = target
            return target

        return add if obj is None else add(obj)

    def lookup(self, name: str) -> Callable[..., T]:
        """The constructor registered under ``name`` (not called)."""
        return lookup_in(self.kind, self._items, name)

    def get(self, name: str | Any, **kwargs: Any) -> T:
        """Build the thing registered under ``name`` with ``kwargs``.

        A non-string callable is passed through unchanged (e.g. a user's own surrogate). It is :meth:`build`
        (same errors: an option the constructor rejects is a ``ValueError`` naming the valid ones).
        """
        return self.build(name, **kwargs)

    def build(self, spec: str | Mapping[str, Any] | Any, **defaults: Any) -> T:
        """Build a thing from a spec, as recipes and options give it.

        Args:
            spec: a registered name (``"atan"``); a mapping with a ``"name"`` key and the options
                (``{"name": "atan", "alpha": 2.0}``); or a callable, e.g. an instance, returned unchanged.
            **defaults: options used unless the mapping gives them.

        Returns:
            ``constructor(**{**defaults, **options})`` of the registered name, or the callable ``spec``.

        Raises:
            ValueError: an unknown name (suggesting close ones, listing all); a mapping without ``"name"``;
                options with a callable ``spec``; options the constructor rejects (its ``TypeError``), naming
                the kind, the name, the options given and the valid option names (from its signature).
            TypeError: ``spec`` is neither a name, a mapping nor a callable.

        Example:
            >>> SURROGATES = Registry("surrogate")
            >>> @SURROGATES.register("atan")
            ... class ATan:
            ...     def __init__(self, alpha: float = 2.0) -> None:
            ...         self.alpha = alpha
            >>> SURROGATES.build({"name": "atan", "alpha": 4.0}).alpha
            4.0
            >>> SURROGATES.build("atan", alpha=3.0).alpha
            3.0
            >>> SURROGATES.build({"name": "atan", "beta": 1.0})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: surrogate 'atan': bad option in {'beta': 1.0}: ...; valid options: alpha
        """
        return build_from(self.kind, self._items, spec, **defaults)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell wildcard ``pattern``."""
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
