"""VGG-11 (DSR layout) and VGGSNN (TET) on DVS-CIFAR10 2×48×48 (SPEC §5, §6.3, §7.3)."""
import pytest
import torch

from spikeforge.neuron.dsr import DSRNode
from spikeforge.models import create_model
from spikeforge.neuron import BaseNode, LIFNode
from spikeforge.neuron.surrogate import Triangle


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts():
    # SPEC §7.3 table: "built DSR vgg11_lif": 9,476,327 with 9 V_th, 9,476,318 without
    assert n_params(create_model("vgg11_dvs")) == 9_476_318
    model = create_model("vgg11_dvs", method="dsr")
    assert n_params(model) == 9_476_327
    assert sum(isinstance(m, DSRNode) for m in model.modules()) == 9
    # SPEC §7.3 table: "built TET VGGSNN()"
    assert n_params(create_model("vggsnn_dvs")) == 9_271_498


def test_vggsnn_default_neuron_is_tet_lif():
    """SPEC §6.3 TET neuron on all 8 layers: LIF decay 0.5, V_th 1.0, strict >, hard reset to 0, reset not
    detached, triangle γ = 1; T = 10. F8 (SPEC §6.1): I = [0.6, 0.6, 0.6, 1.2, 0.3] → s = [0, 0, 1, 1, 0];
    I = [1.0, 0.5] → u = [1.0, 1.0], s = [0, 0] (u = V_th does not fire). Logits: mean_t O_t (λ_r = 1)."""
    model = create_model("vggsnn_dvs")
    nodes = [m for m in model.modules() if isinstance(m, BaseNode)]
    assert len(nodes) == 8 and model.T == 10 and model.readout.decay == 1.0
    for node in nodes:
        assert type(node) is LIFNode and (node.decay, node.input_gain) == (0.5, 1.0)
        assert node.v_threshold == 1.0 and node.v_reset == 0.0
        assert node.spec.strict and not node.spec.detach_reset and node.spec.surrogate == Triangle(1.0)
    with torch.no_grad():
        assert nodes[0](torch.tensor([0.6, 0.6, 0.6, 1.2, 0.3]).view(5, 1)).flatten().tolist() == [0, 0, 1, 1, 0]
        assert nodes[0](torch.tensor([1.0, 0.5]).view(2, 1)).flatten().tolist() == [0, 0]


@pytest.mark.parametrize("name, method", [("vgg11_dvs", "bptt"), ("vgg11_dvs", "dsr"), ("vgg11_dvs", "ssf"),
                                          ("vggsnn_dvs", "bptt"), ("vggsnn_dvs", "ssf")])
def test_output_shape(name, method):
    torch.manual_seed(0)
    model = create_model(name, T=2, method=method)
    logits = model(torch.rand(2, 2, 2, 48, 48))  # [T, B, 2, 48, 48]
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["vgg11_dvs", "vggsnn_dvs"])
def test_bptt_every_parameter_gets_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, T=2)
    torch.nn.functional.cross_entropy(model(torch.rand(2, 2, 2, 48, 48)), torch.tensor([0, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_dropout_mask_fixed_over_time():
    torch.manual_seed(0)
    model = create_model("vgg11_dvs", T=3)
    unit = model.features[0]
    assert unit.dropout.p == 0.1
    y = unit.dropout(torch.ones(3, 2, 64, 4, 4))
    assert torch.equal(y[0], y[1]) and torch.equal(y[1], y[2]) and (y == 0).any()


def test_bad_input_and_dsr_refused():
    model = create_model("vggsnn_dvs", T=2)
    with pytest.raises(ValueError, match=r"expected input \[B, 2, 48, 48\].*got \(2, 2, 2, 64, 64\)"):
        model(torch.rand(2, 2, 2, 64, 64))
    with pytest.raises(ValueError, match=r"got \(2, 2, 3, 48, 48\)"):
        create_model("vgg11_dvs", T=2)(torch.rand(2, 2, 3, 48, 48))
    with pytest.raises(ValueError, match=r"vgg11_dvs: input_shape is fixed to \(2, 48, 48\)"):
        create_model("vgg11_dvs", input_shape=(2, 128, 128))
    with pytest.raises(ValueError, match="cannot take the DSR form"):
        create_model("vggsnn_dvs", T=2, method="dsr")
