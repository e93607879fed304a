"""The ``torch`` kernel: the readable reference loop, autograd through time, any dtype.

It is the oracle every other kernel is tested against and the only one that accepts an arbitrary
callable surrogate.
"""
from __future__ import annotations

import torch
from torch import Tensor

from spikeforge.neuron.kernels.base import Kernel, NeuronRule
from spikeforge.neuron.surrogate import Surrogate

__all__ = ["ReferenceKernel", "fire"]


def fire(h_minus_vth: Tensor, rule: NeuronRule) -> Tensor:
    """Spikes Θ(H − V_th) with the rule's surrogate gradient."""
    if isinstance(rule.surrogate, Surrogate):
        return rule.surrogate(h_minus_vth, rule.strict)
    return rule.surrogate(h_minus_vth)


class ReferenceKernel(Kernel):
    """Python loop over T: charge, fire, reset (see :mod:`spikeforge.neuron.kernels.base`)."""

    name = "torch"

    def __call__(self, x, v_init, decay, input_gain, v_threshold, rule: NeuronRule, return_v=False):
        c = (1 - decay) * rule.v_rest
        v = torch.full_like(x[0], rule.v_rest) if v_init is None else v_init
        spikes, vs = [], []
        for t in range(x.shape[0]):
            h = decay * v + input_gain * x[t] + c
            s = fire(h - (v_threshold if rule.fire_ratio == 1.0 else rule.fire_ratio * v_threshold), rule)
            s_reset = s.detach() if rule.detach_reset else s
            if rule.hard:
                v = s_reset * rule.v_reset + (1 - s_reset) * h
            else:
                v = h - s_reset * v_threshold
            spikes.append(s)
            if return_v:
                vs.append(v)
        return torch.stack(spikes), (torch.stack(vs) if return_v else None)
