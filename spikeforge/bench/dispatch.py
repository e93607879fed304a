"""Counting what a step asks of PyTorch: every aten op, and those that make the host wait on the device.

:class:`OpCounter` is a ``TorchDispatchMode``: inside ``with OpCounter() as c:`` every op reaching the
dispatcher is counted (``c.ops``), and separately the ones that synchronise host and device on CUDA
(``c.syncs``): scalar reads (``.item()``, ``float(t)``: ``aten._local_scalar_dense``; ``.tolist()`` reads memory without
dispatching and is not seen),
tensors made from host values (``torch.tensor(x, device=...)``: ``aten.lift_fresh``, a host-to-device
copy), and ops whose output size depends on values (``nonzero``, boolean indexing, ``masked_select``).
``c.scalars`` counts the 0-dim tensors made from a Python number (``torch.full((), x)``, ``scalar_tensor``):
not a sync, but a launch each, and a sign of a per-layer constant rebuilt where it could be made once.
It runs on the CPU, so a test can prove a CUDA step sync-free without a GPU (where one exists,
``torch.cuda.set_sync_debug_mode("error")`` is the direct check).
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["HOST_SYNC_OPS", "SCALAR_MAKERS", "OpCounter"]

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
