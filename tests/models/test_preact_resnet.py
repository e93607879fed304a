"""PreAct-ResNet-18 (DSR layout) and PreAct-ResNet-20/32/44/56/110 (SPEC §5 "Networks", §7.3)."""
import math

import pytest
import torch

from spikeforge.methods.dsr import DSRNode
from spikeforge.models import create_model, list_models
from spikeforge.neuron import LIFNode


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_registered():
    assert {f"preact_resnet{d}" for d in (18, 20, 32, 44, 56, 110)} <= set(list_models("preact_resnet*"))


@pytest.mark.parametrize("num_classes, without_vth, with_vth", [
    (10, 11_176_926, 11_176_945),   # SPEC §7.3 table, "built DSR resnet18_lif", CIFAR-10
    (100, 11_223_276, 11_223_295),  # SPEC §7.3 table, CIFAR-100
])
def test_parameter_count_preact18(num_classes, without_vth, with_vth):
    """SPEC §7.3: 19 DSR neurons, one learnable V_th each under dsr; the plain neurons have none."""
    assert n_params(create_model("preact_resnet18", num_classes=num_classes)) == without_vth
    model = create_model("preact_resnet18", num_classes=num_classes, method="dsr")
    assert n_params(model) == with_vth
    nodes = [m for m in model.modules() if isinstance(m, DSRNode)]
    assert len(nodes) == 19 and all(m.v_threshold.numel() == 1 for m in nodes)


@pytest.mark.parametrize("depth, c10, c100", [
    # SPEC §7.3 table "PreAct-ResNet-20/32/44/56/110 (DSR-style, inferred)", counts incl. 6n+3 V_th
    (20, 273_091, 279_121), (32, 467_983, 474_013), (44, 662_875, 668_905), (56, 857_767, 863_797),
    (110, 1_734_781, 1_740_811),
])
def test_parameter_count_deep(depth, c10, c100):
    n_vth = 6 * ((depth - 2) // 6) + 3
    assert n_params(create_model(f"preact_resnet{depth}", method="dsr")) == c10
    assert n_params(create_model(f"preact_resnet{depth}", method="dsr", num_classes=100)) == c100
    assert n_params(create_model(f"preact_resnet{depth}")) == c10 - n_vth  # bptt: no thresholds


def test_neurons_and_readout_by_method():
    bptt = create_model("preact_resnet20", T=2)
    assert isinstance(bptt.sn3, LIFNode) and bptt.sn3.decay == 0.95 and bptt.readout.decay == 1.0
    ssf = create_model("preact_resnet20", T=2, method="ssf")  # output neuron -> non-spiking readout with λ
    assert isinstance(ssf.sn3, torch.nn.Identity) and ssf.readout.decay == pytest.approx(0.95)
    dsr = create_model("preact_resnet20", T=20, method="dsr")  # DSR-LIF, official T = 20 preset (SPEC §5)
    node = dsr.sn3
    assert isinstance(node, DSRNode) and node.kind == "lif" and node.dt == 0.05 and node.alpha == 0.3
    assert float(node.v_threshold.detach()) == pytest.approx(0.3) and dsr.readout.decay == pytest.approx(math.exp(-0.05))
    dsr_if = create_model("preact_resnet20", T=2, method="dsr", dsr_neuron={"kind": "if"})
    assert dsr_if.sn3.kind == "if" and dsr_if.readout.decay == 1.0


@pytest.mark.parametrize("name, method", [("preact_resnet18", "bptt"), ("preact_resnet20", "ssf"),
                                          ("preact_resnet20", "dsr")])
def test_output_shape(name, method):
    torch.manual_seed(0)
    model = create_model(name, T=2, method=method)  # dsr: the default DSR-LIF
    out = model.forward_output(torch.rand(2, 3, 32, 32))
    assert out.logits.shape == (2, 10) and out.steps.shape == (2, 2, 10)
    assert torch.isfinite(out.logits).all()
    out.logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_logits_are_the_output_representation():
    """dsr: logits = the last DSR neuron's representation o (SPEC §5, readout λ_r = β); ssf: the readout's
    final potential over W with the neurons' λ (SPEC §4 "Output layer")."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    for method, node in (("dsr", "sn3"), ("ssf", "bn2")):
        model = create_model("preact_resnet20", T=4, method=method)
        seen = {}
        model.get_submodule(node).register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
        logits = model(x)
        lam = model.readout.decay
        w = lam ** torch.arange(3, -1, -1, dtype=torch.float32)
        expected = torch.tensordot(w / w.sum(), seen["out"].seq.float(), dims=1)
        torch.testing.assert_close(logits, expected)


def test_bptt_every_parameter_gets_gradient():
    torch.manual_seed(0)
    model = create_model("preact_resnet18", T=4)  # at T = 2 the head's LIF after AvgPool stays silent
    torch.nn.functional.cross_entropy(model(torch.rand(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_dsr_preact18_forward_backward():
    """dsr at T = 2, B = 2. DSR-IF with V_th init 1 (instead of 6) so that every layer fires at T = 2 and
    every weight's gradient (∂L/∂W = G·mask·o_prev) is non-zero; the default DSR-LIF is checked below."""
    torch.manual_seed(0)
    model = create_model("preact_resnet18", T=2, method="dsr", dsr_neuron={"kind": "if", "v_threshold": 1.0})
    logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not name.endswith("v_threshold"):  # ∂o/∂V_th = 1[Ī > V_th]: zero at init is expected
            assert p.grad.abs().sum() > 0, name


def test_bad_input_and_conflicting_arch():
    model = create_model("preact_resnet20", T=2)
    with pytest.raises(ValueError, match=r"expected input \[B, 3, 32, 32\].*got \(2, 2, 32, 32\)"):
        model(torch.rand(2, 2, 32, 32))
    with pytest.raises(ValueError, match=r"expected input .*got \(2, 3, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"preact_resnet20: blocks is fixed to \(3, 3, 3\).*got \(5, 5, 5\)"):
        create_model("preact_resnet20", blocks=(5, 5, 5))
    with pytest.raises(ValueError, match=r"input_shape is fixed to \(3, 32, 32\)"):
        create_model("preact_resnet18", input_shape=(3, 64, 64))
    with pytest.raises(ValueError, match="needs T >= 2"):
        create_model("preact_resnet20", T=1, method="dsr")
