"""ResNet-19, TET code layout; tdBN option (SPEC §6.2, §7.3)."""
import math

import pytest
import torch

from spikeforge.layers import TdBN
from spikeforge.models import create_model
from spikeforge.neuron import LIFNode


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kwargs, expected", [
    ({}, 12_630_858),                                                     # SPEC §7.3: built TET resnet19()
    ({"num_classes": 100}, 12_653_988),                                   # TET resnet19(num_classes=100)
    ({"input_shape": (2, 48, 48)}, 12_630_282),                           # TET code, stem in_ch 3 -> 2
    ({"stem_channels": 128}, 12_697_994),                                 # tdBN table (stem 128), own build
    ({"stem_channels": 128, "num_classes": 100}, 12_721_124),
    ({"stem_channels": 128, "input_shape": (2, 48, 48)}, 12_696_842),
    ({"tdbn": True}, 12_630_858),                                         # α·V_th adds no parameters
])
def test_parameter_count(kwargs, expected):
    assert n_params(create_model("resnet19", **kwargs)) == expected


def test_default_neuron_is_tet_lif():
    node = create_model("resnet19", T=2).sn1
    assert isinstance(node, LIFNode) and node.decay == 0.5 and node.v_reset == 0.0
    assert node.spec.strict and not node.spec.detach_reset


def test_tdbn_scaling():
    """SPEC §6.2: α = 1/√2 on bn2 and the downsample BN, 1 elsewhere; V_th = the neurons' threshold."""
    model = create_model("resnet19", T=2, tdbn=True, neuron={"kind": "lif", "decay": 0.9, "v_threshold": 0.5})
    block = model.layers[0][0]  # 64 -> 128: has a downsample
    assert isinstance(model.bn1, TdBN) and model.bn1.alpha == 1.0 and model.bn1.v_threshold == 0.5
    assert block.bn1.alpha == 1.0 and block.bn2.alpha == pytest.approx(1 / math.sqrt(2))
    assert isinstance(block.downsample[1], TdBN) and block.downsample[1].alpha == pytest.approx(1 / math.sqrt(2))
    assert model.layers[0][1].downsample is None
    assert create_model("resnet19", T=2, tdbn=True).sn1.decay == 0.9  # tdBN neuron default (SSF's baseline)


def test_forward_backward_bptt():
    torch.manual_seed(0)
    model = create_model("resnet19", T=2)
    out = model.forward_output(torch.rand(2, 3, 32, 32))
    assert out.logits.shape == (2, 10) and out.steps.shape == (2, 2, 10)
    torch.testing.assert_close(out.logits, out.steps.mean(0))  # TET: logits = mean_t O_t
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.conv1.module.weight.grad.abs().sum() > 0


def test_ssf_readout_and_dsr_neurons():
    model = create_model("resnet19", T=2, method="ssf", input_shape=(3, 8, 8))  # small: global pooling
    assert model.readout.decay == 0.5
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 10)
    dsr = create_model("resnet19", T=2, method="dsr", input_shape=(3, 8, 8))
    from spikeforge.neuron.dsr import DSRNode
    nodes = [m for m in dsr.modules() if isinstance(m, DSRNode)]
    assert len(nodes) == 18 and all(n.kind == "if" for n in nodes)  # stem + 16 in blocks + FC neuron
    dsr(torch.rand(2, 3, 8, 8)).sum().backward()
    assert dsr.conv1.module.weight.grad is not None
    with pytest.raises(ValueError, match="kind must be one of if, lif"):
        create_model("resnet19", T=2, method="dsr", dsr_neuron={"kind": "plif"})


def test_bad_input():
    model = create_model("resnet19", T=2)
    with pytest.raises(ValueError, match=r"expected input \[B, 3, 32, 32\].*got \(2, 2, 32, 32\)"):
        model(torch.rand(2, 2, 32, 32))
    with pytest.raises(ValueError, match=r"got \(2, 3, 48, 48\)"):
        model(torch.rand(2, 3, 48, 48))
    with pytest.raises(ValueError, match="resnet19: widths is fixed"):
        create_model("resnet19", widths=(64, 128, 256))
