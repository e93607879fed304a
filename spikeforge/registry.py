"""One small registry mechanism shared by every kind of named thing (STYLE.md, "Registries").

Each kind (surrogates, kernels, methods, losses, models, datasets) owns one :class:`Registry`
instance in one file; nothing else in the library switches on strings.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any, Callable, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


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
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}")
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
            hint = f"did you mean: {', '.join(close)}? " if close else ""
            raise ValueError(
                f"{self.kind} {name!r} is not registered; {hint}choose one of: {', '.join(self.names())}"
            ) from None

    def get(self, name: str | Any, **kwargs: Any) -> T:
        """Build the thing registered under ``name`` with ``kwargs``.

        A non-string callable is passed through unchanged (e.g. a user's own surrogate).
        """
        if not isinstance(name, str):
            if callable(name):
                if kwargs:
                    raise ValueError(f"{self.kind}: keyword arguments {sorted(kwargs)} need a registered name, got a callable")
                return name
            raise TypeError(f"{self.kind} must be a name or a callable, got {type(name).__name__}")
        return self.lookup(name)(**kwargs)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell wildcard ``pattern``."""
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
