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

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["Dual", "aggregate", "straight_through", "decay_weights", "uniform_weights", "map_linear", "map_stateless",
           "is_linear_in_time", "steps_of", "reject_batchnorm"]


@dataclass
class Dual:
    """A spiking layer's output under a one-step method: exact sequence plus differentiable flow."""

    seq: Tensor
    flow: Tensor
    weights: Tensor

    def __post_init__(self) -> None:
        if self.seq.dim() < 2 or tuple(self.seq.shape[1:]) != tuple(self.flow.shape):
            raise ValueError(f"Dual: seq must be [T, *flow.shape]; got seq {tuple(self.seq.shape)}, flow {tuple(self.flow.shape)}")
        if self.weights.shape != (self.seq.shape[0],):
            raise ValueError(f"Dual: weights must be [T] = [{self.seq.shape[0]}], got {tuple(self.weights.shape)}")

    @property
    def T(self) -> int:
        return self.seq.shape[0]

    @property
    def shape(self) -> torch.Size:
        return self.seq.shape

    def __add__(self, other: "Dual") -> "Dual":
        """Elementwise sum (SEW ADD, residual adds): linear, so both streams add."""
        if not isinstance(other, Dual):
            return NotImplemented
        return Dual(self.seq + other.seq, self.flow + other.flow, self.weights)


def aggregate(seq: Tensor, weights: Tensor) -> Tensor:
    """Σ_t weights[t]·seq[t]: ``[T, B, ...]``, ``[T]`` → ``[B, ...]`` in the dtype of ``weights``."""
    return torch.tensordot(weights, seq.to(weights.dtype), dims=1)


def straight_through(value: Tensor, path: Tensor) -> Tensor:
    """A tensor with the value of ``value`` and the gradient of ``path``."""
    return value.detach() + (path - path.detach())


def decay_weights(decay: Tensor | float, T: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """w_t = λ^(T−1−t) / Σ_s λ^(T−1−s), t = 0..T−1 (SPEC §4): ``[T]``, no gradient."""
    lam = torch.as_tensor(decay, dtype=torch.float64, device=device).detach()
    w = lam ** torch.arange(T - 1, -1, -1, dtype=torch.float64, device=device)
    return (w / w.sum()).to(dtype)


def uniform_weights(T: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    return torch.full((T,), 1.0 / T, dtype=dtype, device=device)


def steps_of(x: Dual) -> Tensor:
    """Per-step values ``[T, B, ...]`` whose gradient goes to the flow with weight 1 at every step
    (SSF's ∂FI/∂I[t] := 1): ``seq[t] + (flow − flow.detach())``."""
    return x.seq.to(x.flow.dtype) + (x.flow - x.flow.detach()).unsqueeze(0)


_LINEAR_TYPES: tuple[type, ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten, nn.Identity,
)


def is_linear_in_time(module: nn.Module) -> bool:
    """True for modules that are affine per sample (so aggregate-then-apply equals apply-then-aggregate)."""
    if isinstance(module, nn.Sequential):
        return all(is_linear_in_time(m) for m in module)
    return isinstance(module, _LINEAR_TYPES)


def _fold(fn: Callable[[Tensor], Tensor], seq: Tensor) -> Tensor:
    y = fn(seq.flatten(0, 1))
    return y.unflatten(0, seq.shape[:2])


def map_linear(fn: Callable[[Tensor], Tensor], x: Dual) -> Dual:
    """Apply an affine stateless ``fn`` to both streams (seq folded over T·B, without autograd)."""
    with torch.no_grad():
        seq = _fold(fn, x.seq.to(x.flow.dtype) if x.seq.dtype == torch.bool else x.seq)
    return Dual(seq, fn(x.flow), x.weights)


def map_stateless(fn: Callable[[Tensor], Tensor], x: Dual) -> Dual:
    """Apply a nonlinear stateless ``fn``: flow value = aggregate of ``fn(seq)``, gradient = ``fn`` at the flow."""
    with torch.no_grad():
        seq = _fold(fn, x.seq.to(x.flow.dtype) if x.seq.dtype == torch.bool else x.seq)
    return Dual(seq, straight_through(aggregate(seq, x.weights).to(x.flow.dtype), fn(x.flow)), x.weights)


def reject_batchnorm(module: nn.Module, who: str) -> None:
    """torch's BatchNorm inside a folded container would see the flow batch as a second batch."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not getattr(m, "supports_dual", False):
            raise ValueError(
                f"{who}: {type(m).__name__} cannot run under ssf/dsr inside a folded container (it would update its "
                "statistics from the flow batch); use spikeforge.layers.BatchNormTB / TdBN as its own layer"
            )
