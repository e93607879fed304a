"""Neurons (SPEC §2, §6.1): hand-computed spike trains, oracles N1–N5 and F8, soft reset with V_th != 1 on
every kernel, bad input."""
import math

import pytest
import torch

from spikeforge.neuron import IFNode, LIFNode, PLIFNode, Readout, surrogate
from spikeforge.neuron.kernels import KERNELS, NeuronSpec

D = torch.float64


def col(values):
    """A [T, 1] float64 input sequence."""
    return torch.tensor(values, dtype=D).reshape(-1, 1)


def run(node, values, **kw):
    s, v = node(col(values), **kw)
    return s.flatten().tolist(), v.flatten().tolist()


def test_N1_lif_decay_input():
    """SPEC §2 N1: LIF τ=2, decay_input=True, X = 1.5, 1.5, 0.4, 2.2 → S = 0, 1, 0, 1 (H = .75, 1.125, .2, 1.2)."""
    s, v = run(LIFNode(tau=2.0, return_v=True, backend="torch"), [1.5, 1.5, 0.4, 2.2])
    assert s == [0, 1, 0, 1]
    # V after reset: H where no spike, 0 after a spike; H itself checked through a non-firing threshold
    assert v == pytest.approx([0.75, 0.0, 0.2, 0.0], abs=1e-12)
    _, h = run(LIFNode(tau=2.0, return_v=True, v_threshold=100.0, backend="torch"), [1.5, 1.5, 0.4, 2.2])
    assert h[0] == pytest.approx(0.75)
    assert h[1] == pytest.approx(1.125)


def test_N2_lif_no_decay_input():
    s, v = run(LIFNode(tau=2.0, decay_input=False, return_v=True, backend="torch"), [0.6, 0.6, 0.6])
    assert s == [0, 0, 1]
    assert v[:2] == pytest.approx([0.6, 0.9], abs=1e-12)


def test_N3_if_fires_on_equality():
    s, v = run(IFNode(return_v=True, backend="torch"), [0.4, 0.4, 0.4, 1.0])
    assert s == [0, 0, 1, 1]  # H = 0.4, 0.8, 1.2, 1.0 — H = V_th fires


def test_N4_if_soft_reset():
    s, v = run(IFNode(v_reset=None, return_v=True, backend="torch"), [0.7, 0.7, 0.7])
    assert s == [0, 1, 1]
    assert v == pytest.approx([0.7, 0.4, 0.1], abs=1e-12)


def test_N5_plif():
    for tau0, w0 in [(2.0, 0.0), (16.0, -2.70805020110221)]:
        node = PLIFNode(init_tau=tau0, backend="torch")
        assert node.w.numel() == 1
        assert node.w.item() == pytest.approx(w0, abs=1e-6)
        assert 1 / torch.sigmoid(node.w).item() == pytest.approx(tau0, rel=1e-6)
    node = PLIFNode(init_tau=2.0, backend="torch")
    node(torch.rand(8, 4, 5) * 2).sum().backward()
    assert node.w.grad is not None and node.w.grad.item() != 0.0


def test_F8_tet_lif_strict():
    """SPEC §6.1 F8: decay 0.5, V_th 1, strict: I = .6,.6,.6,1.2,.3 → u = .6,.9,1.05,1.2,.3, s = 0,0,1,1,0."""
    node = LIFNode(decay=0.5, strict=True, detach_reset=False, surrogate_function="triangle", return_v=True, backend="torch")
    x = col([0.6, 0.6, 0.6, 1.2, 0.3]).requires_grad_()
    s, v = node(x)
    assert s.flatten().tolist() == [0, 0, 1, 1, 0]
    # triangle σ' at u = 1.05 → 0.95 and at 1.2 → 0.8: the grad of s[t] w.r.t. its own input x[t] (κ = 1)
    for t, expected in [(2, 0.95), (3, 0.8)]:
        (g,) = torch.autograd.grad(s[t, 0], x, retain_graph=True)
        assert g[t, 0].item() == pytest.approx(expected, abs=1e-12)
    s, v = node(col([1.0, 0.5]))
    assert s.flatten().tolist() == [0, 0] and v.flatten().tolist() == pytest.approx([1.0, 1.0])


def test_F8_decay_quarter_half_threshold():
    node = LIFNode(decay=0.25, v_threshold=0.5, strict=True, return_v=True, backend="torch")
    s, v = run(node, [0.3, 0.3, 0.6, 0.1])
    assert s == [0, 0, 1, 0]
    assert v == pytest.approx([0.3, 0.375, 0.0, 0.1], abs=1e-12)  # H[2] = 0.69375 fires and resets


def test_F8_ssf_decay():
    s, v = run(LIFNode(decay=0.9, strict=True, return_v=True, backend="torch"), [0.5, 0.5, 0.5])
    assert s == [0, 0, 1]
    assert v[:2] == pytest.approx([0.5, 0.95], abs=1e-12)


def test_hard_reset_to_nonzero_v_reset():
    """IF, v_reset = -0.5: starts at -0.5, H = -0.1, 0.3, 0.7, 1.1 (fire) → V = -0.5."""
    s, v = run(IFNode(v_reset=-0.5, return_v=True, backend="torch"), [0.4, 0.4, 0.4, 0.4, 0.4])
    assert s == [0, 0, 0, 1, 0]
    assert v == pytest.approx([-0.1, 0.3, 0.7, -0.5, -0.1], abs=1e-12)


def test_soft_reset_keeps_excess():
    """IF soft, X = 2.5: H = 2.5 → 1.5 after one spike; 4.0 → 3.0; a neuron fires at most once per step."""
    s, v = run(IFNode(v_reset=None, return_v=True, backend="torch"), [2.5, 2.5])
    assert s == [1, 1] and v == pytest.approx([1.5, 3.0])


# Soft reset with V_th != 1 (SPEC §2: V = H − S·V_th), on every registered kernel. Dyadic values: exact in
# float32 (the triton kernel's only dtype). (λ, V_th, X, S, V after reset), worked by hand:
#   IF, V_th 1.5: H = 1, 2, 1.75, 2.25, 1 → S = 0, 1, 1, 1, 0; V = 1, 0.5, 0.25, 0.75, 1
#     (H − S instead would give V = 1, 1, 1.25, 2.25, 1.5 and S = 0, 1, 1, 1, 1)
#   LIF λ 0.5, V_th 0.75: H = 0.5, 1, 1.125, 0.4375 → S = 0, 1, 1, 0; V = 0.5, 0.25, 0.375, 0.4375
SOFT_CASES = {
    "if-vth1.5": (1.0, 1.5, [1.0, 1.0, 1.25, 2.0, 0.25], [0, 1, 1, 1, 0], [1.0, 0.5, 0.25, 0.75, 1.0]),
    "lif0.5-vth0.75": (0.5, 0.75, [0.5, 0.75, 1.0, 0.25], [0, 1, 1, 0], [0.5, 0.25, 0.375, 0.4375]),
}


def kernel_or_skip(name, monkeypatch):
    """The registered kernel ``name``; triton runs on CPU under its interpreter (as tests/neuron/kernels/test_triton.py)."""
    if name == "triton":
        pytest.importorskip("triton")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    return KERNELS.get(name)


@pytest.mark.parametrize("case", SOFT_CASES)
@pytest.mark.parametrize("kernel", KERNELS.names())
def test_soft_reset_subtracts_v_threshold(kernel, case, monkeypatch):
    decay, vth, x, spikes, v = SOFT_CASES[case]
    spec = NeuronSpec(v_reset=None, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))
    params = [torch.tensor(p, dtype=torch.float32) for p in (decay, 1.0, vth)]
    s, v_seq = kernel_or_skip(kernel, monkeypatch)(col(x).float(), None, *params, spec, True)
    assert s.flatten().tolist() == spikes
    assert v_seq.flatten().tolist() == v


@pytest.mark.parametrize("kernel", KERNELS.names())
def test_soft_reset_gradient_carries_v_threshold(kernel, monkeypatch):
    """The reset's gradient (SPEC §2, kernels/base.py): ∂V/∂H = 1 − V_th·σ', ∂V/∂V_th = −S + V_th·σ' without
    detach. IF, V_th 1.5, const σ' = 1, L = Σ_t V[t] on the first case above; by hand, δ[t] = ∂L/∂V[t]
    = 1 + ∂L/∂H[t+1] and ∂L/∂H[t] = δ[t]·(1 − 1.5) = −δ[t]/2 backwards from δ[4] = 1: ∂L/∂X = ∂L/∂H =
    −0.34375, −0.3125, −0.375, −0.25, −0.5; ∂L/∂V_th = Σ δ[t]·(1.5 − S[t]) = 3.46875 (H − S would give
    ∂V/∂H = 0). Exact in float32."""
    spec = NeuronSpec(v_reset=None, detach_reset=False, strict=False, surrogate=surrogate.get("const"))
    x = col(SOFT_CASES["if-vth1.5"][2]).float().requires_grad_()
    vth = torch.tensor(1.5, requires_grad=True)
    one = torch.tensor(1.0)
    _, v_seq = kernel_or_skip(kernel, monkeypatch)(x, None, one, one, vth, spec, True)
    v_seq.sum().backward()
    assert x.grad.flatten().tolist() == [-0.34375, -0.3125, -0.375, -0.25, -0.5]
    assert vth.grad.item() == 3.46875


def test_v_init_starts_from_given_potential_and_gets_gradient():
    v0 = torch.tensor([0.9], dtype=D, requires_grad=True)
    node = IFNode(return_v=True, backend="torch")
    s, v = node(col([0.05, 0.05]), v_init=v0)
    assert s.flatten().tolist() == [0, 1]  # 0.95, then 1.0 fires
    v.sum().backward()
    assert v0.grad.item() == pytest.approx(1.0)  # dV[0]/dv0 = 1; V[1] = reset (detached spike, S=1) → 0


def test_detach_reset_changes_only_gradient():
    """Hard reset at S=1: dV/dH = (1−S) + (v_reset − H)·σ' — the σ' term only without detach."""
    x = col([1.5]).requires_grad_()
    for detach, expected in [(True, 0.0), (False, (0 - 1.5) * 1 / (1 + (math.pi * 0.5) ** 2))]:
        node = IFNode(detach_reset=detach, return_v=True, backend="torch")
        s, v = node(x)
        assert s.item() == 1.0 and v.item() == 0.0
        (g,) = torch.autograd.grad(v.sum(), x)
        assert g.item() == pytest.approx(expected, abs=1e-12)


def test_strict_firing():
    assert run(IFNode(strict=True, return_v=True, backend="torch"), [1.0, 0.5])[0] == [0, 1]
    assert run(IFNode(return_v=True, backend="torch"), [1.0, 0.5])[0] == [1, 0]


def test_learnable_threshold_gets_gradient_and_state_dict():
    node = IFNode(learnable_threshold=True, v_threshold=0.8, backend="torch")
    assert "v_threshold" in node.state_dict()
    node(torch.rand(4, 3, 7, dtype=torch.float32)).sum().backward()
    assert node.v_threshold.grad is not None and node.v_threshold.grad.item() != 0.0
    # round trip
    other = IFNode(learnable_threshold=True, backend="torch")
    other.load_state_dict(node.state_dict())
    assert other.v_threshold.item() == pytest.approx(0.8)


def test_plif_state_dict_round_trip():
    a, b = PLIFNode(init_tau=4.0), PLIFNode()
    b.load_state_dict(a.state_dict())
    assert b.w.item() == a.w.item()


@pytest.mark.parametrize("node", [IFNode(), LIFNode(), PLIFNode(), LIFNode(decay=0.9, v_reset=None)])
def test_no_state_between_calls(node):
    x = torch.rand(6, 2, 5) * 1.5
    assert torch.equal(node(x), node(x))


def test_readout_S5_integrates_without_firing():
    """SPEC §4 S5: readout λ = 0.9, I = [1, 1, 1] → u[2] = 2.71; ∂u[2]/∂I = [0.81, 0.9, 1]."""
    x = col([1.0, 1.0, 1.0]).requires_grad_()
    u = Readout(decay=0.9, output="final")(x)
    assert u.item() == pytest.approx(2.71)
    u.sum().backward()
    assert x.grad.flatten().tolist() == pytest.approx([0.81, 0.9, 1.0])
    seq = Readout(decay=0.9)(col([1.0, 1.0, 1.0]))
    assert seq.flatten().tolist() == pytest.approx([1.0, 1.9, 2.71])
    assert Readout()(col([5.0, 5.0])).flatten().tolist() == [5.0, 10.0]  # never fires nor resets


def test_repr_states_options():
    assert repr(LIFNode(decay=0.9, v_reset=None, backend="torch")) == \
        "LIFNode(decay=0.9, v_reset=None, surrogate=atan(alpha=2.0), backend='torch')"


# ---- bad input -------------------------------------------------------------------------------

def test_rank_below_two_raises():
    with pytest.raises(ValueError, match=r"expected a time-first input \[T, B, \.\.\.\] of rank >= 2, got shape \(4,\)"):
        LIFNode()(torch.ones(4))


def test_integer_input_raises():
    with pytest.raises(TypeError, match="floating-point"):
        IFNode()(torch.ones(4, 2, dtype=torch.int64))


def test_unknown_surrogate_and_backend():
    with pytest.raises(ValueError, match="surrogate 'arctan' is not registered"):
        LIFNode(surrogate_function="arctan")
    with pytest.raises(ValueError, match="kernel 'cuda' is not registered; choose one of: auto, .*torch"):
        LIFNode(backend="cuda")


@pytest.mark.parametrize("tau", [0.0, -2.0, 0.5, float("nan")])
def test_bad_tau(tau):
    with pytest.raises(ValueError, match="tau must be a finite number of steps >= 1"):
        LIFNode(tau=tau)


@pytest.mark.parametrize("tau0", [1.0, 0.5, -3.0])
def test_plif_tau0_must_exceed_one(tau0):
    with pytest.raises(ValueError, match="init_tau must be a finite number of steps > 1"):
        PLIFNode(init_tau=tau0)


def test_v_init_wrong_shape():
    with pytest.raises(ValueError, match=r"v_init must have the shape of one step \[B, \.\.\.\] = \(2, 3\), got \(3,\)"):
        IFNode()(torch.ones(4, 2, 3), v_init=torch.zeros(3))


def test_decay_and_tau_conflict():
    with pytest.raises(ValueError, match="either tau"):
        LIFNode(tau=2.0, decay=0.5)
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\]"):
        LIFNode(decay=1.5)
