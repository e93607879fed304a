"""The neuron of Yao et al.'s cells at one time step (SPEC §7.4 "Neuron", ``mem_update`` + ``ActFun``).

With T = 1 the code's ``mem = mem_in·decay·(1 − s_prev) + I`` (s_prev = 0) is

    mem = 0.4·mem_in + I,    s = 1[mem > 0.5]  (strict),    ∂s/∂mem = 1[0 < mem < 1]  (rect, width 1)

and the cell returns (s, mem), mem being the charged potential before any reset (the code's reset
acts only at a next step that T = 1 never reaches). It is built from :class:`~spikeforge.neuron.LIFNode`
(decay form, ``strict``, ``v_init`` = mem_in, ``return_v``) with a soft, undetached reset: the node
returns V = mem − V_th·s, so mem = V + V_th·s exactly, with ∂mem/∂I = 1 as in the code.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from spikeforge.methods import Method

__all__ = ["YAO_NEURON", "YaoNeuron"]

#: decay 0.4, V_th 0.5, strict firing, rectangular surrogate of height 1 on 0 < mem < 1
YAO_NEURON: dict[str, Any] = {"kind": "lif", "decay": 0.4, "v_threshold": 0.5, "strict": True,
                              "surrogate": {"name": "rect", "alpha": 1.0}, "backend": "torch"}
#: what the one-step reading needs; not overridable
_FIXED = {"v_reset": None, "detach_reset": False, "return_v": True}


class YaoNeuron(nn.Module):
    """One LIF step from a starting potential.

    Args:
        method: the training method that builds the node (``bptt``; the model refuses one-step methods).
        neuron: options merged over :data:`YAO_NEURON` (e.g. ``{"decay": 0.5}``); ``v_reset``,
            ``detach_reset`` and ``return_v`` are fixed.

    Shape:
        current: ``[B, ...]`` input current I; mem_in: ``[B, ...]`` or None (0).
        Returns ``(s, mem)``, both ``[B, ...]``: spikes in {0, 1} and the charged potential.
    """

    def __init__(self, method: Method, neuron: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        config = {**YAO_NEURON, **dict(neuron or {})}
        for key, value in _FIXED.items():
            if key in config and config[key] != value:
                raise ValueError(f"YaoNeuron: neuron option {key} is fixed to {value!r}, got {config[key]!r}")
        self.node = method.make_neuron({**config, **_FIXED})

    def forward(self, current: Tensor, mem_in: Tensor | None = None) -> tuple[Tensor, Tensor]:
        s, v = self.node(current.unsqueeze(0), None if mem_in is None else mem_in)
        s, v = s[0], v[0]
        return s, v + self.node.threshold(v) * s
