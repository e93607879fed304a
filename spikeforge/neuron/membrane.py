"""Membrane-potential statistics of the spiking layers, for losses that shape them (RecDis, SPEC §6.4).

Inside ``with record_membrane(model) as rec:`` every spiking neuron of ``model`` adds, per forward,
the per-channel mean and biased variance of the shifted potential ũ = H − V_th (H after charge, before
reset) over (T, B, spatial) to ``rec.stats`` — one ``(μ [C], σ² [C])`` pair per layer call, in call
order; the channel is dim 2 of ``[T, B, C, ...]``. Outside the block the neurons record nothing and
cost nothing.

Gradients: under BPTT through H itself. Under ``ssf``/``dsr`` the values come from the real sequence
and the gradient straight-through from the layer's flow input FI through the same reduction
(μ = μ_seq + (mean(FI) − mean(FI).detach()), σ² alike; :func:`flow_stats`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

__all__ = ["MembraneRecorder", "record_membrane", "charge", "channel_stats", "flow_stats", "WindowedStats"]


class MembraneRecorder:
    """Collects ``(μ [C], σ² [C])`` of ũ per spiking-layer call (see module doc)."""

    def __init__(self) -> None:
        self.stats: list[tuple[Tensor, Tensor]] = []

    def add(self, mean: Tensor, var: Tensor) -> None:
        self.stats.append((mean, var))


@contextmanager
def record_membrane(model: nn.Module) -> Iterator[MembraneRecorder]:
    """Make every spiking neuron of ``model`` record its membrane statistics while the block runs."""
    from spikeforge.neuron.node import BaseNode

    recorder = MembraneRecorder()
    nodes = [m for m in model.modules() if isinstance(m, BaseNode)]
    for node in nodes:
        node.membrane_sink = recorder
    try:
        yield recorder
    finally:
        for node in nodes:
            node.membrane_sink = None


def charge(x: Tensor, v: Tensor, v_init: Tensor | None, decay: Tensor, gain: Tensor, v_rest: float) -> Tensor:
    """H[t] = λ·V[t−1] + κ·X[t] + (1 − λ)·v_rest from the input ``x`` and the potentials ``v`` (after reset)
    ``[T, B, ...]``; V[−1] = ``v_init`` or v_rest. Differentiable in x, v, λ, κ."""
    first = torch.full_like(v[:1], v_rest) if v_init is None else v_init.unsqueeze(0).to(v.dtype)
    previous = torch.cat([first, v[:-1]], 0)
    return (decay * previous + gain * x) + (1 - decay) * v_rest


def _reduce_dims(x: Tensor, channel: int) -> list[int]:
    if x.dim() <= channel:
        raise ValueError(f"membrane statistics: expected a channel at dim {channel}, got shape {tuple(x.shape)}")
    return [d for d in range(x.dim()) if d != channel]


def channel_stats(u: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel μ and biased σ² of ``u`` ``[T, B, C, ...]`` over every axis but C: ``([C], [C])``."""
    var, mean = torch.var_mean(u, _reduce_dims(u, 2), correction=0)
    return mean, var


def flow_stats(mean_seq: Tensor, var_seq: Tensor, flow_in: Tensor) -> tuple[Tensor, Tensor]:
    """Statistics with the values of the sequence's and the gradient of the flow input FI ``[B, C, ...]``'s."""
    var_f, mean_f = torch.var_mean(flow_in, _reduce_dims(flow_in, 1), correction=0)
    return (mean_seq.to(mean_f.dtype) + (mean_f - mean_f.detach()),
            var_seq.to(var_f.dtype) + (var_f - var_f.detach()))


class WindowedStats:
    """Per-channel mean and biased variance of a ``[T, B, C, ...]`` sequence fed window by window.

    Each window adds its per-channel sums of d and d², d = x − shift, the shift being the first window's mean
    (so ``σ² = Σd²/n − (Σd/n)²`` loses nothing to a large mean); the sums are taken in the window's dtype
    (float32 for a float16/bfloat16 window: one fp16 window of 65,536 values of size 1 already sums past
    fp16's 65,504) and accumulated in float64. About four times faster per window than ``var_mean``, whose reduction around
    the channel axis is slow on CPU."""

    def __init__(self) -> None:
        self.count, self.shift, self.sum, self.sum_sq = 0, None, None, None

    def add(self, z: Tensor) -> None:
        dims = _reduce_dims(z, 2)
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()
        if self.shift is None:
            self.shift = z.mean(dims)
        d = z - self.shift.view([1, 1, -1] + [1] * (z.dim() - 3))
        s1, s2 = d.sum(dims).double(), d.square_().sum(dims).double()
        self.count += z.numel() // z.shape[2]
        self.sum = s1 if self.sum is None else self.sum + s1
        self.sum_sq = s2 if self.sum_sq is None else self.sum_sq + s2

    def result(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``(μ [C], σ² [C])`` in ``dtype``."""
        if self.shift is None:
            raise ValueError("WindowedStats: no window was added")
        mean_d = self.sum / self.count
        var = (self.sum_sq / self.count - mean_d.square()).clamp_(min=0)
        return (self.shift.double() + mean_d).to(dtype), var.to(dtype)
