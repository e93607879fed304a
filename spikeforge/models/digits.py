"""``digits_snn``: the embedded default network (SPEC §9 row ``digits``).

Linear 64→128 → LIF (decay λ = 0.9, κ = 1, V_th = 1, hard reset to 0, ATan α = 2) → Linear 128→10
→ non-spiking readout. The readout integrates the per-step output currents (λ = 1); the logits are
its final potential divided by T, i.e. the time mean of the per-step outputs (SPEC §1). No BN.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from spikeforge.models.output import ModelOutput
from spikeforge.models.registry import MODELS
from spikeforge.neuron.factory import make_node
from spikeforge.neuron.node import Readout

__all__ = ["DigitsSNN"]

DEFAULT_NEURON = {"kind": "lif", "decay": 0.9, "v_threshold": 1.0, "v_reset": 0.0, "surrogate": {"name": "atan", "alpha": 2.0}}


class DigitsSNN(nn.Module):
    """A two-layer spiking MLP for 8×8 digits.

    Args:
        T: time steps a static input is repeated over.
        in_features, hidden, num_classes: layer sizes (64, 128, 10).
        neuron: neuron config for :func:`~spikeforge.neuron.factory.make_node` (default: SPEC's LIF).

    Shape:
        x: ``[B, in_features]`` static (repeated over T) or ``[T, B, in_features]``. Output: logits ``[B, K]``.
    """

    def __init__(self, T: int = 4, in_features: int = 64, hidden: int = 128, num_classes: int = 10,
                 neuron: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if int(T) < 1:
            raise ValueError(f"digits_snn: T must be >= 1, got {T}")
        self.T, self.in_features, self.num_classes = int(T), in_features, num_classes
        self.fc1 = nn.Linear(in_features, hidden)
        self.sn1 = make_node(neuron if neuron is not None else DEFAULT_NEURON)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.readout = Readout(decay=1.0)

    def time_input(self, x: Tensor) -> Tensor:
        """``[B, F]`` → ``[T, B, F]`` (repeated); ``[T, B, F]`` passes through; anything else raises."""
        if x.dim() not in (2, 3) or x.shape[-1] != self.in_features:
            raise ValueError(
                f"digits_snn: expected input [B, {self.in_features}] or [T, B, {self.in_features}], got {tuple(x.shape)}"
            )
        return x.unsqueeze(0).expand(self.T, *x.shape) if x.dim() == 2 else x

    def forward_output(self, x: Tensor) -> ModelOutput:
        steps = self.fc2(self.sn1(self.fc1(self.time_input(x))))  # [T, B, K] per-step output currents
        u = self.readout(steps)  # [T, B, K] integrated
        return ModelOutput(logits=u[-1] / steps.shape[0], steps=steps, stats={})

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_output(x).logits


@MODELS.register("digits_snn")
def digits_snn(method: str = "bptt", **kwargs: Any) -> DigitsSNN:
    """SPEC §9 ``digits``; 9,610 parameters (64·128+128 + 128·10+10)."""
    if method != "bptt":
        raise ValueError(f"digits_snn: method {method!r} is not available yet; available: bptt")
    return DigitsSNN(**kwargs)
