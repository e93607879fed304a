"""PreAct-ResNet-18 (DSR layout) and PreAct-ResNet-20/32/44/56/110 (SPEC §5 "Networks", §7.3)."""
import math

import pytest
import torch

from spikeforge.neuron.dsr import DSRNode
from spikeforge.models import create_model, list_models
from spikeforge.models._common import DSR_LAYOUT_NEURON, neuron_decay
from spikeforge.models.preact_resnet import PreActResNet
from spikeforge.neuron import IFNode, LIFNode, PLIFNode


def n_params(model):
    return sum(p.numel() for p in model.parameters())



def assert_every_gradient(model):
    """Every parameter has a finite gradient, non-zero except DSR's thresholds and the conv/FC biases.

    Every conv/FC bias here feeds a train-mode BN over T·B (block convs → bn of the next unit, FC → BN1d),
    which subtracts the batch mean: its gradient is exactly 0 in exact arithmetic, and what float32 leaves
    is rounding noise (up to ~1e-4 here, down to exactly 0, e.g. the FC's with B = 2), so only the weights
    are required to move."""
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        # ∂o/∂V_th = 1[Ī > V_th]: zero at init is expected
        if not name.endswith(("v_threshold", "module.bias")):
            assert p.grad.abs().sum() > 0, name

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


@pytest.mark.parametrize("method, node, T, lam", [
    ("dsr", "sn3", 20, math.exp(-0.05 / 1.0)),  # SPEC §5 table, T = 20: Δt 0.05, τ 1 → β = exp(−Δt/τ)
    ("ssf", "bn2", 10, 0.95),  # the DSR layouts' LIF λ (SSF supp. Table S2's "DSR-like net", SPEC §4)
], ids=["dsr", "ssf"])
def test_logits_are_the_output_representation(method, node, T, lam):
    """dsr: logits = the last DSR neuron's representation o = Σ w_t·y_t / W, w_t = β^(T−1−t) (SPEC §5 "Loss");
    ssf: the readout's final potential over W, w_t = λ^(T−1−t) with the neurons' λ (SPEC §4 "Output layer").
    λ from SPEC, not from the model; float32 tolerances. T is long enough that the head fires and the
    representation varies over time (at T <= 5 it is all 0, which any λ_r would average to 0)."""
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    model = create_model("preact_resnet20", T=T, method=method)
    seen = {}
    model.get_submodule(node).register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    logits = model(x)
    seq = seen["out"].materialize()
    assert (seq != seq[:1]).any(), "the representation is constant over time: any λ_r would give these logits"
    w = lam ** torch.arange(T - 1, -1, -1, dtype=torch.float64)
    expected = torch.tensordot((w / w.sum()).float(), seq.float(), dims=1)
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
    assert_every_gradient(model)


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


# -- PreAct-ResNet-18 with the ImageNet stem (SPEC §9 dsr-if-imagenet; stem and head assumed) --------------
def preact18_count(stem_kernel: int, num_classes: int) -> int:
    """Hand count of the DSR PreAct-ResNet-18 (SPEC §7.3): stem conv (no bias), blocks (BN γ,β; convs with
    bias; 1x1 shortcut with bias where the shape changes), head BN2d(512) + FC 512→C (bias) + BN1d(C)."""
    total = 3 * 64 * stem_kernel ** 2
    for cin, cout, stride in [(64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1),
                              (128, 256, 2), (256, 256, 1), (256, 512, 2), (512, 512, 1)]:
        total += 2 * cin + (9 * cin * cout + cout) + 2 * cout + (9 * cout * cout + cout)
        if stride != 1 or cin != cout:
            total += cin * cout + cout
    return total + 2 * 512 + (512 * num_classes + num_classes) + 2 * num_classes


def test_parameter_count_preact18_imagenet():
    """The hand count reproduces SPEC §7.3's CIFAR-10 row (11,176,926); the ImageNet variant swaps the 3x3
    stem for a 7x7 one (+3·64·40 = 7,680) and has K = 1000: 11,694,456, +19 V_th under dsr."""
    assert preact18_count(3, 10) == 11_176_926
    assert preact18_count(7, 1000) == 11_694_456
    model = create_model("preact_resnet18_imagenet")
    assert (model.T, model.num_classes, model.input_shape) == (50, 1000, (3, None, None))  # DSR S3 defaults
    assert n_params(model) == 11_694_456
    dsr = create_model("preact_resnet18_imagenet", method="dsr", dsr_neuron={"kind": "if"})
    assert n_params(dsr) == 11_694_456 + 19 and sum(isinstance(m, DSRNode) for m in dsr.modules()) == 19
    assert n_params(create_model("preact_resnet18_imagenet", num_classes=10)) == preact18_count(7, 10)


@pytest.mark.parametrize("size, side", [(224, 7), (64, 2)])
def test_imagenet_stem_and_shapes(size, side):
    """conv7x7 s2 p3 → max-pool 3 s2 p1 (the stem's values against torch.nn.functional); feature maps
    size/2, size/4 and size/32 after the last stage, adaptive pool to 1x1, logits [B, 1000]."""
    torch.manual_seed(0)
    model = create_model("preact_resnet18_imagenet", T=2)
    seen = {}
    for name in ("conv1", "maxpool", "layers", "pool"):
        model.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, o))
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        out = model.forward_output(x)
        w = model.conv1.module.weight
        ref = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(x, w, stride=2, padding=3), 3, 2, 1)
    assert seen["conv1"].shape == (2, 1, 64, size // 2, size // 2)
    assert seen["maxpool"].shape == (2, 1, 64, size // 4, size // 4)
    assert seen["layers"].shape == (2, 1, 512, side, side) and seen["pool"].shape == (2, 1, 512, 1, 1)
    torch.testing.assert_close(seen["maxpool"][0], ref)
    torch.testing.assert_close(seen["maxpool"][1], ref)  # a static image: every step sees the same stem output
    assert out.logits.shape == (1, 1000) and out.steps.shape == (2, 1, 1000) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("method, T, kw", [
    ("bptt", 4, {}),  # at T = 2 the head's LIF after the pool stays silent (as preact_resnet18)
    ("ssf", 4, {}),
    ("dsr", 2, {"dsr_neuron": {"kind": "if", "v_threshold": 1.0}}),  # V_th 1 (not 6) so that T = 2 fires
])
def test_imagenet_variant_trains_under_each_method(method, T, kw):
    """32² input, B = 2: every weight gets a non-zero gradient (ssf: the FC and BN1d sit before the readout, so
    they do too); the one-step methods' Dual forward (max-pool of the stem via its seq) gives the plain
    spiking forward's logits."""
    torch.manual_seed(0)
    model = create_model("preact_resnet18_imagenet", T=T, method=method, num_classes=10, **kw)
    x = torch.rand(2, 3, 32, 32)  # stem → 8², last stage 1²
    logits = model(x)
    if method != "bptt":
        with torch.no_grad():
            torch.testing.assert_close(logits, model(x))  # without autograd ssf/dsr run the plain tensor path
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert_every_gradient(model)


def test_imagenet_variant_arguments():
    with pytest.raises(ValueError, match=r"preact_resnet18_imagenet: stem is fixed to 'imagenet'.*got 'cifar'"):
        create_model("preact_resnet18_imagenet", stem="cifar")
    with pytest.raises(ValueError, match=r"preact_resnet18: stem is fixed to 'cifar'.*got 'imagenet'"):
        create_model("preact_resnet18", stem="imagenet")
    with pytest.raises(ValueError, match=r"net: stem must be one of cifar, imagenet, got 'tiny'"):
        PreActResNet((1,), (16,), None, T=2, stem="tiny", input_shape=(3, None, None), name="net")
    with pytest.raises(ValueError, match=r"expected input \[B, 3, \*, \*\].*got \(2, 1, 64, 64\)"):
        create_model("preact_resnet18_imagenet", T=2)(torch.rand(2, 1, 64, 64))


def test_neuron_decay_in_float64():
    """λ comes back as configured (0.9, not float32's 0.8999999762); PLIF τ0 = 3: λ = 1 − 1/3 from a float32 w."""
    assert neuron_decay(LIFNode(decay=0.9)) == 0.9 and neuron_decay(IFNode()) == 1.0
    assert neuron_decay(torch.nn.Identity()) == 1.0
    assert neuron_decay(PLIFNode(init_tau=3.0)) == pytest.approx(2 / 3, rel=1e-7)
    model = create_model("preact_resnet20", T=2, method="ssf", neuron={**DSR_LAYOUT_NEURON, "decay": 0.9})
    assert model.readout.decay == 0.9
    assert create_model("preact_resnet20", T=5, method="dsr").readout.decay == math.exp(-0.1)  # T = 5 preset: Δt 0.1
