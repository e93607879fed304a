"""``digits_snn``: the embedded default network (SPEC §9 row ``digits``).

Linear 64→128 → spiking layer → Linear 128→10 → non-spiking readout (λ_r = 1: logits are the time
mean of the per-step outputs). No BN (SPEC §9); ``batchnorm=True`` adds a :class:`BatchNormTB` after the
first linear layer (our extension: a cheap BN model for the ``--sync-bn`` and BN tests). The spiking layer is the method's: LIF (decay λ = 0.9, κ = 1,
V_th = 1, hard reset to 0, ATan α = 2) under bptt and ssf; DSR-IF (V_th init 1, lower bound 0.01,
α = 0.5) under dsr.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from spikeforge.layers import BatchNormTB, TimeDistributed
from spikeforge.methods import Method
from spikeforge.streams.dual import Dual
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS

__all__ = ["DigitsSNN"]

DEFAULT_NEURON = {"kind": "lif", "decay": 0.9, "v_threshold": 1.0, "v_reset": 0.0, "surrogate": {"name": "atan", "alpha": 2.0}}
DEFAULT_DSR_NEURON = {"kind": "if", "v_threshold": 1.0, "lower_bound": 0.01, "alpha": 0.5}


class DigitsSNN(SpikingModel):
    """A two-layer spiking MLP for 8×8 digits.

    Args:
        T: time steps a static input is repeated over.
        in_features, hidden, num_classes: layer sizes (64, 128, 10).
        method: a training method or its name (``bptt``, ``ssf``, ``dsr``).
        neuron: neuron config for bptt/ssf (default: SPEC's LIF); dsr_neuron: the DSRNode config for dsr.
        batchnorm: a BatchNormTB(hidden) between the first linear layer (then without bias) and the neuron
            (default False).

    Shape:
        x: ``[B, in_features]`` static (repeated over T) or ``[T, B, in_features]``. Output: logits ``[B, K]``.
    """

    def __init__(self, T: int = 4, in_features: int = 64, hidden: int = 128, num_classes: int = 10,
                 method: Method | str = "bptt", neuron: Mapping[str, Any] | None = None,
                 dsr_neuron: Mapping[str, Any] | None = None, batchnorm: bool = False) -> None:
        super().__init__("digits_snn", T, num_classes, (in_features,), method)
        self.in_features = in_features
        make_sn = self.neuron_factory(neuron if neuron is not None else DEFAULT_NEURON,
                                      dsr_neuron if dsr_neuron is not None else DEFAULT_DSR_NEURON)
        self.fc1 = TimeDistributed(nn.Linear(in_features, hidden, bias=not batchnorm))  # BN's β replaces the bias
        self.bn1 = BatchNormTB(hidden) if batchnorm else nn.Identity()
        self.sn1 = make_sn()
        self.fc2 = TimeDistributed(nn.Linear(hidden, num_classes))
        self.set_head()  # λ_r = 1: the logits are the time mean of the per-step outputs under every method

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        return self.fc2(self.sn1(self.bn1(self.fc1(x))))


@MODELS.register("digits_snn")
def digits_snn(method: Method | str = "bptt", **kwargs: Any) -> DigitsSNN:
    """SPEC §9 ``digits``; 9,610 parameters (64·128+128 + 128·10+10), +1 threshold under dsr."""
    return DigitsSNN(method=method, **kwargs)
