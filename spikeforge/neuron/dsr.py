"""The DSR spiking neuron and the official code's presets (Meng et al., CVPR 2022; SPEC §5).

:class:`DSRNode` is a soft-reset neuron that fires at α·V_th with one learnable V_th per layer, in an IF and a LIF
form (qymeng94/DSR, ``cifar/modules/neuron.py``). It is a neuron like the others: under ``bptt`` it trains with
its surrogate; the ``dsr`` method (:mod:`spikeforge.methods.dsr`) gives it its one-step backward.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from spikeforge.neuron.grad_rule import GradRule
from spikeforge.neuron.node import BaseNode
from spikeforge.streams.dual import decay_weights, uniform_weights

__all__ = ["DSRNode", "IF_PRESET", "KINDS", "LIF_PRESETS", "dsr_lif_preset"]

KINDS = ("if", "lif")
#: LIF settings of the official code by T (SPEC §5 table): init V_th, lower bound, Δt, α (τ = 1)
LIF_PRESETS = {20: (0.3, 0.0005, 0.05, 0.3), 15: (0.3, 0.0005, 0.05, 0.4), 10: (0.3, 0.0005, 0.05, 0.4),
               5: (0.6, 0.001, 0.1, 0.5)}
IF_PRESET = (6.0, 0.01, 0.5)  # init V_th, lower bound, α


def dsr_lif_preset(T: int) -> dict[str, float]:
    """The official code's LIF settings for ``T`` in {5, 10, 15, 20}."""
    if T not in LIF_PRESETS:
        raise ValueError(f"dsr: the official code gives LIF settings for T in {sorted(LIF_PRESETS)}, got T={T}")
    vth, lb, dt, alpha = LIF_PRESETS[T]
    return {"kind": "lif", "v_threshold": vth, "lower_bound": lb, "dt": dt, "alpha": alpha, "tau": 1.0}


class DSRNode(BaseNode):
    """The DSR spiking neuron (IF or LIF form), soft reset, α-firing, learnable V_th.

    IF: u ← u + x_t; s_t = Θ(u − α·V_th); u ← u − V_th·s_t; y_t = V_th·s_t.
    LIF: u ← β·u + (1 − β)·x_t, β = exp(−Δt/τ); same firing and reset; y_t = V_th·s_t/Δt.

    Args:
        kind: ``"if"`` or ``"lif"``.
        v_threshold: initial V_th (IF default 6; LIF default 0.3, the T = 20 preset).
        lower_bound: V_th is clamped in place to max(V_th, lower_bound) before every forward.
        alpha: firing at α·V_th (no gradient; spike value, reset and backward ignore it).
        dt: Δt of the LIF form (steps); tau: τ of the LIF form.
        surrogate_function, backend: as :class:`~spikeforge.neuron.node.BaseNode` (used under bptt).

    Shape:
        x ``[T, B, ...]`` → y ``[T, B, ...]`` with values in {0, V_th} (IF) or {0, V_th/Δt} (LIF).
    """

    def __init__(self, kind: str = "if", v_threshold: float | None = None, lower_bound: float | None = None,
                 alpha: float | None = None, dt: float = 0.05, tau: float = 1.0,
                 surrogate_function: Any = "atan", backend: str = "auto", grad_rule: GradRule | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"DSRNode: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        lif_defaults = dsr_lif_preset(20)
        vth_d, lb_d, alpha_d = IF_PRESET if kind == "if" else (lif_defaults["v_threshold"], lif_defaults["lower_bound"],
                                                             lif_defaults["alpha"])
        v_threshold = vth_d if v_threshold is None else float(v_threshold)
        lower_bound = lb_d if lower_bound is None else float(lower_bound)
        alpha = alpha_d if alpha is None else float(alpha)
        for name, value in (("v_threshold", v_threshold), ("lower_bound", lower_bound), ("alpha", alpha),
                            ("dt", dt), ("tau", tau)):
            if not (math.isfinite(float(value)) and float(value) > 0):
                raise ValueError(f"DSRNode: {name} must be a finite number > 0, got {value}")
        self.kind, self.lower_bound, self.alpha = kind, lower_bound, alpha
        self.dt, self.tau = float(dt), float(tau)
        self.beta = math.exp(-self.dt / self.tau)
        super().__init__(v_threshold=v_threshold, v_reset=None, detach_reset=True, surrogate_function=surrogate_function,
                         backend=backend, learnable_threshold=True, fire_ratio=alpha, grad_rule=grad_rule)

    def coefficients(self, like: Tensor) -> tuple[Tensor, Tensor]:
        lam, gain = (1.0, 1.0) if self.kind == "if" else (self.beta, 1.0 - self.beta)
        return (torch.full((), lam, dtype=like.dtype, device=like.device),
                torch.full((), gain, dtype=like.dtype, device=like.device))

    def spike_value(self, like: Tensor) -> Tensor:
        """V_th (IF) or V_th/Δt (LIF), differentiable in V_th."""
        vth = self.threshold(like)
        return vth if self.kind == "if" else vth / self.dt

    def weights(self, T: int, like: Tensor) -> Tensor:
        return (uniform_weights(T, like.dtype, like.device) if self.kind == "if"
                else decay_weights(self.beta, T, like.dtype, like.device))

    def clamp_parameters(self) -> None:
        """V_th ← max(V_th, lower_bound), in place, as the official code does before every forward."""
        with torch.no_grad():
            self.v_threshold.clamp_(min=self.lower_bound)

    def spike_output(self, spikes: Tensor, like: Tensor) -> Tensor:
        """y = spikes × V_th (IF) or × V_th/Δt (LIF), differentiable in V_th."""
        return spikes * self.spike_value(like)

    def extra_repr(self) -> str:
        parts = [f"kind={self.kind!r}", f"v_threshold={float(self.v_threshold.detach()):g}", f"lower_bound={self.lower_bound:g}",
                 f"alpha={self.alpha:g}"]
        if self.kind == "lif":
            parts += [f"dt={self.dt:g}", f"tau={self.tau:g}"]
        return ", ".join(parts + self._kernel_repr())
