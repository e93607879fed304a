"""A ``[T, B, ...]`` sequence kept as a recipe and evaluated over chunks of time (DESIGN "memory flat in T").

Under ``ssf``/``dsr`` the ``seq`` stream is computed without autograd, layer by layer. Stored whole in
float32, every conv, BN and neuron input of the widest layer is a ``[T, B, C, H, W]`` tensor, so the
peak memory of the forward grows with T. :class:`LazySeq` keeps instead

- the spike trains a neuron wrote, as ``torch.bool`` (``leaf``; 1 byte per element), and
- the per-step layers between two neurons (conv, linear, pooling, BN with fixed statistics, dropout
  with its fixed mask, residual sums) as functions still to apply (``map``, ``zip``),

and evaluates them only over a window of time steps at a time (:meth:`chunks`): a neuron pulls its
input chunk by chunk and carries its membrane potential across chunks; BN pulls it twice (statistics,
then normalise-and-fire), recomputing the conv. The window holds at most ``chunk_bytes`` of float32 per
tensor, so what a layer keeps alive at once no longer grows with T. When one window covers all of T
(small layers, small T) everything runs in one piece, exactly as a plain tensor would.

A sequence whose source is constant over time (a static image repeated over T, the expanded view the
models make) stays ``constant``: per-step layers run on one step and the result is expanded (a view).
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["DEFAULT_CHUNK_BYTES", "DEFAULT_STORE_BYTES", "LazySeq"]

#: Float32 bytes of a whole sequence that BN may keep rather than recompute window by window
#: (speed at the cost of memory growing with T up to this size; ``store_mb`` of the one-step methods).
DEFAULT_STORE_BYTES = 256 << 20
#: Float32 bytes per window of one tensor (measured on ResNet-19, batch 16, 32x32: 4 MiB keeps ssf at T=16 within 1.25x of T=2).
DEFAULT_CHUNK_BYTES = 4 << 20


def _fold(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply a per-sample ``fn`` to ``[n, B, ...]`` as one ``[n·B, ...]`` batch."""
    return fn(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class LazySeq:
    """A time-first sequence ``[T, B, ...]`` given by ``produce(t0, t1) -> [t1 − t0, B, ...]``.

    Build with :meth:`of` (a stored tensor), then :meth:`map` / :meth:`zip`; read with :meth:`chunks`,
    :meth:`window` or :meth:`materialize`. ``dtype`` is the dtype of what ``produce`` returns.
    """

    def __init__(self, produce: Callable[[int, int], Tensor], shape: Sequence[int], dtype: torch.dtype,
                 device: torch.device, chunk_bytes: int = DEFAULT_CHUNK_BYTES, constant: bool = False,
                 stored: Tensor | None = None, store_bytes: int = DEFAULT_STORE_BYTES) -> None:
        if chunk_bytes <= 0:
            raise ValueError(f"LazySeq: chunk_bytes must be > 0, got {chunk_bytes}")
        self._produce = produce
        self.shape = torch.Size(shape)
        self.dtype, self.device = dtype, device
        self.chunk_bytes, self.constant = int(chunk_bytes), bool(constant)
        self.store_bytes = int(store_bytes)
        self.stored = stored

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def of(cls, x: "Tensor | LazySeq", chunk_bytes: int = DEFAULT_CHUNK_BYTES,
           store_bytes: int = DEFAULT_STORE_BYTES) -> "LazySeq":
        """Wrap a stored ``[T, B, ...]`` tensor (a sequence constant over T if it is an expanded view)."""
        if isinstance(x, LazySeq):
            return x
        constant = x.shape[0] > 1 and x.stride(0) == 0
        return cls(lambda t0, t1: x[t0:t1], x.shape, x.dtype, x.device, chunk_bytes, constant, stored=x,
                   store_bytes=store_bytes)

    def like(self, x: Tensor) -> "LazySeq":
        """Wrap a stored tensor with this sequence's window and store budgets."""
        return LazySeq.of(x, self.chunk_bytes, self.store_bytes)

    def _derived(self, produce: Callable[[int, int], Tensor], step_shape: Sequence[int], dtype: torch.dtype,
                 constant: bool) -> "LazySeq":
        if constant:  # compute one step, expand it over T (a view)
            with torch.no_grad():
                one = produce(0, 1)
            return self.like(one.expand(self.T, *one.shape[1:]))
        return LazySeq(produce, (self.T, *step_shape), dtype, self.device, self.chunk_bytes,
                       store_bytes=self.store_bytes)

    def map(self, fn: Callable[[Tensor], Tensor], step_shape: Sequence[int], dtype: torch.dtype) -> "LazySeq":
        """Apply a per-sample ``fn`` (``[N, ...] -> [N, ...']``) at every step; ``step_shape`` = ``[B, ...']``."""
        def produce(t0: int, t1: int) -> Tensor:
            return _fold(fn, self._compute(t0, t1, dtype))
        return self._derived(produce, step_shape, dtype, self.constant)

    def zip(self, other: "LazySeq", fn: Callable[[Tensor, Tensor], Tensor], dtype: torch.dtype) -> "LazySeq":
        """``fn(self[t], other[t])`` elementwise at every step (residual sums, SEW connects)."""
        if self.shape != other.shape:
            raise ValueError(f"LazySeq.zip: shapes differ, {tuple(self.shape)} and {tuple(other.shape)}")

        def produce(t0: int, t1: int) -> Tensor:
            return fn(self._compute(t0, t1, dtype), other._compute(t0, t1, dtype))
        return self._derived(produce, self.shape[1:], dtype, self.constant and other.constant)

    # -- evaluation --------------------------------------------------------------------------
    @property
    def T(self) -> int:
        return self.shape[0]

    def _compute(self, t0: int, t1: int, dtype: torch.dtype) -> Tensor:
        x = self._produce(t0, t1)
        return x if x.dtype == dtype else x.to(dtype)

    def window(self, t0: int, t1: int, dtype: torch.dtype | None = None) -> Tensor:
        """Steps ``t0 .. t1−1`` as a tensor ``[t1 − t0, B, ...]`` (in ``dtype`` if given), without autograd."""
        with torch.no_grad():
            return self._compute(t0, t1, dtype or self.dtype)

    @property
    def steps_per_chunk(self) -> int:
        """Steps per window: as many as fit ``chunk_bytes`` of float32 (at least 1, at most T)."""
        per_step = 4 * math.prod(self.shape[1:])
        return max(1, min(self.T, self.chunk_bytes // max(per_step, 1)))

    @property
    def single_chunk(self) -> bool:
        return self.steps_per_chunk >= self.T

    def chunks(self, dtype: torch.dtype | None = None) -> Iterator[tuple[int, int, Tensor]]:
        """``(t0, t1, window)`` over the whole sequence, ``steps_per_chunk`` steps at a time."""
        n = self.steps_per_chunk
        for t0 in range(0, self.T, n):
            t1 = min(self.T, t0 + n)
            yield t0, t1, self.window(t0, t1, dtype)

    def materialize(self, dtype: torch.dtype | None = None) -> Tensor:
        """The whole sequence as one tensor (what a plain-tensor path needs; T× the memory of a window)."""
        if self.stored is not None:
            return self.stored if dtype in (None, self.stored.dtype) else self.stored.to(dtype)
        return self.window(0, self.T, dtype)

    @property
    def fits_store(self) -> bool:
        """Whether the whole sequence in float32 fits ``store_bytes`` (then a layer that must read it twice,
        BN, computes it once and keeps it instead of recomputing each window)."""
        return 4 * math.prod(self.shape) <= self.store_bytes

    def materialize_owned(self, dtype: torch.dtype) -> tuple[Tensor, bool]:
        """The whole sequence, and whether it is a fresh tensor no one else holds (safe to overwrite). A computed
        sequence is written window by window into one new tensor, so the layers before it never see more than a
        window at once (a conv over all of T would also need its float input and workspace at full size)."""
        if self.stored is not None or self.constant:
            return self.materialize(dtype), False
        with torch.no_grad():
            out = torch.empty(self.shape, dtype=dtype, device=self.device)
            for t0, t1, x in self.chunks(dtype):
                out[t0:t1] = x
        return out, True

    def aggregate(self, weights: Tensor) -> Tensor:
        """Σ_t weights[t]·x[t] ``[B, ...]`` in the dtype of ``weights``, accumulated window by window."""
        if weights.shape != (self.T,):
            raise ValueError(f"LazySeq.aggregate: weights must be [T] = [{self.T}], got {tuple(weights.shape)}")
        if self.constant:
            return weights.sum() * self.window(0, 1, weights.dtype)[0]
        total = None
        for t0, t1, x in self.chunks(weights.dtype):
            part = torch.tensordot(weights[t0:t1], x, dims=1)
            total = part if total is None else total + part
        return total

    def __repr__(self) -> str:
        kind = "stored" if self.stored is not None else "lazy"
        return f"LazySeq({kind}, shape={tuple(self.shape)}, dtype={self.dtype}, steps_per_chunk={self.steps_per_chunk})"
