"""SEW ResNet, Spiking ResNet and Plain Net on the ImageNet layout (SPEC §7.1, §7.3, §10)."""
import pytest
import torch

from spikeforge.layers import SEWConnect
from spikeforge.methods import get_method
from spikeforge.models import create_model, list_models
from spikeforge.models.sew_resnet import IF_NEURON, SEWBlock, SpikingResBlock, residual_branch
from spikeforge.neuron import IFNode

FAMILIES = ("sew_resnet", "spiking_resnet", "plain_net")
DEPTHS = (18, 34, 50, 101, 152)

# torchvision resnet18/34/50/101/152 parameter counts (torchvision ResNet*_Weights.meta["num_params"]);
# SPEC §7.3 table row "SEW-ResNet-18 / 34 / 50": 11,689,512 / 21,797,672 / 25,557,032 (built SEW code =
# torchvision). IF neurons have no parameters, so SEW and Spiking ResNet equal them.
TORCHVISION = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
# Plain Net: the same count less the downsample conv1x1 + BN of each stage (our own build; no SPEC row).
DOWNSAMPLE = {18: 173_824, 34: 173_824, 50: 2_776_576, 101: 2_776_576, 152: 2_776_576}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_registry_names():
    names = set(list_models())
    assert {f"{f}{d}" for f in FAMILIES for d in DEPTHS} <= names


@pytest.mark.parametrize("depth", DEPTHS)
def test_parameter_counts_equal_torchvision(depth):
    """SEW and Spiking ResNet with IF = torchvision's ResNet; Plain = that less the downsample paths."""
    assert n_params(create_model(f"sew_resnet{depth}")) == TORCHVISION[depth]
    assert n_params(create_model(f"spiking_resnet{depth}")) == TORCHVISION[depth]
    assert n_params(create_model(f"plain_net{depth}")) == TORCHVISION[depth] - DOWNSAMPLE[depth]


def test_tiny_imagenet_count():
    """SPEC §7.3: SEW-ResNet-34, num_classes=200 → 21,387,272."""
    assert n_params(create_model("sew_resnet34", num_classes=200)) == 21_387_272


def test_default_neuron_is_if():
    model = create_model("sew_resnet18")
    nodes = [m for m in model.modules() if isinstance(m, IFNode)]
    assert len(nodes) == 1 + 8 * 2 + 3  # stem, 2 per basic block, 3 downsample SNs
    assert model.T == 4 and model.connect == "add"


@pytest.mark.parametrize("name", [f"{f}{d}" for f in FAMILIES for d in (18, 34, 50)])
def test_forward_shape_small_input(name):
    torch.manual_seed(0)
    model = create_model(name, T=2, num_classes=7)
    size = 16 if name.endswith("50") else 32  # 16² still leaves layer4 a 1×1 map
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("name,connect", [("sew_resnet18", "add"), ("sew_resnet18", "iand"), ("sew_resnet50", "and"),
                                          ("spiking_resnet18", None), ("plain_net18", None)])
def test_every_parameter_gets_gradient_bptt(name, connect):
    torch.manual_seed(0)
    # AND at random init: O = A·S roughly halves the firing per block, so sew_resnet50's maps are silent by
    # the end of layer2 and no gradient reaches the stem; its zero-init (γ = 0, β = 1: A = 1, O = S; SPEC §7.1)
    # passes the spikes through
    model = create_model(name, T=2, num_classes=5, connect=connect, zero_init_residual=connect == "and")
    size = 16 if name.endswith("50") else 32
    model(torch.rand(2, 3, size, size) * 4).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    # the stem conv sits behind every neuron's surrogate: a zero σ' would leave it (and only the FC) at 0
    assert model.conv1.module.weight.grad.abs().sum() > 0


def test_time_input_equals_static_input():
    """A [T, B, C, H, W] input equal at every step gives the static input's logits (stem run once)."""
    torch.manual_seed(0)
    model = create_model("sew_resnet18", T=2, num_classes=4).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model(x.unsqueeze(0).repeat(2, 1, 1, 1, 1)))


@pytest.mark.parametrize("connect,expected", [("add", [0, 1, 1, 2]), ("and", [0, 0, 0, 1]), ("iand", [0, 0, 1, 0])])
def test_M1_sew_connect(connect, expected):
    """SPEC §7.1 M1: A = [0,1,0,1], S = [0,0,1,1]; exact."""
    a = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(4, 1)
    s = torch.tensor([0.0, 0.0, 1.0, 1.0]).view(4, 1)
    assert SEWConnect(connect)(a, s).flatten().tolist() == expected
    block = create_model("sew_resnet18", connect=connect).layer1[0]
    assert block.connect.connect == connect


def _sew_block(connect, channels=8):
    method = get_method("bptt")
    sn = lambda: method.make_neuron(IF_NEURON)  # noqa: E731
    return SEWBlock(residual_branch(False, channels, channels, 1, sn, True), None, connect)


@pytest.mark.parametrize("connect", ["add", "iand", "and"])
@pytest.mark.parametrize("train", [False, True])
def test_M2_zero_init_block_is_identity(connect, train):
    """SPEC §7.1 M2: a zero-init SEW block without downsample (ADD/IAND β = 0; AND β = 1) maps S to S; exact."""
    torch.manual_seed(0)
    block = _sew_block(connect)
    block.zero_init()
    block.train(train)
    s = (torch.rand(4, 3, 8, 6, 6) < 0.4).float()
    out = block(s)
    assert torch.equal(out, s)
    assert block.residual[-1].bn.weight.abs().sum() == 0
    assert block.residual[-1].bn.bias.eq(1.0 if connect == "and" else 0.0).all()


def test_zero_init_residual_in_model():
    """zero_init_residual: every SEW block without downsample is the identity on its input spikes."""
    torch.manual_seed(0)
    model = create_model("sew_resnet18", T=2, zero_init_residual=True).eval()
    s = (torch.rand(2, 2, 64, 8, 8) < 0.3).float()
    assert torch.equal(model.layer1(s), s)
    spiking = create_model("spiking_resnet18", zero_init_residual=True)
    assert all(b.residual[-1].bn.weight.abs().sum() == 0 for b in spiking.modules() if isinstance(b, SpikingResBlock))
    default = create_model("sew_resnet18")
    assert default.layer1[0].residual[-1].bn.weight.eq(1).all()


def test_M3_sew_resnet18_imagenet_logits():
    """SPEC §7.1 M3: sew_resnet18, T=4, B=2, 224² → logits [2, 1000]."""
    torch.manual_seed(0)
    model = create_model("sew_resnet18", T=4)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 224, 224))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"sew_resnet18: connect must be one of add, and, iand, got 'or'"):
        create_model("sew_resnet18", connect="or")
    with pytest.raises(ValueError, match=r"spiking_resnet18: connect='add' is a SEW option"):
        create_model("spiking_resnet18", connect="add")
    with pytest.raises(ValueError, match=r"plain_net18: zero_init_residual needs a shortcut"):
        create_model("plain_net18", zero_init_residual=True)
    with pytest.raises(ValueError, match=r"sew_resnet18: layers is fixed to \(2, 2, 2, 2\) by the architecture"):
        create_model("sew_resnet18", layers=(3, 4, 6, 3))
    model = create_model("sew_resnet18", T=2)
    with pytest.raises(ValueError, match=r"sew_resnet18: expected input \[B, 3, \*, \*\].*got \(2, 1, 32, 32\)"):
        model(torch.rand(2, 1, 32, 32))
    gray = create_model("sew_resnet18", T=2, in_channels=1, num_classes=3)
    assert gray(torch.rand(2, 1, 32, 32)).shape == (2, 3)


def test_dsr_needs_a_dsr_neuron():
    """dsr on SEW's hard-reset IF raises with the reason; a DSR neuron config makes it build."""
    with pytest.raises(ValueError, match=r"sew_resnet18: method='dsr' cannot build its neurons: .*cannot take the DSR form"):
        create_model("sew_resnet18", method="dsr")
    model = create_model("sew_resnet18", method="dsr", T=2, num_classes=3, dsr_neuron={"kind": "if"})
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_ssf_forward_backward_small():
    torch.manual_seed(0)
    model = create_model("sew_resnet18", method="ssf", T=2, num_classes=3)
    out = model(torch.rand(2, 3, 32, 32) * 4)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
