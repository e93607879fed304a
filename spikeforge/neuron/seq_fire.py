"""Run a spiking layer over a lazy input sequence, window by window (the seq stream of ``ssf``/``dsr``).

Each window of time steps of the input (:class:`~spikeforge.streams.lazy.LazySeq`) goes through the kernel's
no-grad window pass (:meth:`~spikeforge.neuron.kernels.base.Kernel.fire_window`): one launch that runs the
neuron over the window from the potential the previous window ended with (so the spikes equal one run over
the whole sequence), writes the spikes one bit per value and adds the weighted sums of input and spikes that
the methods' flows need. An input that is a BatchNorm with fixed statistics of another sequence
(:meth:`LazySeq.channel_affine <spikeforge.streams.lazy.LazySeq.channel_affine>`) is read unnormalised and
the affine map applied on load. λ, κ and V_th are made once per call, never per window.

Asked to record the membrane statistics, the layer instead runs the kernel's full forward per window
(the potentials are needed for the statistics of H − V_th). Nothing here is differentiable.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from spikeforge.neuron.kernels import KERNELS, WindowState
from spikeforge.neuron.membrane import charge
from spikeforge.neuron.checks import check_sequence
from spikeforge.streams.bits import PackedBool
from spikeforge.streams.lazy import LazySeq, accumulate
from spikeforge.streams.stats import WindowedStats

__all__ = ["FireResult", "fire_lazy"]

_STATE_DTYPES = (torch.float32, torch.float64)


class FireResult(NamedTuple):
    spikes: LazySeq   #: ``[T, B, ...]`` spikes, stored one bit per value
    input_sum: Tensor  #: Σ_t w_t·x[t] ``[B, ...]``
    spike_sum: Tensor  #: Σ_t w_t·s[t] ``[B, ...]``
    membrane: tuple[Tensor, Tensor] | None = None  #: (μ [C], σ² [C]) of H − V_th when asked to record


@torch.no_grad()
def fire_lazy(node: nn.Module, x: LazySeq, weights: Tensor, dtype: torch.dtype,
              constants: tuple[Tensor, Tensor, Tensor] | None = None, record: bool = False) -> FireResult:
    """Spikes of ``node`` (a :class:`~spikeforge.neuron.node.BaseNode`) for input ``x`` ``[T, B, ...]``
    and the ``weights`` ``[T]``-weighted sums of input and spikes, computed in ``dtype``; with ``record``,
    also the per-channel statistics of H − V_th (values only). ``constants``: the node's (λ, κ, V_th) as
    0-dim tensors in ``dtype`` when the caller has made them already."""
    weights = weights.to(dtype)
    if constants is None:
        like = weights[:0]  # the dtype and device of the computation
        constants = (*node.coefficients(like), node.threshold(like))
    decay, gain, vth = constants
    if record:
        return _fire_recording(node, x, weights, dtype, decay, gain, vth)
    source, affine = x, None
    if x.affine is not None and x.affine[1].dtype == dtype:  # BN with fixed statistics: applied on load
        source, scale, shift = x.affine
        affine = (scale, shift, math.prod(x.shape[3:]))
    kernel, spec = KERNELS.get(node.backend), node.spec
    spikes = PackedBool(x.shape, x.device, kernel.unpack)
    state = WindowState.start(spikes.step_numel, spec.v_rest, dtype if dtype in _STATE_DTYPES else torch.float32,
                              x.device)
    for t0, t1, window in source.windows(dtype):
        check_sequence(window, type(node).__name__)
        kernel.fire_window(window.reshape(t1 - t0, -1), state, weights[t0:t1], decay, gain, vth, spec,
                           spikes.data[t0:t1], affine)
    step = x.shape[1:]
    return FireResult(x.packed(spikes), state.input_sum.view(step).to(dtype), state.spike_sum.view(step).to(dtype))


def _fire_recording(node: nn.Module, x: LazySeq, weights: Tensor, dtype: torch.dtype, decay: Tensor, gain: Tensor,
                    vth: Tensor) -> FireResult:
    """:func:`fire_lazy` with the membrane statistics: the kernel's forward with potentials, per window."""
    spikes = PackedBool(x.shape, x.device)
    membrane = WindowedStats()
    kernel, spec = KERNELS.get(node.backend), node.spec
    v, input_sum, spike_sum = None, None, None
    for t0, t1, window in x.windows(dtype):
        check_sequence(window, type(node).__name__)
        s, v_seq = kernel(window, v, decay, gain, vth, spec, True)
        membrane.add(charge(window, v_seq, v, decay, gain, spec.v_rest) - vth)
        v = v_seq[-1]
        spikes.write(t0, s)
        input_sum = accumulate(input_sum, weights[t0:t1], window)
        spike_sum = accumulate(spike_sum, weights[t0:t1], s)
    return FireResult(x.packed(spikes), input_sum, spike_sum, membrane.result(dtype))
