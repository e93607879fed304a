"""A ``[T, B, ...]`` sequence kept as a recipe and evaluated over windows of time (DESIGN "memory flat in T").

Under ``ssf``/``dsr`` the ``seq`` stream is computed without autograd, layer by layer. Stored whole in
float32, every conv, BN and neuron input of the widest layer is a ``[T, B, C, H, W]`` tensor, so the
peak memory of the forward grows with T. :class:`LazySeq` keeps instead

- the spike trains a neuron wrote, one bit per value (:class:`~spikeforge.streams.bits.PackedBool`), and
- the per-step layers between two neurons (conv, linear, pooling, BN with fixed statistics, dropout
  with its fixed mask, residual sums) as functions still to apply (``map``, ``zip``),

and evaluates them only over a window of time steps at a time (:meth:`windows`): a neuron pulls its
input window by window and carries its membrane potential across windows; BN pulls it twice (statistics,
then normalise-and-fire), recomputing the conv. The window holds at most ``window_bytes`` of float32 per
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

from spikeforge.streams.bits import PackedBool
from spikeforge.streams.budget import CPU_STORE_BYTES, CPU_WINDOW_BYTES

__all__ = ["LazySeq", "accumulate"]


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

    Build with :meth:`of` (a stored tensor), then :meth:`map` / :meth:`zip`; read with :meth:`windows`,
    :meth:`window` or :meth:`materialize`. ``dtype`` is the dtype of what ``produce`` returns.
    """

    def __init__(self, produce: Callable[[int, int], Tensor], shape: Sequence[int], dtype: torch.dtype,
                 device: torch.device, window_bytes: int = CPU_WINDOW_BYTES, constant: bool = False,
                 stored: Tensor | None = None, store_bytes: int = CPU_STORE_BYTES, typed: bool = False) -> None:
        if window_bytes <= 0:
            raise ValueError(f"LazySeq: window_bytes must be > 0, got {window_bytes}")
        self._produce = produce
        self.shape = torch.Size(shape)
        self.dtype, self.device = dtype, device
        self.window_bytes, self.constant = int(window_bytes), bool(constant)
        self.store_bytes = int(store_bytes)
        self.stored = stored
        self._typed = bool(typed)  # produce(t0, t1, dtype) returns the wanted dtype itself
        #: ``(source, scale [C], shift [C])`` when this sequence is ``source.channel_affine(scale, shift)``: a fused
        #: consumer (the neuron's window pass) reads ``source`` and applies the affine map on load
        self.affine: tuple[LazySeq, Tensor, Tensor] | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def of(cls, x: "Tensor | LazySeq", window_bytes: int = CPU_WINDOW_BYTES,
           store_bytes: int = CPU_STORE_BYTES) -> "LazySeq":
        """Wrap a stored ``[T, B, ...]`` tensor (a sequence constant over T if it is an expanded view)."""
        if isinstance(x, LazySeq):
            return x
        constant = x.shape[0] > 1 and x.stride(0) == 0
        return cls(lambda t0, t1: x[t0:t1], x.shape, x.dtype, x.device, window_bytes, constant, stored=x,
                   store_bytes=store_bytes)

    def like(self, x: Tensor) -> "LazySeq":
        """Wrap a stored tensor with this sequence's window and store budgets."""
        return LazySeq.of(x, self.window_bytes, self.store_bytes)

    def packed(self, bits: PackedBool) -> "LazySeq":
        """Wrap spikes stored one bit per value (read back in whichever dtype a window is wanted) with this
        sequence's window and store budgets."""
        return self._sibling(bits.read, bits.shape, torch.bool, typed=True)

    def _sibling(self, produce: Callable, shape: Sequence[int], dtype: torch.dtype, typed: bool = False) -> "LazySeq":
        """A computed sequence on this one's device, with its window and store budgets."""
        return LazySeq(produce, shape, dtype, self.device, self.window_bytes, store_bytes=self.store_bytes, typed=typed)

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

    def channel_affine(self, scale: Tensor, shift: Tensor) -> "LazySeq":
        """``x·scale[c] + shift[c]`` at every step, per channel (dim 2 of ``[T, B, C, ...]``), evaluated as a
        product then a sum (no fused multiply-add): BatchNorm with fixed statistics, in the order ATen's CPU
        kernel evaluates it. ``scale``/``shift`` ``[C]`` in the dtype of the result; kept in :attr:`affine`."""
        if len(self.shape) < 3 or scale.shape != (self.shape[2],) or shift.shape != scale.shape:
            raise ValueError(f"LazySeq.channel_affine: scale and shift must be [C] for [T, B, C, ...] = "
                             f"{tuple(self.shape)}; got {tuple(scale.shape)}, {tuple(shift.shape)}")
        view = [1, 1, -1] + [1] * (len(self.shape) - 3)
        a, b = scale.view(view), shift.view(view)

        def produce(t0: int, t1: int) -> Tensor:
            return self._compute(t0, t1, scale.dtype) * a + b
        out = self._derived(produce, self.shape[1:], scale.dtype, self.constant)
        if not self.constant:
            out.affine = (self, scale, shift)
        return out

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
    def steps_per_window(self) -> int:
        """Steps per window: as many as fit ``window_bytes`` of float32 (at least 1, at most T)."""
        per_step = 4 * math.prod(self.shape[1:])
        return max(1, min(self.T, self.window_bytes // max(per_step, 1)))

    @property
    def single_window(self) -> bool:
        return self.steps_per_window >= self.T

    def windows(self, dtype: torch.dtype | None = None) -> Iterator[tuple[int, int, Tensor]]:
        """``(t0, t1, window)`` over the whole sequence, ``steps_per_window`` steps at a time."""
        n = self.steps_per_window
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
        return fit // self.steps_per_window * self.steps_per_window

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
            for t0, t1, x in self.windows(dtype):
                out[t0:t1] = x
        return out, True

    def aggregate(self, weights: Tensor) -> Tensor:
        """Σ_t weights[t]·x[t] ``[B, ...]`` in the dtype of ``weights``, accumulated window by window."""
        if weights.shape != (self.T,):
            raise ValueError(f"LazySeq.aggregate: weights must be [T] = [{self.T}], got {tuple(weights.shape)}")
        if self.constant:
            return weights.sum() * self.window(0, 1, weights.dtype)[0]
        total = None
        for t0, t1, x in self.windows(weights.dtype):
            total = accumulate(total, weights[t0:t1], x)
        return total

    def __repr__(self) -> str:
        kind = "stored" if self.stored is not None else "lazy"
        return f"LazySeq({kind}, shape={tuple(self.shape)}, dtype={self.dtype}, steps_per_window={self.steps_per_window})"
