"""``yao_resmlp12`` and its conversion to a T = 1 SNN (SPEC §7.4 "ANN→SNN conversion")."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.models import create_model
from spikeforge.models.yao import YaoResMLP12, convert_to_snn
from spikeforge.models.yao.resmlp import SpikingActivation

SMALL = {"dims": (4, 8, 16, 32)}


def test_spiking_activation_is_the_yao_neuron():
    """h → 1[h > 0.5] (strict), gradient 1 on 0 < h < 1 (rectangular surrogate), from mem_in = 0."""
    act = SpikingActivation().double()
    h = torch.tensor([-0.2, 0.3, 0.5, 0.6, 1.2], dtype=torch.float64, requires_grad=True)
    s = act(h)
    assert s.tolist() == [0, 0, 0, 1, 1]
    s.sum().backward()
    assert h.grad.tolist() == [0, 1, 1, 1, 0]


def test_conversion_keeps_every_weight():
    torch.manual_seed(0)
    ann = create_model("yao_resmlp12", **SMALL)
    for p in ann.parameters():  # trained-looking weights (the head starts at 0)
        nn.init.normal_(p, std=0.3)
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    snn = convert_to_snn(ann)
    assert isinstance(snn, YaoResMLP12) and snn.spiking and not ann.spiking
    assert snn.state_dict().keys() == before.keys()
    assert all(torch.equal(snn.state_dict()[k], v) for k, v in before.items())
    assert all(torch.equal(ann.state_dict()[k], v) for k, v in before.items())  # the ANN is untouched
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(ann.parameters(), snn.parameters()))  # a copy
    relus = [m for m in ann.modules() if isinstance(m, nn.ReLU)]
    neurons = [m for m in snn.modules() if isinstance(m, SpikingActivation)]
    assert len(relus) == len(neurons) == 12 and not any(isinstance(m, nn.ReLU) for m in snn.modules())


def test_converted_network_equals_ann_with_step_activations():
    """The SNN's logits are the ANN's with every ReLU replaced by h ↦ 1[h > 0.5] (same weights)."""
    torch.manual_seed(1)
    ann = create_model("yao_resmlp12", **SMALL).double()
    nn.init.normal_(ann.head.weight)
    snn = convert_to_snn(ann)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for block in (b for stage in ann.stages for b in stage):
        block.act = _Step()
    assert torch.equal(snn(x), ann(x))


class _Step(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h > 0.5).to(h.dtype)


def test_conversion_errors():
    with pytest.raises(TypeError, match="expected a YaoResMLP12"):
        convert_to_snn(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="already spiking"):
        convert_to_snn(create_model("yao_resmlp12", spiking=True, **SMALL))
