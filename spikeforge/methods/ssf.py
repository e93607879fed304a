"""``ssf``: stabilized spiking flow (Wang et al., ICCV 2023; SPEC §4). No official code is public.

Forward: the exact spike trains. Backward through the decay-weighted flows, once, not through time:
with w_t = λ^(T−1−t)/W, FI = Σ w_t·I[t] (I = κ·X, the charge the neuron integrates) and
FO = Σ w_t·o[t],

    ∂FO/∂FI = 1[0 < FI < V_th]    (supp. S7: slope 1; ``slope="clamp"`` uses the clamp's 1/V_th)

- one-step (default): layers pass ``Dual(seq, flow)``; a neuron's FI value comes from its own input
  sequence with its own λ, its gradient straight-through from the incoming flow; its FO value is the
  aggregate of its own spikes; the whole backward is one ANN-sized step.
- ``faithful=True``: the per-step reading of S6 on the full ``[T, B, ...]`` graph: every step gets
  ∂L/∂I[t] = (Σ_s w_s·g[s])·mask with g[s] = ∂L/∂o[s]; T× the backward cost.

Neurons must reset to 0 (hard) or by V_th (soft); V_th is not trained; PLIF's ``w`` has no temporal
path here and is frozen when the neuron is built (a warning says so).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from spikeforge.methods.base import Method
from spikeforge.streams.dual import Dual, aggregate, decay_weights, masked_flow
from spikeforge.methods.registry import METHODS
from spikeforge.neuron.grad_rule import OneStepRule
from spikeforge.neuron.node import BaseNode
from spikeforge.neuron.seq_fire import FireResult, fire_lazy

__all__ = ["SSF", "SSFRule"]

SLOPES = ("one", "clamp")


class _PerStepFlowGrad(torch.autograd.Function):
    """Forward: the given spikes. Backward: ∂L/∂x[t] = κ·(Σ_s w_s·g[s])·slope_mask, the same for every t."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, spikes: Tensor, weights: Tensor, scaled_mask: Tensor) -> Tensor:
        ctx.save_for_backward(weights, scaled_mask)
        return spikes

    @staticmethod
    def backward(ctx: Any, g: Tensor):
        weights, scaled_mask = ctx.saved_tensors
        g_flow = aggregate(g, weights.to(g.dtype))
        return (g_flow * scaled_mask).unsqueeze(0).expand_as(g).contiguous(), None, None, None


class SSFRule(OneStepRule):
    """The SSF backward of one neuron (the :class:`~spikeforge.neuron.grad_rule.GradRule` that :class:`SSF` gives
    the neurons it builds). Args: ``faithful``, ``slope`` ("one" | "clamp")."""

    name = "ssf"
    trains_decay = False  # PLIF's w has no temporal path under ssf: the node freezes it

    def __init__(self, faithful: bool = False, slope: str = "one") -> None:
        if slope not in SLOPES:
            raise ValueError(f"ssf: slope must be one of {', '.join(SLOPES)}, got {slope!r}")
        super().__init__(faithful)
        self.slope = slope

    def check(self, node: nn.Module) -> None:
        if not isinstance(node, BaseNode):
            raise ValueError(f"ssf: cannot train {type(node).__name__}; expected a spiking neuron")
        if node.spec.v_reset not in (None, 0.0) or node.spec.fire_ratio != 1.0:
            raise ValueError(f"ssf: neurons must reset to 0 or by V_th and fire at V_th (SPEC §4); got "
                             f"v_reset={node.spec.v_reset}, fire_ratio={node.spec.fire_ratio:g}")
        if node.learnable_threshold:
            raise ValueError("ssf: V_th is not trained under ssf; build the neuron without learnable_threshold")

    def flow_weights(self, node: BaseNode, T: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(weights [T] from the node's own λ, and λ, κ, V_th themselves), no gradient."""
        decay, gain = (c.detach() for c in node.coefficients(like))
        vth = node.threshold(like).detach()
        return decay_weights(decay, T, dtype=like.dtype, device=like.device), decay, gain, vth

    def slope_mask(self, fi: Tensor, vth: Tensor) -> Tensor:
        """∂FO/∂FI: 1[0 < FI < V_th] (``slope="clamp"``: divided by V_th)."""
        return ((fi > 0) & (fi < vth)).to(fi.dtype) * self.slope_scale(vth)

    def slope_scale(self, vth: Tensor) -> Tensor | float:
        """The slope inside the mask: 1, or 1/V_th for ``slope="clamp"``."""
        return 1.0 / vth if self.slope == "clamp" else 1.0

    def flows(self, node: BaseNode, x_seq: Tensor, spikes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(weights [T], FI value, FO value, ∂FO/∂FI mask, κ) from the node's own λ and κ (no gradient)."""
        w, _, gain, vth = self.flow_weights(node, x_seq.shape[0], x_seq)
        fi = gain * aggregate(x_seq, w)
        fo = aggregate(spikes, w)
        return w, fi, fo, self.slope_mask(fi, vth), gain

    def flow_input(self, node: BaseNode, flow: Tensor) -> Tensor:
        """FI's flow: κ·flow (the charge the neuron integrates)."""
        return node.coefficients(flow)[1].detach() * flow

    def one_step(self, node: BaseNode, x: Dual, record: bool) -> tuple[Dual, FireResult]:
        with torch.no_grad():
            w, decay, gain, vth = self.flow_weights(node, x.T, x.flow.detach())
            fired = fire_lazy(node, x.seq, w, x.flow.dtype, (decay, gain, vth), record)
            fi_value = gain * fired.input_sum
            inside = (fi_value > 0) & (fi_value < vth)
        # ∂FO/∂flow = κ·1[0 < FI < V_th]·slope, the mask kept as bool
        return Dual(fired.spikes, masked_flow(fired.spike_sum, x.flow, inside, gain * self.slope_scale(vth)), w), fired

    def per_step(self, node: BaseNode, x: Tensor, spikes: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            w, _, _, mask, gain = self.flows(node, x.detach(), spikes)
        return _PerStepFlowGrad.apply(x, spikes, w, gain * mask), w

    def options(self) -> list[str]:
        return super().options() + ([f"slope={self.slope!r}"] if self.slope != "one" else [])


@METHODS.register("ssf")
class SSF(Method):
    """Stabilized spiking flow. Args: ``faithful`` (per-step reading, T× backward), ``slope`` ("one" | "clamp"),
    ``window_mb``, ``store_mb`` (the spiking forward's time windows, see :class:`~spikeforge.methods.base.Method`)."""

    name = "ssf"
    min_T = 2

    def __init__(self, faithful: bool = False, slope: str = "one", window_mb: float | None = None,
                 store_mb: float | None = None) -> None:
        super().__init__(SSFRule(faithful, slope), window_mb, store_mb)

    def output_neuron(self, make_neuron, hidden_decay: float) -> tuple[nn.Module, float]:
        """SSF's output layer never fires (SPEC §4): no output neuron; the readout integrates with the
        hidden neurons' λ, so the logits are the final membrane potential (divided by W)."""
        return nn.Identity(), hidden_decay

    def readout_decay(self, hidden_decay: float) -> float:
        return hidden_decay
