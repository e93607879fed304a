"""Run a spiking layer over a lazy input sequence, window by window (the seq stream of ``ssf``/``dsr``).

The neuron's kernel runs on each window of time steps of its input (:class:`~spikeforge.methods.lazy.LazySeq`),
starting each window from the membrane potential the previous one ended with, so the spikes equal one
run over the whole sequence. The spikes ``[T, B, ...]`` are kept one bit per value; the weighted sums of
input and output that the methods' flows need are accumulated on the way. Nothing here is differentiable.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from spikeforge.methods.bits import PackedBool
from spikeforge.methods.lazy import LazySeq, accumulate
from spikeforge.neuron.membrane import WindowedStats

__all__ = ["FireResult", "fire_lazy"]


class FireResult(NamedTuple):
    spikes: LazySeq   #: ``[T, B, ...]`` spikes, stored one bit per value
    input_sum: Tensor  #: Σ_t w_t·x[t] ``[B, ...]``
    spike_sum: Tensor  #: Σ_t w_t·s[t] ``[B, ...]``
    membrane: tuple[Tensor, Tensor] | None = None  #: (μ [C], σ² [C]) of H − V_th when a recorder is attached


@torch.compiler.disable
@torch.no_grad()
def fire_lazy(node: nn.Module, x: LazySeq, weights: Tensor, dtype: torch.dtype) -> FireResult:
    """Spikes of ``node`` (a :class:`~spikeforge.neuron.node.BaseNode`) for input ``x`` ``[T, B, ...]``
    and the ``weights`` ``[T]``-weighted sums of input and spikes, computed in ``dtype``; with a membrane
    recorder attached to the node, also the per-channel statistics of H − V_th (values only)."""
    T = x.T
    weights = weights.to(dtype)
    spikes = PackedBool(x.shape, x.device)
    membrane = WindowedStats() if node.membrane_sink is not None else None
    v, input_sum, spike_sum = None, None, None
    for t0, t1, chunk in x.chunks(dtype):
        s, v_seq = node.run_kernel(chunk, v, return_v=t1 < T or membrane is not None)
        if membrane is not None:
            membrane.add(node.charge(chunk, v_seq, v) - node.threshold(chunk))
        v = None if v_seq is None else v_seq[-1]
        spikes.write(t0, s)
        input_sum = accumulate(input_sum, weights[t0:t1], chunk)
        spike_sum = accumulate(spike_sum, weights[t0:t1], s)
    return FireResult(x.packed(spikes), input_sum, spike_sum,
                      None if membrane is None else membrane.result(dtype))
