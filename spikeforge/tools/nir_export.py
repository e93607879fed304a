"""NIR export: one NIR node per traced layer, BN folded, neurons discretised with ``dt`` (see :mod:`spikeforge.tools.nir`)."""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import singledispatch
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from spikeforge.layers import (
    BatchNormTB,
    SEWConnect,
    TimeDistributed,
    TimeFixedDropout,
    VotingLayer,
)
from spikeforge.neuron.dsr import DSRNode
from spikeforge.neuron.node import BaseNode, PLIFNode, Readout
from spikeforge.tools.trace import GRAPH_INPUT, LayerCall, trace_layers

__all__ = ["export_nir", "layer_to_nir", "neuron_metadata", "nir_package", "to_nir_graph"]

NodeList = list[tuple[str, Any]]  # (key suffix, nir node) in chain order
_DROP = (nn.Identity, nn.Dropout, TimeFixedDropout)


def nir_package() -> ModuleType:
    """The ``nir`` package, imported on first use (its absence raises naming the pin)."""
    try:
        import nir
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError("spikeforge.tools.nir needs the 'nir' package (pip install nir==1.0.8)") from err
    return nir


def _arr(x: Tensor | float, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    return np.full(shape, float(a)) if shape is not None else a


def _unsupported(name: str, module: nn.Module, why: str) -> ValueError:
    return ValueError(f"export_nir: layer {name!r} ({type(module).__name__}) cannot be expressed in NIR 1.0: {why}")


@singledispatch
def layer_to_nir(module: nn.Module, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    """NIR nodes for one (leaf) layer given its per-sample input shape; unknown types raise naming the layer."""
    raise _unsupported(name, module, "no NIR mapping for this module type")


@layer_to_nir.register
def _(module: nn.Linear, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    nir = nir_package()
    w = _arr(module.weight)
    return [("", nir.Affine(weight=w, bias=_arr(module.bias)) if module.bias is not None else nir.Linear(weight=w))]


def _conv(module: nn.Conv1d | nn.Conv2d, name: str, in_shape: tuple[int, ...]) -> NodeList:
    nir = nir_package()
    if module.padding_mode != "zeros":
        raise _unsupported(name, module, f"padding_mode={module.padding_mode!r} (NIR pads with zeros)")
    bias = _arr(module.bias) if module.bias is not None else np.zeros(module.out_channels)
    spatial = tuple(in_shape[1:])
    if isinstance(module, nn.Conv1d):
        return [("", nir.Conv1d(input_shape=spatial[0], weight=_arr(module.weight), stride=module.stride[0],
                                padding=module.padding if isinstance(module.padding, str) else module.padding[0],
                                dilation=module.dilation[0], groups=module.groups, bias=bias))]
    return [("", nir.Conv2d(input_shape=spatial, weight=_arr(module.weight), stride=module.stride,
                            padding=module.padding, dilation=module.dilation, groups=module.groups, bias=bias))]


layer_to_nir.register(nn.Conv1d, lambda m, name, s, dt: _conv(m, name, s))
layer_to_nir.register(nn.Conv2d, lambda m, name, s, dt: _conv(m, name, s))


@layer_to_nir.register
def _(module: nn.AvgPool2d, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    pad = nn.modules.utils._pair(module.padding)
    if module.ceil_mode or module.divisor_override is not None or (not module.count_include_pad and any(pad)):
        raise _unsupported(name, module, "ceil_mode, divisor_override or count_include_pad=False")
    stride = module.stride if module.stride is not None else module.kernel_size
    nir = nir_package()
    return [("", nir.AvgPool2d(kernel_size=np.array(nn.modules.utils._pair(module.kernel_size)),
                               stride=np.array(nn.modules.utils._pair(stride)), padding=np.array(pad)))]


@layer_to_nir.register
def _(module: nn.AdaptiveAvgPool2d, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    size = nn.modules.utils._pair(module.output_size)
    size = tuple(s if o is None else o for s, o in zip(in_shape[1:], size))
    if any(i % o for i, o in zip(in_shape[1:], size)):
        raise _unsupported(name, module, f"adaptive pooling {tuple(in_shape[1:])} -> {size} has unequal windows")
    k = np.array([i // o for i, o in zip(in_shape[1:], size)])
    return [("", nir_package().AvgPool2d(kernel_size=k, stride=k, padding=np.zeros(2, dtype=int)))]


@layer_to_nir.register
def _(module: nn.Flatten, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    if module.start_dim < 1:
        raise _unsupported(name, module, f"start_dim={module.start_dim} flattens the batch")
    end = module.end_dim if module.end_dim < 0 else module.end_dim - 1
    return [("", nir_package().Flatten(input_type={"input": np.array(in_shape)}, start_dim=module.start_dim - 1, end_dim=end))]


@layer_to_nir.register
def _(module: VotingLayer, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    v, n = module.voting_size, in_shape[-1]
    weight = np.kron(np.eye(n // v), np.full((1, v), 1.0 / v))  # [K, K·v]: each class averages its group
    return [("", nir_package().Linear(weight=weight))]


@layer_to_nir.register
def _(module: nn.MaxPool1d, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    raise _unsupported(name, module, "max-pool has no NIR node")


layer_to_nir.register(nn.MaxPool2d, layer_to_nir.registry[nn.MaxPool1d])
layer_to_nir.register(nn.MaxPool3d, layer_to_nir.registry[nn.MaxPool1d])
layer_to_nir.register(nn.AdaptiveMaxPool2d, layer_to_nir.registry[nn.MaxPool1d])


@layer_to_nir.register
def _(module: TimeDistributed, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    inner = module.module
    parts = list(inner.named_children()) if isinstance(inner, nn.Sequential) else [("", inner)]
    nodes, shape = [], in_shape
    dtype = next((p.dtype for p in module.parameters()), torch.float32)
    for sub, m in parts:
        if not isinstance(m, _DROP):
            nodes += [(".".join(p for p in (sub, key) if p), node)
                      for key, node in layer_to_nir(m, f"{name}.{sub}" if sub else name, shape, dt)]
        with torch.no_grad():
            shape = tuple(m(torch.zeros(1, *shape, dtype=dtype)).shape[1:])
    return nodes


def neuron_metadata(module: BaseNode) -> dict[str, Any]:
    """What NIR does not hold but an exact re-import needs: firing rule and the PLIF parameter."""
    meta: dict[str, Any] = {"spikeforge_kind": type(module).__name__, "strict": int(module.spec.strict),
                            "detach_reset": int(module.spec.detach_reset)}
    if isinstance(module, PLIFNode):
        meta.update(plif_w=float(module.w.detach()), decay_input=int(module.decay_input))
    return meta


@layer_to_nir.register
def _(module: BaseNode, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    if module.v_reset is None:
        raise _unsupported(name, module, "soft reset (V − V_th); NIR neurons reset to v_reset")
    if module.return_v:
        raise _unsupported(name, module, "return_v=True (the potential as a second output)")
    lam, kappa = (float(c.detach()) for c in module.coefficients(torch.zeros((), dtype=torch.float64)))
    vth = float(module.threshold(torch.zeros((), dtype=torch.float64)).detach())
    nir, meta = nir_package(), neuron_metadata(module)
    thr, reset = _arr(vth, in_shape), _arr(module.v_reset, in_shape)
    if lam == 1.0:
        return [("", nir.IF(r=_arr(kappa / dt, in_shape), v_threshold=thr, v_reset=reset, metadata=meta))]
    return [("", nir.LIF(tau=_arr(dt / (1 - lam), in_shape), r=_arr(kappa / (1 - lam), in_shape),
                         v_leak=_arr(module.v_reset, in_shape), v_threshold=thr, v_reset=reset, metadata=meta))]


@layer_to_nir.register
def _(module: DSRNode, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    raise _unsupported(name, module, "DSR neurons fire at alpha*V_th and emit V_th-valued spikes with soft reset")


@layer_to_nir.register
def _(module: Readout, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    if module.output != "sequence":
        raise _unsupported(name, module, "the readout's final-potential output (NIR nodes emit sequences)")
    nir, lam, kappa = nir_package(), module.decay, module.input_gain
    if lam == 1.0:
        return [("", nir.I(r=_arr(kappa / dt, in_shape)))]
    return [("", nir.LI(tau=_arr(dt / (1 - lam), in_shape), r=_arr(kappa / (1 - lam), in_shape),
                        v_leak=np.zeros(in_shape)))]


@layer_to_nir.register
def _(module: SEWConnect, name: str, in_shape: tuple[int, ...], dt: float) -> NodeList:
    if module.connect != "add":
        raise _unsupported(name, module, f"SEW connect {module.connect.upper()} is not a sum of edges")
    return [("", nir_package().Scale(scale=np.ones(in_shape)))]


def _fold_bn(node: Any, bn: BatchNormTB, name: str) -> Any:
    """The conv/linear ``node`` followed by ``bn`` (eval statistics) as one node."""
    if not bn.track_running_stats or bn.running_mean is None:
        raise _unsupported(name, bn, "BN without running statistics cannot be folded")
    nir = nir_package()
    std = np.sqrt(_arr(bn.running_var) + bn.eps)
    gamma = _arr(bn.weight) if bn.affine else np.ones_like(std)
    beta = _arr(bn.bias) if bn.affine else np.zeros_like(std)
    scale = gamma / std
    bias = getattr(node, "bias", np.zeros_like(std))
    bias = (bias - _arr(bn.running_mean)) * scale + beta
    weight = node.weight * scale.reshape(-1, *([1] * (node.weight.ndim - 1)))
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        shape = node.input_shape if isinstance(node, nir.Conv1d) else tuple(node.input_shape)
        return type(node)(input_shape=shape, weight=weight, stride=node.stride, padding=node.padding,
                          dilation=node.dilation, groups=node.groups, bias=bias)
    return nir.Affine(weight=weight, bias=bias)


def to_nir_graph(model: nn.Module, dt: float = 1.0, input_shape: tuple[int, ...] | None = None):
    """The ``nir.NIRGraph`` of ``model`` (see the module docstring); ``input_shape`` is one sample's shape.

    A zoo model (with ``forward_features``) is traced up to its per-step outputs; any other module as ``model(x)``
    on ``[T, B, *input_shape]``. The model's mode is restored after tracing (it is traced in eval mode).
    """
    nir = nir_package()
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"export_nir: dt must be a finite time step > 0, got {dt!r}")
    shape = input_shape or tuple(getattr(model, "input_shape", ()) or ())
    if not shape or any(s is None for s in shape):
        raise ValueError(f"export_nir: input_shape (one sample's shape, e.g. (2, 34, 34)) is needed, got {shape or None}")
    shape = tuple(int(s) for s in shape)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.zeros(2, 1, *shape, dtype=dtype)
    run: Callable[[Tensor], Tensor] = getattr(model, "forward_features", model)
    was_training = model.training
    model.eval()
    try:
        calls, out_index = trace_layers(run, model, x)
    finally:
        model.train(was_training)
    consumers = [0] * len(calls)
    for call in calls:
        for src in call.inputs:
            if src != GRAPH_INPUT:
                consumers[src] += 1
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape))}
    heads: dict[int, str] = {}  # call -> first node key (edges go in here)
    tails: dict[int, str] = {GRAPH_INPUT: "input"}  # call -> node key whose output is the call's output
    edges: list[tuple[str, str]] = []
    for i, call in enumerate(calls):
        if isinstance(call.module, _DROP):
            tails[i] = tails[call.inputs[0]]
            continue
        if isinstance(call.module, BatchNormTB):
            _fold_into_producer(call, calls, consumers, nodes, tails, i)
            continue
        chain = layer_to_nir(call.module, call.name, call.in_shape, float(dt))
        if not chain:  # e.g. a TimeDistributed of dropout only
            tails[i] = tails[call.inputs[0]]
            continue
        keys = [f"{call.name}.{suffix}" if suffix else call.name for suffix, _ in chain]
        for key, (_, node) in zip(keys, chain):
            nodes[key] = node
        edges += list(itertools.pairwise(keys))
        edges += [(tails[src], keys[0]) for src in call.inputs]
        heads[i], tails[i] = keys[0], keys[-1]
    out_shape = calls[out_index].out_shape if out_index != GRAPH_INPUT else shape
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    edges.append((tails[out_index], "output"))
    meta = {"exporter": "spikeforge", "dt": float(dt), "discretisation": "forward Euler, v[t] = v + dt * dv/dt",
            "T": int(getattr(model, "T", 0)),
            "output": "per-step outputs [T, B, ...]; a zoo model's logits are their readout (readout_decay)",
            "readout_decay": float(model.readout.decay) if isinstance(getattr(model, "readout", None), Readout) else 1.0}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)


def _fold_into_producer(call: LayerCall, calls: list[LayerCall], consumers: list[int], nodes: dict[str, Any],
                        tails: dict[int, str], i: int) -> None:
    nir, src = nir_package(), call.inputs[0]
    prev = nodes.get(tails[src]) if src != GRAPH_INPUT else None
    if type(call.module) is not BatchNormTB:
        raise _unsupported(call.name, call.module, "only plain BN over T·B folds into a conv/linear")
    if not isinstance(prev, (nir.Conv1d, nir.Conv2d, nir.Affine, nir.Linear)) or consumers[src] != 1:
        after = calls[src].name if src != GRAPH_INPUT else "the input"
        raise _unsupported(call.name, call.module, f"BN follows {after!r}, not directly a conv/linear, so it cannot be folded")
    nodes[tails[src]] = _fold_bn(prev, call.module, call.name)
    tails[i] = tails[src]


def export_nir(model: nn.Module, path: str | Path, dt: float = 1.0, input_shape: tuple[int, ...] | None = None) -> Any:
    """Write ``model`` as a NIR graph to ``path`` (HDF5) and return the ``nir.NIRGraph``.

    Args:
        model: a zoo model (exported up to its per-step outputs) or any module of spikeforge layers
            taking ``[T, B, *input_shape]``.
        path: the ``.nir`` file to write.
        dt: the time step (in the units NIR's τ will carry) used to turn the discrete neurons into
            NIR's continuous-time ones; 1.0 = τ in steps.
        input_shape: one sample's shape; default the zoo model's ``input_shape``.

    Raises:
        ValueError: a layer NIR 1.0 cannot express (the message names it), a bad ``dt`` or ``input_shape``.
    """
    graph = to_nir_graph(model, dt, input_shape)
    nir_package().write(str(path), graph)
    return graph
