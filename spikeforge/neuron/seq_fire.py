"""Run a spiking layer over a lazy input sequence, window by window (the seq stream of ``ssf``/``dsr``).

The neuron's kernel runs on each window of time steps of its input (:class:`~spikeforge.streams.lazy.LazySeq`),
starting each window from the membrane potential the previous one ended with, so the spikes equal one
run over the whole sequence. The spikes ``[T, B, ...]`` are kept one bit per value; the weighted sums of
input and output that the methods' flows need are accumulated on the way. Nothing here is differentiable.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.membrane import charge
from spikeforge.neuron.node import check_sequence
from spikeforge.streams.bits import PackedBool
from spikeforge.streams.lazy import LazySeq, accumulate
from spikeforge.streams.stats import WindowedStats

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
    like = weights[:0]  # the dtype and device of the computation
    decay, gain = node.coefficients(like)  # λ, κ, V_th made once per layer call, not per window
    vth = node.threshold(like)
    kernel, rule = KERNELS.get(node.backend), node.rule
    v, input_sum, spike_sum = None, None, None
    for t0, t1, window in x.windows(dtype):
        check_sequence(window, type(node).__name__)
        s, v_seq = kernel(window, v, decay, gain, vth, rule, t1 < T or membrane is not None)
        if membrane is not None:
            membrane.add(charge(window, v_seq, v, decay, gain, rule.v_rest) - vth)
        v = None if v_seq is None else v_seq[-1]
        spikes.write(t0, s)
        input_sum = accumulate(input_sum, weights[t0:t1], window)
        spike_sum = accumulate(spike_sum, weights[t0:t1], s)
    return FireResult(x.packed(spikes), input_sum, spike_sum,
                      None if membrane is None else membrane.result(dtype))
