"""spikeforge: train deep spiking neural networks directly and fast on PyTorch.

The names reached for first, importable from here (loaded on first use, so ``import spikeforge`` stays light):

- ``create_model(name, num_classes=None, method="bptt", **kw)``, ``list_models(pattern)``: the model zoo
- ``get_method("bptt" | "ssf" | "dsr", **options)``, ``list_methods()``: how gradients flow
- ``get_loss(name, **options)``: ``ce``, ``mse_onehot``, ``tet``, ``tet_ce``, ``mpd_ding2019``
- ``IFNode``, ``LIFNode``, ``PLIFNode``, ``Readout``: spiking neurons, ``[T, B, ...] -> [T, B, ...]``
- ``create_dataset(name, root, split)``, ``list_datasets()``: data sets

Example:
    >>> from spikeforge import create_model
    >>> model = create_model("digits_snn", method="ssf")  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access)
_EXPORTS = {
    "create_model": "spikeforge.models", "list_models": "spikeforge.models",
    "get_method": "spikeforge.methods", "list_methods": "spikeforge.methods",
    "get_loss": "spikeforge.losses",
    "IFNode": "spikeforge.neuron", "LIFNode": "spikeforge.neuron", "PLIFNode": "spikeforge.neuron",
    "Readout": "spikeforge.neuron",
    "create_dataset": "spikeforge.data", "list_datasets": "spikeforge.data",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from spikeforge.data import create_dataset, list_datasets
    from spikeforge.losses import get_loss
    from spikeforge.methods import get_method, list_methods
    from spikeforge.models import create_model, list_models
    from spikeforge.neuron import IFNode, LIFNode, PLIFNode, Readout


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spikeforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
