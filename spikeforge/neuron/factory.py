"""Build a neuron from a config mapping (recipes): the ``NEURONS`` kinds and :func:`make_node`."""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from spikeforge.neuron.node import IFNode, LIFNode, PLIFNode
from spikeforge.neuron.surrogate import SURROGATES
from spikeforge.registry import build_from

__all__ = ["NEURONS", "make_node"]

#: neuron kind (a recipe's ``model.neuron.kind``) -> its class
NEURONS: dict[str, type[nn.Module]] = {"if": IFNode, "lif": LIFNode, "plif": PLIFNode}


def make_node(config: Mapping[str, Any] | None = None, **overrides: Any) -> nn.Module:
    """A neuron from ``{"kind": "lif", "decay": 0.9, "surrogate": {"name": "atan", "alpha": 2.0}, ...}``.

    ``kind`` names a ``NEURONS`` entry (``if``, ``lif``, ``plif``); ``surrogate`` is a name, a mapping
    with ``name`` and its parameters, or a callable; every other key is passed to the neuron's constructor.

    Raises:
        ValueError: an unknown kind or surrogate (listing the choices), or an option its constructor rejects.
    """
    opts = dict(config or {})
    opts.update(overrides)
    kind = opts.pop("kind", "lif")
    sg = opts.pop("surrogate", None)
    if sg is not None:
        opts["surrogate_function"] = SURROGATES.build(sg)
    return build_from("neuron", NEURONS, kind, **opts)
