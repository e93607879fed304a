"""Training methods (``get_method(name, **kw)``): ``bptt``, ``ssf``, ``dsr`` — same forward, different backward."""
from __future__ import annotations

from typing import Any

from spikeforge.methods import bptt as _bptt  # noqa: F401  (registers bptt)
from spikeforge.methods import dsr as _dsr  # noqa: F401  (registers dsr)
from spikeforge.methods import ssf as _ssf  # noqa: F401  (registers ssf)
from spikeforge.methods.base import Method
from spikeforge.methods.dual import Dual
from spikeforge.methods.registry import METHODS

__all__ = ["METHODS", "Method", "Dual", "get_method", "list_methods"]


def get_method(name: str | Method, **kwargs: Any) -> Method:
    """The method registered as ``name`` (``bptt``, ``ssf``, ``dsr``); a :class:`Method` passes through."""
    if isinstance(name, Method):
        if kwargs:
            raise ValueError(f"get_method: options {sorted(kwargs)} need a method name, got the instance {name!r}")
        return name
    try:
        return METHODS.get(name, **kwargs)
    except TypeError as err:
        raise ValueError(f"method {name!r}: bad option in {kwargs}: {err}") from None


def list_methods() -> list[str]:
    return METHODS.names()
