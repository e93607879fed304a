"""``dsr``: differentiation on spike representation (Meng et al., CVPR 2022; SPEC §5).

Follows the official code (qymeng94/DSR, ``cifar/modules/neuron.py``); its quirks are the default.
A DSR network is built for DSR: every spiking layer is a :class:`DSRNode` (soft reset, fires at
α·V_th, spike value V_th (IF) or V_th/Δt (LIF), one learnable V_th per layer, clamped in place to
its lower bound before every forward). Its representation o = Σ_t w_t·y_t (w_t uniform for IF,
β^(T−1−t)/W for LIF, β = exp(−Δt/τ)) approximates clamp(Ī, 0, V_th) (IF) or clamp(Î/τ, 0, V_th/Δt)
(LIF), and the backward differentiates that map:

- IF: ∂o/∂Ī = 1[0 ≤ Ī ≤ V_th] (inclusive), ∂o/∂V_th = 1[Ī > V_th];
- LIF: ∂o/∂Î = (1/τ)·1[0 < Î < V_th·τ/Δt] (strict), ∂o/∂V_th = Δt·1[Î > V_th/Δt] (the code's factor;
  ``exact_vth_grad=True``: the closed form's 1/Δt).

One-step (default): layers pass ``Dual(seq, flow)`` and the backward is one ANN-sized step.
``faithful=True``: the official code's way on the full ``[T, B, ...]`` graph, the neuron's gradient
replaced per step: G = Σ_t g_t (IF) or T·Σ_t w_t·g_t (LIF); ∂L/∂x_t = (G/T)·mask (IF) or
G/(τ·T)·mask (LIF); ∂L/∂V_th = Σ G·1[Ī > V_th] (IF) or Δt·Σ G·1[Î > V_th/Δt] (LIF). Under ``bptt``
the same :class:`DSRNode` trains with its surrogate and gives identical spike trains.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from spikeforge.methods.base import Method
from spikeforge.methods.registry import METHODS
from spikeforge.neuron.dsr import KINDS, LIF_PRESETS, DSRNode, dsr_lif_preset
from spikeforge.neuron.grad_rule import OneStepRule
from spikeforge.neuron.seq_fire import FireResult, fire_lazy
from spikeforge.streams.dual import Dual, aggregate, masked_flow

__all__ = ["DSR", "DSRNode", "DSRRule", "LIF_PRESETS", "dsr_lif_preset"]  # the node and presets live in neuron.dsr

class _PerStepRepresentationGrad(torch.autograd.Function):
    """The official code's replaced neuron gradient on the ``[T, B, ...]`` graph."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, vth: Tensor, y: Tensor, weights: Tensor, m_in: Tensor, m_th: Tensor,
                in_scale: float, th_scale: float) -> Tensor:
        ctx.save_for_backward(weights, m_in, m_th)
        ctx.scales = (in_scale, th_scale)
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor):
        weights, m_in, m_th = ctx.saved_tensors
        in_scale, th_scale = ctx.scales
        T = g.shape[0]
        G = T * aggregate(g, weights.to(g.dtype))  # IF (uniform w): Σ_t g_t; LIF: T·Σ w_t g_t / W
        gx = (G * m_in * (in_scale / T)).unsqueeze(0).expand_as(g).contiguous()
        gvth = (G * m_th).sum() * th_scale
        return gx, gvth.reshape(()), None, None, None, None, None, None


class DSRRule(OneStepRule):
    """The DSR backward of one :class:`DSRNode` (the :class:`~spikeforge.neuron.grad_rule.GradRule` that
    :class:`DSR` gives the neurons it builds). Args: ``faithful``, ``exact_vth_grad``."""

    name = "dsr"

    def __init__(self, faithful: bool = False, exact_vth_grad: bool = False) -> None:
        super().__init__(faithful)
        self.exact_vth_grad = bool(exact_vth_grad)

    def check(self, node: nn.Module) -> None:
        if not isinstance(node, DSRNode):
            raise ValueError(f"dsr: needs DSRNode neurons (soft reset, alpha-firing, learnable V_th); got {type(node).__name__}")

    def masks(self, node: DSRNode, rate_in: Tensor, vth: Tensor) -> tuple[Tensor, Tensor, float]:
        """(input mask scaled by ∂o/∂Ī, V_th mask, V_th-gradient factor) at the input rate, no gradient."""
        m_in, m_th, in_scale, th_scale = self.bool_masks(node, rate_in, vth)
        dtype = rate_in.dtype
        return m_in.to(dtype) * in_scale if in_scale != 1.0 else m_in.to(dtype), m_th.to(dtype), th_scale

    def bool_masks(self, node: DSRNode, rate_in: Tensor, vth: Tensor) -> tuple[Tensor, Tensor, float, float]:
        """(input mask, V_th mask) as bool, with ∂o/∂Ī inside the input mask and the V_th-gradient factor."""
        if node.kind == "if":
            return (rate_in >= 0) & (rate_in <= vth), rate_in > vth, 1.0, 1.0
        m_in = (rate_in > 0) & (rate_in < vth * node.tau / node.dt)
        th_scale = 1.0 / node.dt if self.exact_vth_grad else node.dt
        return m_in, rate_in > vth / node.dt, 1.0 / node.tau, th_scale

    def representation(self, node: DSRNode, x_seq: Tensor, spikes: Tensor):
        """(weights, Ī or Î, o, input mask scaled by ∂o/∂Ī, V_th mask, V_th-gradient factor), no gradient."""
        vth = node.threshold(x_seq).detach()
        w = node.weights(x_seq.shape[0], x_seq)
        rate_in = aggregate(x_seq, w)
        o = aggregate(spikes, w) * node.spike_value(x_seq).detach()
        return (w, rate_in, o, *self.masks(node, rate_in, vth))

    def one_step(self, node: DSRNode, x: Dual, record: bool) -> tuple[Dual, FireResult]:
        with torch.no_grad():
            like = x.flow.detach()
            w = node.weights(x.T, like)
            fired = fire_lazy(node, x.seq, w, like.dtype, record=record)
            value = node.spike_value(like).detach()
            m_in, m_th, in_scale, th_scale = self.bool_masks(node, fired.input_sum, node.threshold(like).detach())
            y = fired.spikes.map(lambda s: s * value, like.shape, like.dtype)
        # ∂o/∂flow = 1[mask]·(1 or 1/τ), ∂o/∂V_th = 1[rate above threshold]·(1, Δt or 1/Δt); bool masks saved
        out = masked_flow(fired.spike_sum * value, x.flow, m_in, in_scale, node.threshold(x.flow), m_th, th_scale)
        return Dual(y, out, w), fired

    def per_step(self, node: DSRNode, x: Tensor, spikes: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            w, _, _, m_in, m_th, th_scale = self.representation(node, x.detach(), spikes)
            y = spikes * node.spike_value(x)
        in_scale = 1.0  # IF: G/T; LIF: G/(τ·T), the 1/τ is inside m_in
        return _PerStepRepresentationGrad.apply(x, node.v_threshold, y, w, m_in, m_th, in_scale, th_scale), w

    def options(self) -> list[str]:
        return super().options() + (["exact_vth_grad=True"] if self.exact_vth_grad else [])


@METHODS.register("dsr")
class DSR(Method):
    """Differentiation on spike representation. Args: ``faithful``, ``exact_vth_grad``,
    ``window_mb``, ``store_mb`` (the spiking forward's time windows, see :class:`~spikeforge.methods.base.Method`)."""

    name = "dsr"
    min_T = 2

    def __init__(self, faithful: bool = False, exact_vth_grad: bool = False, window_mb: float | None = None,
                 store_mb: float | None = None) -> None:
        super().__init__(DSRRule(faithful, exact_vth_grad), window_mb, store_mb)

    def make_neuron(self, config: Mapping[str, Any] | None = None, dsr: Mapping[str, Any] | None = None) -> nn.Module:
        """A :class:`DSRNode` from ``dsr`` (a DSRNode config), or derived from the model's neuron ``config``:
        kind ``if`` → DSR-IF, ``lif`` with soft reset → DSR-LIF; hard reset or PLIF raise."""
        if dsr is None:
            cfg = dict(config or {})
            kind = cfg.get("kind", "lif")
            if kind not in KINDS or cfg.get("v_reset", 0.0) is not None:
                raise ValueError(
                    f"dsr: a neuron of kind {kind!r} with v_reset={cfg.get('v_reset', 0.0)!r} cannot take the DSR form "
                    "(soft reset, alpha-firing, learnable V_th); the model must give a DSR neuron config")
            dsr = {"kind": kind}
        return DSRNode(**dict(dsr), grad_rule=self.grad_rule)

    def output_neuron(self, make_neuron, hidden_decay: float) -> tuple[nn.Module, float]:
        """The DSR head ends in a spiking layer whose representation o is the logits (SPEC §5 "Loss"): the
        readout's λ_r is that neuron's λ (1 for IF, β for LIF), so the normalised final potential is o."""
        node = make_neuron()
        return node, (1.0 if node.kind == "if" else node.beta)
