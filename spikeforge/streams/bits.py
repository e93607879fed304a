"""Spike trains stored one bit per value (the seq stream of ``ssf``/``dsr``).

A layer's spikes ``[T, B, ...]`` are kept until the next layers have read them (twice where BN recomputes
its input, again for a residual shortcut). As ``torch.bool`` they take one byte per value, which at large T
is most of what the one-step methods' memory grows by; packed eight to a byte they take T·B·n/8 bytes.
Writing packs a window, reading unpacks one: a few elementwise passes, small beside the conv that reads it.
"""
from __future__ import annotations

import math
import sys
from typing import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["PackedBool", "pack_bits", "unpack_bits"]


#: Times four 0/1 bytes (bits 0, 8, 16, 24 of an int) this puts byte k at bit 21 + k, free of carries (every
#: partial product lands on its own bit) and of overflow (< 2**46).
_GATHER4 = 0x204081


def pack_bits(x: Tensor) -> Tensor:
    """``[k, n]`` bool (or nonzero = True) → ``uint8`` ``[k, ⌈n/8⌉]``, value j in bit j mod 8 of byte j div 8.

    Each group of eight bools is read as one int64 whose two 4-byte halves are gathered by one multiply each
    (no signed overflow, so eager, inductor and Triton agree)."""
    k, n = x.shape
    flat = (x != 0 if x.dtype != torch.bool else x).view(torch.uint8)
    # always a fresh, contiguous, 8-byte aligned copy (padded to whole bytes): the int64 view needs it, and
    # no check of the storage offset, which torch.compile cannot trace
    flat = torch.nn.functional.pad(flat, (0, -n % 8))
    if sys.byteorder == "little":
        v = flat.view(torch.int64)
        low = ((v & 0xFFFFFFFF) * _GATHER4) >> 21  # values 0..3 → bits 0..3
        high = ((v >> 32) * _GATHER4) >> 17  # values 4..7 → bits 4..7
        return ((low & 0x0F) | (high & 0xF0)).to(torch.uint8)
    groups = flat.view(k, -1, 8)
    out = groups[..., 0].clone()
    for i in range(1, 8):
        out.bitwise_or_(groups[..., i] << i)
    return out


def unpack_bits(data: Tensor, n: int, dtype: torch.dtype = torch.bool) -> Tensor:
    """``uint8`` ``[k, m]`` from :func:`pack_bits` → ``[k, n]`` 0/1 in ``dtype``: every byte shifted right by
    0..7 and masked (elementwise, no table lookup: a gather runs far under the memory bandwidth on a GPU).
    The reference the fused unpack kernels are tested against."""
    shifts = torch.arange(8, dtype=torch.uint8, device=data.device)
    bits = torch.bitwise_and(torch.bitwise_right_shift(data.unsqueeze(-1), shifts), 1)
    flat = bits.view(data.shape[0], -1).to(dtype)
    return flat if flat.shape[1] == n else flat[:, :n]


class PackedBool:
    """A ``[T, B, ...]`` boolean sequence stored as ``uint8`` ``[T, ⌈B·n/8⌉]``, eight values per byte (value j of
    a step in bit j mod 8 of byte j div 8).

    See :func:`pack_bits` and :func:`unpack_bits`.

    Args:
        shape: ``[T, B, ...]``.
        device: where the bits live.
        unpack: ``(data [k, m], n, dtype) -> [k, n]``, how :meth:`read` unpacks (default :func:`unpack_bits`; the
            neuron that wrote the bits passes its kernel's own one-pass unpack).

    Example:
        >>> bits = PackedBool((4, 2, 3), "cpu")
        >>> bits.write(0, torch.rand(4, 2, 3) > 0.5)
        >>> bits.read(1, 3, torch.float32).shape
        torch.Size([2, 2, 3])
    """

    def __init__(self, shape: Sequence[int], device: torch.device | str,
                 unpack: Callable[[Tensor, int, torch.dtype], Tensor] = unpack_bits) -> None:
        self.shape = torch.Size(shape)
        self.unpack = unpack
        self.step_numel = math.prod(self.shape[1:])
        self.data = torch.zeros((self.shape[0], -(-self.step_numel // 8)), dtype=torch.uint8, device=device)

    @property
    def T(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.data.numel()

    def write(self, t0: int, x: Tensor) -> None:
        """Store ``x`` ``[k, B, ...]`` (bool, or any dtype: nonzero = True) as steps ``t0 .. t0+k−1``."""
        k = x.shape[0]
        if x.shape[1:] != self.shape[1:] or not 0 <= t0 <= self.T - k:
            raise ValueError(f"PackedBool.write: steps {t0}..{t0 + k - 1} of shape {tuple(x.shape[1:])} do not fit "
                             f"{tuple(self.shape)}")
        self.data[t0:t0 + k] = pack_bits(x.reshape(k, -1))

    def read(self, t0: int, t1: int, dtype: torch.dtype = torch.bool) -> Tensor:
        """Steps ``t0 .. t1−1`` as ``[t1 − t0, B, ...]`` in ``dtype`` (0/1 values)."""
        return self.unpack(self.data[t0:t1], self.step_numel, dtype).reshape(t1 - t0, *self.shape[1:])
