"""Counting what a step asks of PyTorch: every aten op, and those that make the host wait on the device.

:class:`OpCounter` is a ``TorchDispatchMode``: inside ``with OpCounter() as c:`` every op reaching the
dispatcher is counted (``c.ops``), and separately the ones that synchronise host and device on CUDA
(``c.syncs``): scalar reads (``.item()``, ``float(t)``: ``aten._local_scalar_dense``; ``.tolist()`` reads memory without
dispatching and is not seen),
tensors made from host values (``torch.tensor(x, device=...)``: ``aten.lift_fresh``, a host-to-device
copy), and ops whose output size depends on values (``nonzero``, boolean indexing, ``masked_select``).
``c.scalars`` counts the 0-dim tensors made from a Python number (``torch.full((), x)``, ``scalar_tensor``):
not a sync, but a launch each, and a sign of a per-layer constant rebuilt where it could be made once.
:class:`KernelTraffic` adds up the bytes of the tensors that the ops of one namespace (``spikeforge``: the fused
neuron kernels) take and return, the memory traffic of kernels that read each input and write each output once.
It runs on the CPU, so a test can prove a CUDA step sync-free without a GPU (where one exists,
``torch.cuda.set_sync_debug_mode("error")`` is the direct check).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["HOST_SYNC_OPS", "SCALAR_MAKERS", "KernelTraffic", "OpCounter"]

#: aten overload packets that read device values on the host (or copy host values to the device)
HOST_SYNC_OPS = frozenset({
    "aten._local_scalar_dense", "aten.lift_fresh", "aten.lift_fresh_copy", "aten.is_nonzero", "aten.nonzero",
    "aten.masked_select", "aten.equal", "aten.unique", "aten._unique2", "aten.repeat_interleave",
})

#: aten overload packets that make a tensor filled with a host number (counted when the result is 0-dim)
SCALAR_MAKERS = frozenset({"aten.full", "aten.scalar_tensor", "aten.new_full", "aten.full_like"})


def _is_bool_index(func: Any, args: tuple) -> bool:
    """``x[mask]`` with a bool mask (its output size depends on the mask's values)."""
    if str(func.overloadpacket) not in ("aten.index", "aten.index_put", "aten.index_put_"):
        return False
    indices = args[1] if len(args) > 1 else ()
    return any(getattr(i, "dtype", None) is not None and str(i.dtype) == "torch.bool" for i in indices or ())


class OpCounter(TorchDispatchMode):
    """Counts ops (``ops``: total; ``by_name``: per overload packet), host syncs (``syncs``: per op name) and
    0-dim tensors made from host numbers (``scalars``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.by_name: Counter[str] = Counter()
        self.syncs: Counter[str] = Counter()
        self.scalars = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        self.ops += 1
        self.by_name[name] += 1
        if name in HOST_SYNC_OPS or _is_bool_index(func, args):
            self.syncs[name] += 1
        out = func(*args, **(kwargs or {}))
        if name in SCALAR_MAKERS and getattr(out, "dim", None) is not None and out.dim() == 0:
            self.scalars += 1
        return out

    @property
    def sync_count(self) -> int:
        return sum(self.syncs.values())


def _nbytes(tree: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tree_leaves(tree) if isinstance(t, Tensor))


class KernelTraffic(TorchDispatchMode):
    """Bytes read (``read``: the tensor arguments) and written (``written``: the tensor results) by the ops of
    ``namespace`` run inside the block, and their names (``ops``). For the fused neuron kernels this is their
    memory traffic exactly: each reads every element of its inputs once and writes every element of its outputs
    once (an input it does not need arrives empty, so it counts nothing)."""

    def __init__(self, namespace: str = "spikeforge") -> None:
        super().__init__()
        self.namespace = namespace
        self.read = 0
        self.written = 0
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.namespace == self.namespace:
            self.ops[str(func.overloadpacket)] += 1
            self.read += _nbytes((args, kwargs))
            self.written += _nbytes(out)
        return out

    @property
    def total(self) -> int:
        """Bytes read plus bytes written."""
        return self.read + self.written
