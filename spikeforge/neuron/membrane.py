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

from spikeforge.streams.stats import reduce_dims

__all__ = ["MembraneRecorder", "record_membrane", "charge", "channel_stats", "flow_stats"]


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


def channel_stats(u: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel μ and biased σ² of ``u`` ``[T, B, C, ...]`` over every axis but C: ``([C], [C])``."""
    var, mean = torch.var_mean(u, reduce_dims(u, 2), correction=0)
    return mean, var


def flow_stats(mean_seq: Tensor, var_seq: Tensor, flow_in: Tensor) -> tuple[Tensor, Tensor]:
    """Statistics with the values of the sequence's and the gradient of the flow input FI ``[B, C, ...]``'s."""
    var_f, mean_f = torch.var_mean(flow_in, reduce_dims(flow_in, 1), correction=0)
    return (mean_seq.to(mean_f.dtype) + (mean_f - mean_f.detach()),
            var_seq.to(var_f.dtype) + (var_f - var_f.detach()))
