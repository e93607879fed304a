"""The small SEW nets: DVS Gesture 7B-Net, CIFAR10-DVS Wide-7B-Net, CIFAR-10 lightweight (SPEC §7.1)."""
import pytest
import torch

from spikeforge.models import create_model, list_models
from spikeforge.models.sew_resnet import PlainBlock, SEWBlock, SpikingResBlock
from spikeforge.neuron import IFNode, PLIFNode

# Own arithmetic (no SPEC row): conv weights + BN (2 per channel) + PLIF w (1 per layer).
# 7B-Net: stem 2·32·9 + 64 + 1 = 641; 7 blocks × 2 × (32·32·9 + 64 + 1) = 129,934; FC 32·11 + 11 = 363.
GESTURE = 641 + 129_934 + 363  # 130,938; with the official 1x1 stem: 130,938 − 2·32·8 = 130,426
# Wide-7B: stem 2·64·9+128+1 = 1,281; 4 × 2 × (64·64·9+128+1) = 295,944; transition 64·128·9+256+1 = 73,985;
# 3 × 2 × (128·128·9+256+1) = 886,278; FC 128·10+10 = 1,290.
WIDE = 1_281 + 295_944 + 73_985 + 886_278 + 1_290  # 1,258,778
# CIFAR-10 lightweight: stem 3·32·9+64 = 928; 10 blocks × 2 × (32·32·9+64) = 185,600; FC 330.
CIFAR = 928 + 185_600 + 330  # 186,858


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_registered():
    assert {"sew_7b_gesture", "sew_wide7b_cifar10dvs", "sew_cifar10_small"} <= set(list_models())


def test_parameter_counts_and_neurons():
    gesture = create_model("sew_7b_gesture")
    assert n_params(gesture) == GESTURE == 130_938
    assert n_params(create_model("sew_7b_gesture", up_kernel=1)) == 130_426
    assert n_params(create_model("sew_wide7b_cifar10dvs")) == WIDE == 1_258_778
    cifar = create_model("sew_cifar10_small")
    assert n_params(cifar) == CIFAR == 186_858
    assert sum(isinstance(m, SEWBlock) for m in gesture.modules()) == 7
    assert sum(isinstance(m, SEWBlock) for m in cifar.modules()) == 10
    plif = [m for m in gesture.modules() if isinstance(m, PLIFNode)]
    assert len(plif) == 15 and all(m.v_threshold == 1.0 for m in plif)
    assert sum(isinstance(m, IFNode) for m in cifar.modules()) == 21
    assert gesture.T == 16 and gesture.num_classes == 11 and cifar.num_classes == 10


@pytest.mark.parametrize("name,shape,k", [("sew_7b_gesture", (2, 2, 2, 128, 128), 11),
                                          ("sew_wide7b_cifar10dvs", (2, 1, 2, 128, 128), 10),
                                          ("sew_cifar10_small", (2, 3, 32, 32), 10)])
def test_forward_backward_bptt(name, shape, k):
    torch.manual_seed(0)
    model = create_model(name, T=2)
    out = model(torch.rand(*shape) * 3)
    assert out.shape == (shape[-4], k) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("connect", ["and", "iand"])
def test_connects(connect):
    model = create_model("sew_cifar10_small", T=2, connect=connect)
    assert all(b.connect.connect == connect for b in model.modules() if isinstance(b, SEWBlock))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_zero_init_blocks_are_identity():
    model = create_model("sew_cifar10_small", T=2, zero_init_residual=True).eval()
    block = model.features[1]
    s = (torch.rand(2, 2, 32, 16, 16) < 0.3).float()
    assert torch.equal(block(s), s)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"sew_7b_gesture: connect must be one of add, and, iand, got 'xor'"):
        create_model("sew_7b_gesture", connect="xor")
    with pytest.raises(ValueError, match=r"up_kernel must be 3 \(paper\) or 1 \(official code\), got 5"):
        create_model("sew_7b_gesture", up_kernel=5)
    with pytest.raises(ValueError, match=r"sew_7b_gesture: in_channels is fixed to 2 by the architecture, got 3"):
        create_model("sew_7b_gesture", in_channels=3)
    model = create_model("sew_cifar10_small", T=2)
    with pytest.raises(ValueError, match=r"sew_cifar10_small: expected input \[B, 3, 32, 32\].*got \(2, 2, 32, 32\)"):
        model(torch.rand(2, 2, 32, 32))
    with pytest.raises(ValueError, match=r"input_size must be >= 2\^5 = 32"):
        create_model("sew_cifar10_small", input_size=16)


def test_ssf_forward_backward():
    torch.manual_seed(0)
    model = create_model("sew_cifar10_small", method="ssf", T=2)
    out = model(torch.rand(2, 3, 32, 32) * 3)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_ssf_plif_dvs_net_builds_and_runs():
    """Under ssf PLIF's w is frozen (with a warning); the rest trains."""
    with pytest.warns(UserWarning, match="frozen"):
        model = create_model("sew_7b_gesture", method="ssf", T=2)
    out = model(torch.rand(2, 1, 2, 128, 128) * 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.slow
def test_torch_compile_forward():
    """torch.compile of sew_cifar10_small (eval) on CPU gives the eager logits (~60 s on 2 busy cores)."""
    torch.manual_seed(0)
    model = create_model("sew_cifar10_small", T=2).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        out = torch.compile(model)(x)
    torch.testing.assert_close(out, ref)


# -- the block families of SEW supp. Table S2 (Spiking ResNet, Plain) on the 7B-Net ------------------------
FAMILY_BLOCK = {"sew": SEWBlock, "spiking": SpikingResBlock, "plain": PlainBlock}


@pytest.mark.parametrize("family", ["sew", "spiking", "plain"])
def test_gesture_family_structure(family):
    """7 blocks of the family, 15 PLIF (stem + 2 per block in every family: Spiking moves the last SN after
    the addition, Plain drops only the identity), so every family has the hand count 130,938."""
    model = create_model("sew_7b_gesture", family=family)
    blocks = [m for m in model.features if isinstance(m, FAMILY_BLOCK[family])]
    assert len(blocks) == 7 and n_params(model) == GESTURE
    assert sum(isinstance(m, PLIFNode) for m in model.modules()) == 15
    for b in blocks:
        first, last = b.residual
        assert isinstance(first.sn, PLIFNode) and first.conv.module.kernel_size == (3, 3)
        assert (last.sn is None) == (family == "spiking")  # Spiking: SN(BN(conv) + S), not SN(BN(conv)) + S
        if family == "spiking":
            assert isinstance(b.sn, PLIFNode) and b.downsample is None
        if family == "sew":
            assert b.connect.connect == "add" and b.downsample is None
    assert (f"family={family!r}" in repr(model)) == (family != "sew")


@pytest.mark.parametrize("family, beta, expected", [
    ("sew", 0.0, lambda s: s),                       # A = SN(0) = 0, O = A + S = S
    ("spiking", 0.0, lambda s: torch.zeros_like(s)),  # SN(0 + S): H ≤ 1 − 2^−n < 1 from rest, never fires
    ("spiking", 1.0, lambda s: s),                   # SN(1 + S): S = 1 → H = 1 + V/2 fires; S = 0 → H < 1
    ("plain", 1.0, lambda s: torch.zeros_like(s)),   # SN(1) alone: H = 1 − 2^−n < 1, no shortcut to add S
    ("plain", 2.0, lambda s: torch.ones_like(s)),    # SN(2): H = 1 + V/2 ≥ 1 at every step, whatever S
])
def test_family_block_values(family, beta, expected):
    """Last BN of a 7B-Net block with γ = 0, β = ``beta`` (eval: running mean 0, var 1, so its output is β);
    PLIF τ0 = 2 (H = V/2 + X/2, V_th 1, fires at H ≥ 1, reset to 0) on spike trains S, T = 6."""
    torch.manual_seed(0)
    model = create_model("sew_7b_gesture", family=family).eval()
    block = model.features[1]
    assert isinstance(block, FAMILY_BLOCK[family])
    torch.nn.init.zeros_(block.residual[-1].bn.weight)
    torch.nn.init.constant_(block.residual[-1].bn.bias, beta)
    s = (torch.rand(6, 2, 32, 4, 4) < 0.5).float()
    with torch.no_grad():
        assert torch.equal(block(s), expected(s))


def test_spiking_family_zero_init_and_training():
    """zero_init_residual on Spiking blocks: γ = 0, so a block starts as SN(S); bptt and ssf train every weight."""
    model = create_model("sew_7b_gesture", family="spiking", zero_init_residual=True)
    blocks = [b for b in model.features if isinstance(b, SpikingResBlock)]
    assert len(blocks) == 7 and all(torch.count_nonzero(b.residual[-1].bn.weight) == 0 for b in blocks)
    assert all(torch.count_nonzero(b.residual[0].bn.weight) == 32 for b in blocks)  # only the last BN
    for method in ("bptt", "ssf"):
        torch.manual_seed(0)
        net = create_model("sew_cifar10_small", family="spiking", method=method, T=2)
        out = net(torch.rand(2, 3, 32, 32) * 3)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters()), method


@pytest.mark.parametrize("family", ["spiking", "plain"])
def test_gesture_family_forward_backward(family):
    torch.manual_seed(0)
    model = create_model("sew_7b_gesture", family=family, T=2)
    out = model(torch.rand(2, 1, 2, 128, 128) * 3)
    assert out.shape == (1, 11) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_family_arguments():
    with pytest.raises(ValueError, match=r"sew_7b_gesture: family must be one of sew, spiking, plain, got 'dense'"):
        create_model("sew_7b_gesture", family="dense")
    with pytest.raises(ValueError, match=r"connect='and' is a SEW option; spiking blocks have no connect function"):
        create_model("sew_7b_gesture", family="spiking", connect="and")
    with pytest.raises(ValueError, match=r"zero_init_residual needs a shortcut"):
        create_model("sew_7b_gesture", family="plain", zero_init_residual=True)
