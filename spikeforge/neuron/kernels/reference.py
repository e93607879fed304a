"""The ``torch`` kernel: the readable reference loop, autograd through time, any dtype.

It is the oracle every other kernel is tested against and the only one that accepts an arbitrary
callable surrogate. Its :meth:`~ReferenceKernel.fire_window` is the oracle of the fused window passes.
"""
from __future__ import annotations

import torch
from torch import Tensor

from spikeforge.neuron.kernels.base import Kernel, NeuronSpec
from spikeforge.neuron.kernels.window import affine_channels, prepare_window
from spikeforge.streams.bits import pack_bits
from spikeforge.neuron.surrogate import Surrogate

__all__ = ["ReferenceKernel", "spike", "step"]


def spike(h_minus_vth: Tensor, spec: NeuronSpec) -> Tensor:
    """Spikes Θ(H − V_th) with the spec's surrogate gradient."""
    if isinstance(spec.surrogate, Surrogate):
        return spec.surrogate(h_minus_vth, spec.strict)
    return spec.surrogate(h_minus_vth)


def step(v: Tensor, x: Tensor, decay: Tensor, input_gain: Tensor, v_threshold: Tensor, c: Tensor,
         fire_threshold: Tensor, spec: NeuronSpec) -> tuple[Tensor, Tensor]:
    """One step ``[...]``: charge ``(λ·V + κ·X) + c``, fire at ``fire_threshold``, reset.

    Returns ``(spikes, V after reset)``, both ``[...]``."""
    h = decay * v + input_gain * x + c
    s = spike(h - fire_threshold, spec)
    s_reset = s.detach() if spec.detach_reset else s
    if spec.hard:
        return s, s_reset * spec.v_reset + (1 - s_reset) * h
    return s, h - s_reset * v_threshold


def _constants(decay: Tensor, v_threshold: Tensor, spec: NeuronSpec) -> tuple[Tensor, Tensor]:
    """(c = (1 − λ)·v_rest, the firing threshold r·V_th) in the parameters' dtype."""
    return (1 - decay) * spec.v_rest, (v_threshold if spec.fire_ratio == 1.0 else spec.fire_ratio * v_threshold)


class ReferenceKernel(Kernel):
    """Python loop over T: charge, fire, reset (see :mod:`spikeforge.neuron.kernels.base`)."""

    name = "torch"

    def __call__(self, x, v_init, decay, input_gain, v_threshold, spec: NeuronSpec, return_v=False):
        c, fth = _constants(decay, v_threshold, spec)
        v = torch.full_like(x[0], spec.v_rest) if v_init is None else v_init
        spikes, vs = [], []
        for t in range(x.shape[0]):
            s, v = step(v, x[t], decay, input_gain, v_threshold, c, fth, spec)
            spikes.append(s)
            if return_v:
                vs.append(v)
        return torch.stack(spikes), (torch.stack(vs) if return_v else None)

    def fire_window(self, x, state, weights, decay, gain, vth, spec: NeuronSpec, bits, affine=None) -> None:
        """Loop over the n steps in torch ops (any device, dtype and surrogate); see :meth:`Kernel.fire_window`."""
        a = prepare_window(x, state, weights, decay, gain, vth, bits, affine)
        compute = state.v.dtype
        xs = a.x.to(compute)
        if a.affine is not None:
            xs = affine_channels(a.affine, xs)
        c, fth = _constants(a.decay, a.vth, spec)
        v, spikes = state.v, []
        for t in range(xs.shape[0]):
            s, v = step(v, xs[t], a.decay, a.gain, a.vth, c, fth, spec)
            state.input_sum.addcmul_(xs[t], a.weights[t])
            state.spike_sum.addcmul_(s, a.weights[t])
            spikes.append(s)
        state.v.copy_(v)
        if spikes:
            bits.copy_(pack_bits(torch.stack(spikes)))
