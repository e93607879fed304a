"""The two-stream pair ``Dual(seq, flow)`` that ``ssf`` and ``dsr`` pass between layers (DESIGN.md).

- ``seq`` ``[T, B, ...]``: the real spike trains / currents, computed without autograd;
- ``flow`` ``[B, ...]``: a time-aggregated value that autograd tracks;
- ``weights`` ``[T]``: the aggregation weights (summing to 1) whose weighted sum of ``seq`` is the
  value of ``flow``.

Rule everywhere: **values come from ``seq``, gradients travel along ``flow``** (straight-through,
``value + (path − path.detach())``). A linear-in-time layer (conv, linear, average pooling, flatten)
maps both streams and keeps ``flow`` equal to the aggregate of ``seq``; any other stateless layer
takes its flow value from the aggregate of its own ``seq`` output and its gradient from the layer
applied to the incoming flow (:func:`map_stateless`).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from spikeforge.streams.bits import pack_bits, unpack_bits
from spikeforge.streams.lazy import LazySeq

__all__ = ["Dual", "aggregate", "straight_through", "masked_flow", "decay_weights", "uniform_weights", "map_linear", "map_stateless",
           "is_linear_in_time", "is_per_step_deterministic", "steps_of", "reject_batchnorm"]


class Dual:
    """A spiking layer's output under a one-step method: exact sequence plus differentiable flow.

    ``seq`` is always held as a :class:`~spikeforge.streams.lazy.LazySeq` (a stored tensor, or bool spikes
    plus the per-step layers still to apply, evaluated over windows of time): reading it computes nothing.
    :meth:`materialize` builds the whole ``[T, B, ...]`` tensor when a caller really needs it (T times the
    memory of a window); it is returned, never kept.
    """

    __slots__ = ("seq", "flow", "weights")

    def __init__(self, seq: Tensor | LazySeq, flow: Tensor, weights: Tensor) -> None:
        if len(seq.shape) < 2 or tuple(seq.shape[1:]) != tuple(flow.shape):
            raise ValueError(f"Dual: seq must be [T, *flow.shape]; got seq {tuple(seq.shape)}, flow {tuple(flow.shape)}")
        if weights.shape != (seq.shape[0],):
            raise ValueError(f"Dual: weights must be [T] = [{seq.shape[0]}], got {tuple(weights.shape)}")
        self.seq: LazySeq = LazySeq.of(seq)
        self.flow, self.weights = flow, weights

    def materialize(self, dtype: torch.dtype | None = None) -> Tensor:
        """The whole sequence ``[T, B, ...]`` as one tensor in ``dtype`` (default: the flow's), not kept."""
        return self.seq.materialize(dtype or self.flow.dtype)

    @property
    def T(self) -> int:
        return self.seq.T

    @property
    def shape(self) -> torch.Size:
        return self.seq.shape

    def __add__(self, other: "Dual") -> "Dual":
        """Elementwise sum (SEW ADD, residual adds): linear, so both streams add."""
        if not isinstance(other, Dual):
            return NotImplemented
        return Dual(self.seq.zip(other.seq, torch.add, self.flow.dtype), self.flow + other.flow, self.weights)

    def __repr__(self) -> str:
        return f"Dual(seq={self.seq!r}, flow={tuple(self.flow.shape)}, weights={tuple(self.weights.shape)})"


def aggregate(seq: Tensor | LazySeq, weights: Tensor) -> Tensor:
    """Σ_t weights[t]·seq[t]: ``[T, B, ...]``, ``[T]`` → ``[B, ...]`` in the dtype of ``weights``."""
    if isinstance(seq, LazySeq):
        return seq.aggregate(weights)
    return torch.tensordot(weights, seq.to(weights.dtype), dims=1)


def straight_through(value: Tensor, path: Tensor) -> Tensor:
    """A tensor with the value of ``value`` and the gradient of ``path``."""
    return value.detach() + (path - path.detach())


class _MaskedFlowGrad(torch.autograd.Function):
    """Value ``value``; gradient ``g·mask·scale`` to ``flow`` and ``Σ g·vth_mask·vth_scale`` to the 0-dim ``vth``.
    The masks are saved one bit per value (:func:`~spikeforge.streams.bits.pack_bits`; 1/32 of a float mask)."""

    @staticmethod
    def forward(ctx, value: Tensor, flow: Tensor, mask: Tensor, scale: Tensor, vth: Tensor,
                vth_mask: Tensor, vth_scale: float) -> Tensor:
        vth_bits = pack_bits(vth_mask.reshape(1, -1)) if ctx.needs_input_grad[4] else None  # ssf: no V_th gradient
        ctx.save_for_backward(pack_bits(mask.reshape(1, -1)), scale, vth_bits)
        ctx.vth_scale, ctx.shapes = vth_scale, (mask.shape, vth_mask.shape)
        return value.detach().clone()

    @staticmethod
    def backward(ctx, g: Tensor):
        mask_bits, scale, vth_bits = ctx.saved_tensors
        (shape, vth_shape), n = ctx.shapes, math.prod(ctx.shapes[0])
        g_flow = g_vth = None
        if ctx.needs_input_grad[1]:
            g_flow = g * unpack_bits(mask_bits, n, g.dtype).view(shape) * scale.to(g.dtype)
        if ctx.needs_input_grad[4]:
            vth_mask = unpack_bits(vth_bits, math.prod(vth_shape), g.dtype).view(vth_shape)
            g_vth = (g * vth_mask).sum().mul(ctx.vth_scale).reshape(())
        return None, g_flow, None, None, g_vth, None, None


def masked_flow(value: Tensor, flow: Tensor, mask: Tensor, scale: Tensor | float = 1.0,
                vth: Tensor | None = None, vth_mask: Tensor | None = None, vth_scale: float = 1.0) -> Tensor:
    """A flow output with the value ``value`` and the gradient of ``mask·scale·flow (+ vth·vth_mask·vth_scale)``.

    ``straight_through(value, mask·scale·flow + vth·vth_mask·vth_scale)`` with bool masks ``[B, ...]``
    (the one-step rules of SSF and DSR); ``scale`` a scalar, ``vth`` a 0-dim tensor."""
    scale = (scale.detach().to(flow.dtype) if isinstance(scale, Tensor)
             else torch.full((), scale, dtype=flow.dtype, device=flow.device))  # no host-to-device copy
    if vth is None:
        vth, vth_mask = flow.new_zeros(()), mask.new_zeros(())
    return _MaskedFlowGrad.apply(value, flow, mask, scale, vth, vth_mask, float(vth_scale))


def decay_weights(decay: Tensor | float, T: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """w_t = λ^(T−1−t) / Σ_s λ^(T−1−s), t = 0..T−1 (SPEC §4): ``[T]``, no gradient."""
    lam = (decay.detach().to(device=device, dtype=torch.float64) if isinstance(decay, Tensor)
           else torch.full((), decay, dtype=torch.float64, device=device))
    w = lam ** torch.arange(T - 1, -1, -1, dtype=torch.float64, device=device)
    return (w / w.sum()).to(dtype)


def uniform_weights(T: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    return torch.full((T,), 1.0 / T, dtype=dtype, device=device)


def steps_of(x: Dual) -> Tensor:
    """Per-step values ``[T, B, ...]`` whose gradient goes to the flow with weight 1 at every step
    (SSF's ∂FI/∂I[t] := 1): ``seq[t] + (flow − flow.detach())``."""
    return x.materialize() + (x.flow - x.flow.detach()).unsqueeze(0)


_LINEAR_TYPES: tuple[type, ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten, nn.Identity,
)


def is_linear_in_time(module: nn.Module) -> bool:
    """True for modules that are affine per sample (so aggregate-then-apply equals apply-then-aggregate)."""
    if isinstance(module, nn.Sequential):
        return all(is_linear_in_time(m) for m in module)
    return isinstance(module, _LINEAR_TYPES)


_DETERMINISTIC_TYPES: tuple[type, ...] = _LINEAR_TYPES + (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.ReLU, nn.Unflatten,
)


def is_per_step_deterministic(module: nn.Module) -> bool:
    """True for modules that map each sample alone, the same way at every call (they may be evaluated lazily,
    over windows of time and more than once); random or batch-statistics modules are not."""
    if isinstance(module, nn.Sequential):
        return all(is_per_step_deterministic(m) for m in module)
    return isinstance(module, _DETERMINISTIC_TYPES)


def _fold(fn: Callable[[Tensor], Tensor], seq: Tensor) -> Tensor:
    y = fn(seq.flatten(0, 1))
    return y.unflatten(0, seq.shape[:2])


def map_linear(fn: Callable[[Tensor], Tensor], x: Dual) -> Dual:
    """Apply an affine stateless ``fn`` to both streams (seq lazily, folded over T·B, without autograd)."""
    flow = fn(x.flow)
    return Dual(x.seq.map(fn, flow.shape, x.flow.dtype), flow, x.weights)


def map_stateless(fn: Callable[[Tensor], Tensor], x: Dual) -> Dual:
    """Apply a nonlinear stateless ``fn``: flow value = aggregate of ``fn(seq)``, gradient = ``fn`` at the flow.

    ``seq`` stays lazy when ``fn`` is a deterministic per-sample module (:func:`is_per_step_deterministic`);
    anything else (a random module, a plain function) runs once, now, on the whole sequence."""
    path = fn(x.flow)
    if isinstance(fn, nn.Module) and is_per_step_deterministic(fn):
        seq = x.seq.map(fn, path.shape, x.flow.dtype)
    else:
        with torch.no_grad():
            seq = x.seq.like(_fold(fn, x.seq.materialize(x.flow.dtype)))
    return Dual(seq, straight_through(aggregate(seq, x.weights).to(x.flow.dtype), path), x.weights)


def reject_batchnorm(module: nn.Module, who: str) -> None:
    """torch's BatchNorm inside a folded container would see the flow batch as a second batch."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not getattr(m, "supports_dual", False):
            raise ValueError(
                f"{who}: {type(m).__name__} cannot run under ssf/dsr inside a folded container (it would update its "
                "statistics from the flow batch); use spikeforge.layers.BatchNormTB / TdBN as its own layer"
            )
