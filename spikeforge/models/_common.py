"""Helpers shared by the model families: neuron presets and the builders' argument merge."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from spikeforge.neuron.dsr import LIF_PRESETS, dsr_lif_preset

__all__ = ["DSR_LAYOUT_NEURON", "PLIF_NEURON", "TET_NEURON", "default_dsr_neuron", "merge_arch", "neuron_decay"]

#: the PLIF paper's neuron, also SEW's DVS nets (SPEC §7.1, §7.2): PLIF τ0 = 2, V_th 1, reset to 0,
#: detached reset, ATan α = 2
PLIF_NEURON: dict[str, Any] = {"kind": "plif", "init_tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0,
                               "detach_reset": True, "surrogate": {"name": "atan", "alpha": 2.0}}
#: TET's LIF (SPEC §6.3): the default neuron of TET's own nets (ResNet-19, VGGSNN)
TET_NEURON: dict[str, Any] = {"kind": "lif", "decay": 0.5, "v_threshold": 1.0, "v_reset": 0.0, "strict": True,
                              "detach_reset": False, "surrogate": {"name": "triangle", "alpha": 1.0}}
#: the default neuron of the DSR layouts under bptt and ssf: SSF supp. Table S2's "DSR-like net" setting
#: (LIF λ = 0.95, V_th 1, hard reset to 0); strict firing, undetached reset and the triangle surrogate as TET
#: (assumed: S2 does not give them). TET's λ = 0.5 would leave the head's neuron after AvgPool silent at
#: init (a pooled rate ≤ 1 never crosses V_th = 1 under λ = 0.5 for small T).
DSR_LAYOUT_NEURON: dict[str, Any] = {**TET_NEURON, "decay": 0.95}


def default_dsr_neuron(T: int) -> dict[str, Any]:
    """DSR-LIF with the official code's preset for ``T`` (SPEC §5 table); for a T the table lacks, the
    preset of the nearest listed T (ties to the larger; our choice)."""
    nearest = min(LIF_PRESETS, key=lambda t: (abs(t - T), -t))
    return dsr_lif_preset(nearest)


def neuron_decay(node: nn.Module) -> float:
    """λ of a spiking layer (its charge H = λ·V + κ·X), dimensionless; 1.0 for IF and for modules without one.

    Read in float64, so a configured λ comes back as given (0.9, not float32's 0.8999999762); a learnable
    λ (PLIF's 1 − sigmoid(w)) is computed in float64 from its float32 parameter.
    """
    coefficients = getattr(node, "coefficients", None)
    if coefficients is None:
        return 1.0
    with torch.no_grad():
        return float(coefficients(torch.zeros((), dtype=torch.float64))[0])


def merge_arch(variant: str, arch: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """User kwargs over the builder's fixed arch args; a conflicting value raises (torchvision's
    ``_ovewrite_named_param``)."""
    out = dict(kwargs)
    for key, value in arch.items():
        if key in out and _normalise(out[key]) != _normalise(value):
            raise ValueError(f"{variant}: {key} is fixed to {value!r} by the architecture, got {out[key]!r}")
        out[key] = value
    return out


def _normalise(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value
