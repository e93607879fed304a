"""NIR import: a NIR graph run with spikeforge layers (see :mod:`spikeforge.tools.nir`)."""
from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from spikeforge.layers import TimeDistributed
from spikeforge.neuron.node import IFNode, LIFNode, PLIFNode, Readout
from spikeforge.tools.nir_export import nir_package

__all__ = ["NIRNetwork", "import_nir"]


class _Scale(nn.Module):
    """y = x ⊙ s per step: ``[T, B, *s.shape]``."""

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale

    def extra_repr(self) -> str:
        return f"shape={tuple(self.scale.shape)}"


def _uniform(node: Any, key: str, field: str) -> float:
    values = np.asarray(getattr(node, field), dtype=np.float64)
    if values.size == 0 or not np.all(values == values.flat[0]):
        raise ValueError(f"import_nir: node {key!r} ({type(node).__name__}) has per-neuron {field}; "
                         "spikeforge neurons take one value per layer")
    return float(values.flat[0])


def _meta(node: Any) -> dict[str, Any]:
    out = {}
    for k, v in (getattr(node, "metadata", None) or {}).items():
        v = v.decode() if isinstance(v, bytes) else v
        out[k] = v.item() if isinstance(v, np.generic) or (isinstance(v, np.ndarray) and v.ndim == 0) else v
    return out


def _neuron_from_nir(node: Any, key: str, dt: float) -> nn.Module:
    nir, meta = nir_package(), _meta(node)
    vth, vreset = _uniform(node, key, "v_threshold"), _uniform(node, key, "v_reset")
    opts = {"v_threshold": vth, "v_reset": vreset, "strict": bool(meta.get("strict", 1)),
            "detach_reset": bool(meta.get("detach_reset", 1))}
    if isinstance(node, nir.IF):
        gain = _uniform(node, key, "r") * dt
        return IFNode(**opts) if gain == 1.0 else LIFNode(decay=1.0, input_gain=gain, **opts)
    tau, r = _uniform(node, key, "tau"), _uniform(node, key, "r")
    if _uniform(node, key, "v_leak") != vreset:
        raise ValueError(f"import_nir: node {key!r} (LIF) leaks toward v_leak != v_reset; spikeforge's LIF leaks to v_reset")
    if meta.get("spikeforge_kind") == "PLIFNode":
        plif = PLIFNode(decay_input=bool(meta.get("decay_input", 1)), **opts)
        with torch.no_grad():
            plif.w.fill_(float(meta["plif_w"]))
        return plif
    k = dt / tau
    return LIFNode(decay=1.0 - k, input_gain=k * r, **opts)


def _module_from_nir(node: Any, key: str, dt: float) -> nn.Module:
    nir = nir_package()
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))
    if isinstance(node, (nir.Input, nir.Output)):
        return nn.Identity()
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        layer = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        with torch.no_grad():
            layer.weight.copy_(t(w))
            if layer.bias is not None:
                layer.bias.copy_(t(node.bias))
        return TimeDistributed(layer)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        cls = nn.Conv1d if isinstance(node, nir.Conv1d) else nn.Conv2d
        pad = node.padding if isinstance(node.padding, str) else tuple(np.atleast_1d(node.padding).tolist())
        as_tuple = lambda v: tuple(np.atleast_1d(v).astype(int).tolist())
        layer = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=as_tuple(node.stride),
                    padding=pad if isinstance(pad, str) else tuple(int(p) for p in pad),
                    dilation=as_tuple(node.dilation), groups=int(node.groups))
        with torch.no_grad():
            layer.weight.copy_(t(w))
            layer.bias.copy_(t(node.bias))
        return TimeDistributed(layer)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k, s, p = (tuple(np.atleast_1d(v).astype(int).tolist()) for v in (node.kernel_size, node.stride, node.padding))
        return TimeDistributed(nn.AvgPool2d(k, s, p, divisor_override=1 if isinstance(node, nir.SumPool2d) else None))
    if isinstance(node, nir.Flatten):
        end = node.end_dim if node.end_dim < 0 else node.end_dim + 1
        return TimeDistributed(nn.Flatten(int(node.start_dim) + 1, int(end)))
    if isinstance(node, nir.Scale):
        return _Scale(t(node.scale))
    if isinstance(node, (nir.IF, nir.LIF)):
        return _neuron_from_nir(node, key, dt)
    if isinstance(node, nir.I):
        return Readout(decay=1.0, input_gain=_uniform(node, key, "r") * dt, output="sequence")
    if isinstance(node, nir.LI):
        if _uniform(node, key, "v_leak") != 0.0:
            raise ValueError(f"import_nir: node {key!r} (LI) has v_leak != 0; spikeforge's Readout leaks to 0")
        k = dt / _uniform(node, key, "tau")
        return Readout(decay=1.0 - k, input_gain=k * _uniform(node, key, "r"), output="sequence")
    raise ValueError(f"import_nir: node {key!r} of type {type(node).__name__} has no spikeforge counterpart")


class NIRNetwork(nn.Module):
    """A NIR graph run with spikeforge layers: ``[T, B, *input]`` → ``[T, B, *output]``.

    Nodes run in topological order; a node's input is the sum of its incoming edges (NIR's rule).
    ``layers`` holds one module per node (keys are the node names with ``.`` replaced by ``__``).
    """

    def __init__(self, graph: Any, dt: float) -> None:
        super().__init__()
        nir = nir_package()
        inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
        outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"import_nir: the graph must have one Input and one Output node, got {inputs} and {outputs}")
        self.dt = float(dt)
        self.sources: dict[str, list[str]] = {k: [] for k in graph.nodes}
        for a, b in graph.edges:
            self.sources[b].append(a)
        self.order = self._topological(graph.nodes, graph.edges)
        self.input_key, self.output_key = inputs[0], outputs[0]
        self.layers = nn.ModuleDict({k.replace(".", "__"): _module_from_nir(n, k, self.dt) for k, n in graph.nodes.items()})

    @staticmethod
    def _topological(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> list[str]:
        indegree = {k: 0 for k in nodes}
        for _, b in edges:
            indegree[b] += 1
        ready, order = [k for k, d in indegree.items() if d == 0], []
        while ready:
            k = ready.pop(0)
            order.append(k)
            for a, b in edges:
                if a == k:
                    indegree[b] -= 1
                    if indegree[b] == 0:
                        ready.append(b)
        if len(order) != len(nodes):
            raise ValueError("import_nir: the graph has a cycle (recurrent NIR graphs are not supported)")
        return order

    def forward(self, x: Tensor) -> Tensor:  # x [T, B, *input] -> [T, B, *output]
        values: dict[str, Tensor] = {}
        for key in self.order:
            srcs = self.sources[key]
            if key == self.input_key:
                inp = x
            elif srcs:
                inp = functools.reduce(operator.add, (values[s] for s in srcs))
            else:
                raise ValueError(f"NIRNetwork: node {key!r} has no input edge")
            values[key] = self.layers[key.replace(".", "__")](inp)
        return values[self.output_key]


def import_nir(path: str | Path | Any, dt: float | None = None, dtype: torch.dtype = torch.float32) -> NIRNetwork:
    """Read a NIR file (or take a ``nir.NIRGraph``) and build it from spikeforge layers.

    Args:
        path: a ``.nir`` file (``nir``'s own type checks run on reading) or a graph object.
        dt: the time step that discretises NIR's neurons; default the graph's ``metadata["dt"]``, else 1.0.
        dtype: the parameters' dtype (built in float64 from the file's values, then cast).

    Raises:
        ValueError: a missing/unreadable file, a node type or parameter spikeforge cannot run (named).
    """
    nir = nir_package()
    if isinstance(path, (str, Path)):
        if not Path(path).is_file():
            raise ValueError(f"import_nir: file {str(path)!r} does not exist")
        try:
            graph = nir.read(str(path))
        except Exception as err:  # noqa: BLE001 - h5py/nir raise many kinds; the message keeps the cause
            raise ValueError(f"import_nir: {str(path)!r} is not a readable NIR file: {type(err).__name__}: {err}") from None
    else:
        graph = path
    meta = _meta(graph)
    step = float(dt if dt is not None else meta.get("dt", 1.0))
    return NIRNetwork(graph, step).to(torch.float64).to(dtype)
