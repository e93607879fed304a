"""Module-level data-flow trace of a spikeforge network (used by the NIR export).

One forward pass on an example input with forward hooks on the network's *layers*: every module that
maps whole ``[T, B, ...]`` sequences (``TimeDistributed``, neurons, BN over T·B, SEW connects,
dropout, voting, the readout) and every other leaf module. Each call records which earlier call (or
the graph input) produced each of its tensor inputs, matched by tensor identity, so the trace is the
network's graph with residual branches and additions as they really run. An operation written in a
``forward`` between layers (``x.flatten(2)``, ``a + b``) produces a tensor no layer made: the trace
raises naming the layer that received it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from spikeforge.layers import (
    BatchNormTB,
    SEWConnect,
    TimeDistributed,
    TimeFixedDropout,
    VotingLayer,
)
from spikeforge.neuron.node import BaseNode, Readout

__all__ = ["GRAPH_INPUT", "LayerCall", "trace_layers"]

GRAPH_INPUT = -1
#: modules treated as one layer (their children are not traced separately)
_LAYER_TYPES: tuple[type, ...] = (TimeDistributed, BaseNode, Readout, BatchNormTB, SEWConnect, TimeFixedDropout,
                                  VotingLayer)


@dataclass
class LayerCall:
    """One layer call: ``inputs`` are producer indices (``GRAPH_INPUT`` for the model input);
    shapes are per sample, without T and B."""

    name: str
    module: nn.Module
    inputs: list[int]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def _layers(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(module, _LAYER_TYPES) or not any(True for _ in module.children()):
        return [(prefix, module)] if prefix else []
    found = []
    for name, child in module.named_children():
        found += _layers(child, f"{prefix}.{name}" if prefix else name)
    return found


def trace_layers(run: Any, model: nn.Module, x: Tensor) -> tuple[list[LayerCall], int]:
    """Run ``run(x)`` (a callable using ``model``) with hooks on ``model``'s layers.

    Args:
        run: the forward to trace, e.g. ``model`` or ``model.forward_features``.
        model: the module whose layers are hooked.
        x: ``[T, B, ...]`` example input.

    Returns:
        ``(calls, output)``: the calls in execution order and the index of the call that produced the
        result (``GRAPH_INPUT`` when the input passes through unchanged).

    Raises:
        ValueError: a layer received a tensor made outside any layer, a layer ran twice (shared
            weights), a layer returned something other than one tensor, or the result was made outside.
    """
    producers: dict[int, int] = {id(x): GRAPH_INPUT}
    keep: list[Tensor] = [x]  # holds every traced tensor alive, so that no id is reused during the pass
    calls: list[LayerCall] = []
    seen: set[str] = set()

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if name in seen:
                raise ValueError(f"export: layer {name!r} runs more than once per forward (shared weights); "
                                 "a NIR graph needs one node per call")
            seen.add(name)
            tensors = [t for t in inputs if isinstance(t, Tensor)]
            if not isinstance(output, Tensor):
                raise ValueError(f"export: layer {name!r} ({type(module).__name__}) returns a "  # noqa: TRY004
                                 f"{type(output).__name__}, not one [T, B, ...] tensor")
            srcs = []
            for t in tensors:
                if id(t) not in producers:
                    raise ValueError(f"export: the input of layer {name!r} ({type(module).__name__}) is computed "
                                     "outside any layer (a tensor operation in a forward); NIR export follows layers only")
                srcs.append(producers[id(t)])
            producers[id(output)] = len(calls)
            keep.append(output)
            calls.append(LayerCall(name, module, srcs, tuple(tensors[0].shape[2:]) if tensors else (),
                                   tuple(output.shape[2:])))
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in _layers(model)]
    try:
        with torch.no_grad():
            out = run(x)
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, Tensor) or id(out) not in producers:
        raise ValueError("export: the network's result is computed outside any layer (a tensor operation in a forward)")
    return calls, producers[id(out)]
