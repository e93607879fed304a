"""``digits_snn``: the embedded default network (SPEC §9 row ``digits``).

Linear 64→128 → spiking layer → Linear 128→10 → non-spiking readout. The readout integrates the
per-step output currents (λ = 1); the logits are its final potential divided by T, i.e. the time
mean of the per-step outputs (SPEC §1; under ssf this is SSF's final membrane potential, scaled by
1/T). No BN. The spiking layer is the method's: LIF (decay λ = 0.9, κ = 1, V_th = 1, hard reset to 0,
ATan α = 2) under bptt and ssf; DSR-IF (V_th init 1, lower bound 0.01, α = 0.5) under dsr.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from spikeforge.layers import TimeDistributed
from spikeforge.methods import Method, get_method
from spikeforge.methods.dual import Dual, steps_of
from spikeforge.models.output import ModelOutput
from spikeforge.models.registry import MODELS
from spikeforge.neuron.node import Readout

__all__ = ["DigitsSNN"]

DEFAULT_NEURON = {"kind": "lif", "decay": 0.9, "v_threshold": 1.0, "v_reset": 0.0, "surrogate": {"name": "atan", "alpha": 2.0}}
DEFAULT_DSR_NEURON = {"kind": "if", "v_threshold": 1.0, "lower_bound": 0.01, "alpha": 0.5}


class DigitsSNN(nn.Module):
    """A two-layer spiking MLP for 8×8 digits.

    Args:
        T: time steps a static input is repeated over.
        in_features, hidden, num_classes: layer sizes (64, 128, 10).
        method: a training method or its name (``bptt``, ``ssf``, ``dsr``).
        neuron: neuron config for bptt/ssf (default: SPEC's LIF); dsr_neuron: the DSRNode config for dsr.

    Shape:
        x: ``[B, in_features]`` static (repeated over T) or ``[T, B, in_features]``. Output: logits ``[B, K]``.
    """

    def __init__(self, T: int = 4, in_features: int = 64, hidden: int = 128, num_classes: int = 10,
                 method: Method | str = "bptt", neuron: Mapping[str, Any] | None = None,
                 dsr_neuron: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.method = get_method(method)
        self.method.check_T(int(T), "digits_snn")
        self.T, self.in_features, self.num_classes = int(T), in_features, num_classes
        self.fc1 = TimeDistributed(nn.Linear(in_features, hidden))
        self.sn1 = self.method.make_neuron(neuron if neuron is not None else DEFAULT_NEURON,
                                           dsr=dsr_neuron if dsr_neuron is not None else DEFAULT_DSR_NEURON)
        self.fc2 = TimeDistributed(nn.Linear(hidden, num_classes))
        self.readout = Readout(decay=1.0, output="final")

    def time_input(self, x: Tensor) -> Tensor:
        """``[B, F]`` → ``[T, B, F]`` (repeated); ``[T, B, F]`` passes through; anything else raises."""
        if x.dim() not in (2, 3) or x.shape[-1] != self.in_features:
            raise ValueError(
                f"digits_snn: expected input [B, {self.in_features}] or [T, B, {self.in_features}], got {tuple(x.shape)}"
            )
        return x.unsqueeze(0).expand(self.T, *x.shape) if x.dim() == 2 else x

    def forward_output(self, x: Tensor) -> ModelOutput:
        x = self.method.enter(self.time_input(x))
        out = self.fc2(self.sn1(self.fc1(x)))  # [T, B, K] per-step output currents (or their Dual)
        T = out.shape[0]
        logits = self.readout(out) / T
        return ModelOutput(logits=logits, steps=steps_of(out) if isinstance(out, Dual) else out, stats={})

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_output(x).logits


@MODELS.register("digits_snn")
def digits_snn(method: Method | str = "bptt", **kwargs: Any) -> DigitsSNN:
    """SPEC §9 ``digits``; 9,610 parameters (64·128+128 + 128·10+10), +1 threshold under dsr."""
    return DigitsSNN(method=method, **kwargs)
