"""The PLIF networks of Fang et al. ICCV 2021 (SPEC §7.2)."""
import pytest
import torch

from spikeforge.models import create_model
from spikeforge.neuron import PLIFNode


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def _count(in_ch, convs, channels, flat, hidden, k, n_plif):
    """convs without bias + BN γ,β + bias-free FCs (SpikingJelly parametric_lif_net) + one w per PLIF layer."""
    conv = 9 * in_ch * channels + 9 * channels * channels * (convs - 1)
    return conv + 2 * channels * convs + flat * hidden + hidden * 10 * k + n_plif


# SPEC §7.2 has no parameter table (SPEC §7.3 does not list these nets): counts from the layer table
EXPECTED = {
    "plif_mnist": (13_198_980, _count(1, 2, 128, 128 * 7 * 7, 2048, 10, 4), (1, 28, 28), 10),
    "plif_fmnist": (13_198_980, _count(1, 2, 128, 128 * 7 * 7, 2048, 10, 4), (1, 28, 28), 10),
    "plif_nmnist": (17_132_292, _count(2, 2, 128, 128 * 8 * 8, 2048, 10, 4), (2, 34, 34), 10),
    "plif_cifar10": (36_718_344, _count(3, 6, 256, 256 * 8 * 8, 2048, 10, 8), (3, 32, 32), 10),
    "plif_cifar10dvs": (4_691_206, _count(2, 4, 128, 128 * 8 * 8, 512, 10, 6), (2, 128, 128), 10),
    "plif_dvsgesture": (1_698_311, _count(2, 5, 128, 128 * 4 * 4, 512, 11, 7), (2, 128, 128), 11),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_count_and_shape(name):
    count, formula, shape, k = EXPECTED[name]
    torch.manual_seed(0)
    model = create_model(name, T=2)
    assert n_params(model) == count == formula
    assert all(m.w.numel() == 1 for m in model.modules() if isinstance(m, PLIFNode))
    out = model.forward_output(torch.rand(2, 2, *shape))  # [T, B, C, H, W]
    assert out.logits.shape == (2, k) and out.steps.shape == (2, 2, k)
    assert ((out.logits >= 0) & (out.logits <= 1)).all()  # voted firing rates


def test_default_T_and_neuron():
    assert [create_model(f"plif_{n}").T for n in ("mnist", "fmnist", "cifar10", "nmnist", "cifar10dvs",
                                                  "dvsgesture")] == [8, 8, 8, 10, 20, 20]
    node = create_model("plif_mnist").sn1
    assert isinstance(node, PLIFNode) and node.init_tau == 2.0 and node.v_reset == 0.0 and node.spec.detach_reset
    assert create_model("plif_dvsgesture").fc2.module.out_features == 110


def test_bptt_backward_and_time_fixed_dropout():
    torch.manual_seed(0)
    model = create_model("plif_mnist", T=4)
    assert model.dropout1.p == 0.5
    y = model.dropout1(torch.ones(4, 2, 32))
    assert all(torch.equal(y[0], y[t]) for t in range(4))
    model(torch.rand(2, 1, 28, 28) * 3).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.features[0].sn.w.grad.abs() > 0 and model.features[0].conv.module.weight.grad.abs().sum() > 0


def test_dsr_refused_ssf_freezes_w():
    with pytest.raises(ValueError, match=r"neuron of kind 'plif'.*cannot take the DSR form"):
        create_model("plif_mnist", T=2, method="dsr")
    with pytest.warns(UserWarning, match="frozen"):
        model = create_model("plif_mnist", T=2, method="ssf")
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_bad_input_and_conflicting_arch():
    model = create_model("plif_nmnist", T=2)
    with pytest.raises(ValueError, match=r"expected input \[B, 2, 34, 34\].*got \(2, 2, 1, 34, 34\)"):
        model(torch.rand(2, 2, 1, 34, 34))
    with pytest.raises(ValueError, match=r"got \(2, 2, 28, 28\)"):
        model(torch.rand(2, 2, 28, 28))
    with pytest.raises(ValueError, match=r"plif_mnist: channels is fixed to 128"):
        create_model("plif_mnist", channels=64)
