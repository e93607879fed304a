"""How much of a layer's ``[T, B, ...]`` sequence one window of time holds, by device (DESIGN "On a GPU").

- **CPU**: cache-sized windows (:data:`CPU_WINDOW_BYTES` of float32 per tensor) and a bounded store of the
  leading steps that BN keeps rather than recomputes (:data:`CPU_STORE_BYTES`): memory flat in T, the conv
  recomputed for what was not kept. These are the sizes the CPU figures were measured with.
- **CUDA**: small windows cost one launch per step and per tensor, and BN recomputes the conv it did not
  keep, so a window covers all of T whenever about :data:`LAYER_TENSORS` float ``[T, B, ...]`` tensors of the
  widest layer fit :data:`CUDA_MEMORY_FRACTION` of the free device memory (``torch.cuda.mem_get_info``); then
  BN normalises in one pass. Otherwise a window is the largest number of steps that fits that budget.

A budget is taken once per method and device (the first step) and kept, so windows do not change from one
step to the next as the caching allocator fills.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["WindowBudget", "CPU_WINDOW_BYTES", "CPU_STORE_BYTES", "CUDA_MEMORY_FRACTION", "LAYER_TENSORS",
           "device_budget"]

#: Float32 bytes per window of one tensor on the CPU (a window holds at least one step).
CPU_WINDOW_BYTES = 4 << 20
#: Float32 bytes of its input that BN keeps rather than recomputes window by window, on the CPU.
CPU_STORE_BYTES = 64 << 20
#: Share of the free CUDA memory one layer's no-grad sequence pass may take.
CUDA_MEMORY_FRACTION = 0.25
#: Float ``[T, B, ...]`` tensors of one layer alive at once in that pass (conv output, its BN, the conv's
#: input and workspace).
LAYER_TENSORS = 3


class WindowBudget(NamedTuple):
    """Byte budgets of the windowed sequence (:class:`~spikeforge.streams.lazy.LazySeq`)."""

    window_bytes: int  #: float32 bytes per window of one tensor
    store_bytes: int  #: float32 bytes of a sequence that a layer reading it twice (BN) keeps


def device_budget(device: torch.device | str, free_bytes: int | None = None) -> WindowBudget:
    """The budget for ``device``: fixed on the CPU; on CUDA ``CUDA_MEMORY_FRACTION`` of ``free_bytes``
    (default: ``torch.cuda.mem_get_info`` now) shared by ``LAYER_TENSORS`` tensors, for windows and store alike."""
    device = torch.device(device)
    if device.type != "cuda":
        return WindowBudget(CPU_WINDOW_BYTES, CPU_STORE_BYTES)
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    per_tensor = max(1, int(free_bytes * CUDA_MEMORY_FRACTION) // LAYER_TENSORS)
    return WindowBudget(per_tensor, per_tensor)
