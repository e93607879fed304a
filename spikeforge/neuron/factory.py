"""Build a neuron from a config mapping (recipes): ``NEURONS`` registry and :func:`make_node`."""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from spikeforge.neuron import surrogate as _surrogate
from spikeforge.neuron.node import IFNode, LIFNode, PLIFNode
from spikeforge.registry import Registry

__all__ = ["NEURONS", "make_node"]

NEURONS: Registry[nn.Module] = Registry("neuron")
NEURONS.register("if", IFNode)
NEURONS.register("lif", LIFNode)
NEURONS.register("plif", PLIFNode)


def make_node(config: Mapping[str, Any] | None = None, **overrides: Any) -> nn.Module:
    """A neuron from ``{"kind": "lif", "decay": 0.9, "surrogate": {"name": "atan", "alpha": 2.0}, ...}``.

    ``kind`` names a ``NEURONS`` entry (``if``, ``lif``, ``plif``); ``surrogate`` is a name or a mapping
    with ``name`` and its parameter; every other key is passed to the neuron's constructor.
    """
    opts = dict(config or {})
    opts.update(overrides)
    kind = opts.pop("kind", "lif")
    sg = opts.pop("surrogate", None)
    if isinstance(sg, Mapping):
        sg = dict(sg)
        if "name" not in sg:
            raise ValueError(f"neuron surrogate mapping needs a 'name', got {sg}")
        sg = _surrogate.get(sg.pop("name"), **sg)
    if sg is not None:
        opts["surrogate_function"] = sg
    try:
        return NEURONS.get(kind, **opts)
    except TypeError as err:
        raise ValueError(f"neuron {kind!r}: bad option in {opts}: {err}") from None
