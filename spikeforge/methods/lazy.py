"""A ``[T, B, ...]`` sequence kept as a recipe and evaluated over chunks of time (DESIGN "memory flat in T").

Under ``ssf``/``dsr`` the ``seq`` stream is computed without autograd, layer by layer. Stored whole in
float32, every conv, BN and neuron input of the widest layer is a ``[T, B, C, H, W]`` tensor, so the
peak memory of the forward grows with T. :class:`LazySeq` keeps instead

- the spike trains a neuron wrote, one bit per value (:class:`~spikeforge.methods.bits.PackedBool`), and
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

from spikeforge.methods.bits import PackedBool

__all__ = ["DEFAULT_CHUNK_BYTES", "DEFAULT_STORE_BYTES", "LazySeq", "accumulate"]

#: Float32 bytes of its input that BN keeps rather than recomputes window by window (the leading steps;
#: ``store_mb`` of the one-step methods): bounded, so memory stays flat in T, and large enough that short
#: sequences are computed once.
DEFAULT_STORE_BYTES = 64 << 20
#: Float32 bytes per window of one tensor (a window holds at least one step).
DEFAULT_CHUNK_BYTES = 4 << 20


def accumulate(total: Tensor | None, weights: Tensor, x: Tensor) -> Tensor:
    """``total + Σ_i weights[i]·x[i]`` over the steps of a window ``x`` ``[n, B, ...]``, in the dtype of
    ``weights``; added in place step by step (no window-sized temporaries)."""
    if total is None:
        total = torch.zeros(x.shape[1:], dtype=weights.dtype, device=x.device)
    for i in range(x.shape[0]):
        total.addcmul_(x[i], weights[i])
    return total


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
                 stored: Tensor | None = None, store_bytes: int = DEFAULT_STORE_BYTES, typed: bool = False) -> None:
        if chunk_bytes <= 0:
            raise ValueError(f"LazySeq: chunk_bytes must be > 0, got {chunk_bytes}")
        self._produce = produce
        self.shape = torch.Size(shape)
        self.dtype, self.device = dtype, device
        self.chunk_bytes, self.constant = int(chunk_bytes), bool(constant)
        self.store_bytes = int(store_bytes)
        self.stored = stored
        self._typed = bool(typed)  # produce(t0, t1, dtype) returns the wanted dtype itself

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

    def packed(self, bits: PackedBool) -> "LazySeq":
        """Wrap spikes stored one bit per value (read back in whichever dtype a window is wanted) with this
        sequence's window and store budgets."""
        return self._sibling(bits.read, bits.shape, torch.bool, typed=True)

    def _sibling(self, produce: Callable, shape: Sequence[int], dtype: torch.dtype, typed: bool = False) -> "LazySeq":
        """A computed sequence on this one's device, with its window and store budgets."""
        return LazySeq(produce, shape, dtype, self.device, self.chunk_bytes, store_bytes=self.store_bytes, typed=typed)

    def _derived(self, produce: Callable[[int, int], Tensor], step_shape: Sequence[int], dtype: torch.dtype,
                 constant: bool) -> "LazySeq":
        if constant:  # compute one step, expand it over T (a view)
            with torch.no_grad():
                one = produce(0, 1)
            return self.like(one.expand(self.T, *one.shape[1:]))
        return self._sibling(produce, (self.T, *step_shape), dtype)

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
        x = self._produce(t0, t1, dtype) if self._typed else self._produce(t0, t1)
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
    def stored_steps(self) -> int:
        """Leading steps a layer that reads this sequence twice (BN) keeps rather than recomputes: as many as fit
        ``store_bytes`` of float32, in whole windows (all T when the whole sequence fits)."""
        fit = self.store_bytes // max(4 * math.prod(self.shape[1:]), 1)
        if fit >= self.T:
            return self.T
        return fit // self.steps_per_chunk * self.steps_per_chunk

    def with_head(self, head: Tensor) -> "LazySeq":
        """This sequence with its first ``head.shape[0]`` steps read from ``head`` (kept) instead of recomputed."""
        k = head.shape[0]
        if head.shape[1:] != self.shape[1:] or k > self.T:
            raise ValueError(f"LazySeq.with_head: head {tuple(head.shape)} does not start {tuple(self.shape)}")

        def produce(t0: int, t1: int) -> Tensor:
            if t1 <= k:
                return head[t0:t1]
            if t0 >= k:
                return self._compute(t0, t1, head.dtype)
            return torch.cat([head[t0:k], self._compute(k, t1, head.dtype)])
        return self._sibling(produce, self.shape, head.dtype)

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
            total = accumulate(total, weights[t0:t1], x)
        return total

    def __repr__(self) -> str:
        kind = "stored" if self.stored is not None else "lazy"
        return f"LazySeq({kind}, shape={tuple(self.shape)}, dtype={self.dtype}, steps_per_chunk={self.steps_per_chunk})"
