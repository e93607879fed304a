"""Build a registered thing from a recipe-style spec: a name, a mapping with ``name``, or an instance."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spikeforge.registry import Registry

__all__ = ["from_spec"]


def from_spec(registry: Registry, spec: Any, base: type) -> Any:
    """``registry.get(spec)`` for a name, ``registry.get(name, **rest)`` for a mapping; a ``base`` instance passes."""
    if isinstance(spec, base):
        return spec
    if isinstance(spec, Mapping):
        opts = dict(spec)
        if "name" not in opts:
            raise ValueError(f"{registry.kind} mapping needs a 'name', got {dict(spec)}")
        return registry.get(opts.pop("name"), **opts)
    return registry.get(spec)
