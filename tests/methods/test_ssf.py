"""SSF (SPEC §4): oracles S1–S6, the flow relation, one-step and faithful gradients of a two-layer net."""
import pytest
import torch

from spikeforge.methods import Dual, get_method
from spikeforge.streams.dual import decay_weights, uniform_weights
from spikeforge.neuron import IFNode, LIFNode, PLIFNode, Readout

D = torch.float64


def node(decay=1.0, v_reset=0.0, **kw):
    return LIFNode(decay=decay, v_reset=v_reset, backend="torch", grad_rule=get_method("ssf").grad_rule, **kw)


def dual_const(value, T, requires_grad=True):
    seq = torch.full((T, 1), value, dtype=D)
    flow = torch.tensor([value], dtype=D, requires_grad=requires_grad)
    return Dual(seq, flow, uniform_weights(T, D))


def test_S1_hard_reset_if():
    out = node(1.0)(dual_const(0.6, 4))
    assert out.materialize().flatten().tolist() == [0, 1, 0, 1]
    assert out.flow.item() == pytest.approx(0.5)


def test_S2_soft_reset_if_charge_conservation():
    n = IFNode(v_reset=None, return_v=True, backend="torch")
    s, v = n(torch.full((4, 1), 0.6, dtype=D))
    assert s.flatten().tolist() == [0, 1, 0, 1]
    assert v[-1].item() == pytest.approx(0.4)  # 1.4 − V_th = ΣI − Σo
    out = node(1.0, v_reset=None)(dual_const(0.6, 4))
    assert out.materialize().flatten().tolist() == [0, 1, 0, 1] and out.flow.item() == pytest.approx(0.5)


def test_S3_hard_reset_half_decay():
    out = node(0.5)(dual_const(0.6, 4))
    assert out.materialize().flatten().tolist() == [0, 0, 1, 0]
    torch.testing.assert_close(out.weights, torch.tensor([0.125, 0.25, 0.5, 1], dtype=D) / 1.875)
    assert out.flow.item() == pytest.approx(0.5 / 1.875, abs=1e-12)


def faithful_grad(value, g, decay=0.5, method="ssf", n=None):
    x = torch.full((len(g), 1), value, dtype=D, requires_grad=True)
    if n is None:
        n = LIFNode(decay=decay, backend="torch", grad_rule=get_method(method, faithful=True).grad_rule)
    y = n(x)
    (y * torch.tensor(g, dtype=D).reshape(-1, 1)).sum().backward()
    return x.grad.flatten().tolist()


def test_S4_faithful_per_step_gradient():
    """λ = 0.5, FI = 0.6: g = e0 → 0.066667 at every t; g = e3 → 0.533333; FI = 1.2 or −0.1 → 0."""
    assert faithful_grad(0.6, [1, 0, 0, 0]) == pytest.approx([0.125 / 1.875] * 4, abs=1e-12)
    assert faithful_grad(0.6, [0, 0, 0, 1]) == pytest.approx([1 / 1.875] * 4, abs=1e-12)
    assert faithful_grad(1.2, [1, 1, 1, 1]) == [0, 0, 0, 0]
    assert faithful_grad(-0.1, [1, 1, 1, 1]) == [0, 0, 0, 0]


def test_S4_one_step_mask():
    """One-step: ∂FO/∂FI = 1[0 < FI < V_th], the incoming flow gets ∂L/∂FO·mask."""
    for value, expected in [(0.6, 1.0), (1.2, 0.0), (-0.1, 0.0)]:
        d = dual_const(value, 4)
        node(0.5)(d).flow.sum().backward()
        assert d.flow.grad.item() == expected


def test_S5_readout_final_potential_under_dual():
    d = Dual(torch.ones(3, 1, dtype=D), torch.ones(1, dtype=D, requires_grad=True), uniform_weights(3, D))
    u = Readout(decay=0.9, output="final")(d)
    assert u.item() == pytest.approx(2.71)
    u.sum().backward()
    assert d.flow.grad.item() == pytest.approx(2.71)  # c_{T−1} = W = 1 + 0.9 + 0.81
    d2 = Dual(torch.ones(3, 1, dtype=D), torch.ones(1, dtype=D, requires_grad=True), uniform_weights(3, D))
    seq = Readout(decay=0.9)(d2)
    assert seq.flatten().tolist() == pytest.approx([1.0, 1.9, 2.71])
    seq[1].sum().backward()
    assert d2.flow.grad.item() == pytest.approx(1.9)  # c_1


def test_S6_ssf_vs_dsr_at_constant_input():
    g = [1, 2, 3, 4]
    assert faithful_grad(0.3, g, decay=1.0) == pytest.approx([2.5] * 4)
    from spikeforge.neuron.dsr import DSRNode
    dsr_if = DSRNode("if", v_threshold=1.0, backend="torch", grad_rule=get_method("dsr", faithful=True).grad_rule)
    assert faithful_grad(0.3, g, n=dsr_if) == pytest.approx([2.5] * 4)
    # the masks differ at the ends: FI = 0 → SSF 0 (open), DSR-IF G/T (closed)
    assert faithful_grad(0.0, g, decay=1.0) == [0, 0, 0, 0]
    dsr_if = DSRNode("if", v_threshold=1.0, backend="torch", grad_rule=get_method("dsr", faithful=True).grad_rule)
    assert faithful_grad(0.0, g, n=dsr_if) == pytest.approx([2.5] * 4)


@pytest.mark.parametrize("vth", [1.0, 0.5])
def test_S6_mask_open_at_both_edges(vth):
    """SPEC §4: ∂FO/∂FI = 1[0 < FI < V_th], open at both ends (S6: "at FI = 0 SSF gives 0"). λ = 1, T = 4,
    I constant (FI = I), g = [1, 2, 3, 4]: faithful ∂L/∂I[t] = mean of g = 2.5 inside (FI = V_th/2), 0 at
    FI = 0 and at FI = V_th; one-step ∂L/∂flow = 1 inside, 0 at both edges. Exact (float64, dyadic values)."""
    g = [1, 2, 3, 4]
    make = lambda: LIFNode(decay=1.0, v_threshold=vth, backend="torch", grad_rule=get_method("ssf", faithful=True).grad_rule)  # noqa: E731
    assert faithful_grad(vth / 2, g, n=make()) == [2.5] * 4
    assert faithful_grad(0.0, g, n=make()) == [0, 0, 0, 0]
    assert faithful_grad(vth, g, n=make()) == [0, 0, 0, 0]
    for value, expected in [(vth / 2, 1.0), (0.0, 0.0), (vth, 0.0)]:
        d = dual_const(value, 4)
        node(1.0, v_threshold=vth)(d).flow.sum().backward()
        assert d.flow.grad.item() == expected, f"FI = {value}"


@pytest.mark.parametrize("T", [2, 4, 7, 16, 33])
def test_flow_relation_soft_reset_bound(T):
    """Soft reset, λ = 1, constant I, >= firing: |FO − clamp(FI/V_th, 0, 1)| < 1/T (supp. S5)."""
    values = torch.linspace(-0.5, 1.5, 401, dtype=D)
    for vth in (1.0, 0.5):
        n = node(1.0, v_reset=None, v_threshold=vth)
        d = Dual(values.expand(T, -1).clone(), values.clone(), uniform_weights(T, D))
        fo = n(d).flow.detach()
        assert (fo - torch.clamp(values / vth, 0, 1)).abs().max() < 1 / T


def test_slope_clamp_option():
    n = LIFNode(decay=1.0, v_threshold=0.5, backend="torch", grad_rule=get_method("ssf", slope="clamp").grad_rule)
    d = dual_const(0.3, 4)
    n(d).flow.sum().backward()
    assert d.flow.grad.item() == pytest.approx(2.0)  # 1/V_th
    with pytest.raises(ValueError, match="slope must be one of one, clamp"):
        get_method("ssf", slope="tanh")


def two_layer(seed=0):
    g = torch.Generator().manual_seed(seed)
    T, B, F, H, K = 5, 3, 6, 7, 4
    x = torch.rand(T, B, F, generator=g, dtype=D) * 1.5
    W1 = torch.randn(H, F, generator=g, dtype=D) * 0.6
    W2 = torch.randn(K, H, generator=g, dtype=D) * 0.8
    c = torch.randn(B, K, generator=g, dtype=D)
    return x, W1, W2, c


@pytest.mark.parametrize("decays", [(1.0, 1.0), (0.9, 0.7)])
def test_one_step_two_layer_net_equals_flow_formula(decays):
    """x → W1 → LIF(λ1) → W2 → LIF(λ2), L = Σ c·FO2; weights' gradients vs the flow formula by hand."""
    x, W1, W2, c = two_layer()
    lam1, lam2 = decays
    ssf = get_method("ssf")
    n1, n2 = (LIFNode(decay=lam, backend="torch", grad_rule=ssf.grad_rule) for lam in decays)
    A, Bw = W1.clone().requires_grad_(), W2.clone().requires_grad_()
    d = ssf.enter(x)
    h1 = Dual(torch.einsum("tbf,hf->tbh", d.materialize(), A.detach()), d.flow @ A.T, d.weights)
    s1 = n1(h1)
    h2 = Dual(torch.einsum("tbh,kh->tbk", s1.materialize(), Bw.detach()), s1.flow @ Bw.T, s1.weights)
    s2 = n2(h2)
    (c * s2.flow).sum().backward()
    # by hand
    T = x.shape[0]
    w1, w2 = decay_weights(lam1, T, D), decay_weights(lam2, T, D)
    X1 = torch.einsum("tbf,hf->tbh", x, W1)
    S1 = (torch.stack([LIFNode(decay=lam1, backend="torch")(X1)]))[0]
    FI1, FO1 = torch.einsum("t,tbh->bh", w1, X1), torch.einsum("t,tbh->bh", w1, S1)
    X2 = torch.einsum("tbh,kh->tbk", S1, W2)
    FI2 = torch.einsum("t,tbk->bk", w2, X2)
    m1, m2 = ((FI1 > 0) & (FI1 < 1)).to(D), ((FI2 > 0) & (FI2 < 1)).to(D)
    g_fi2 = c * m2
    grad_W2 = g_fi2.T @ FO1
    g_fi1 = (g_fi2 @ W2) * m1
    grad_W1 = g_fi1.T @ x.mean(0)
    assert torch.equal(s1.materialize(), S1)
    torch.testing.assert_close(Bw.grad, grad_W2, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(A.grad, grad_W1, rtol=1e-6, atol=1e-9)
    assert grad_W1.abs().sum() > 0 and grad_W2.abs().sum() > 0


def test_faithful_two_layer_net_equals_per_step_formula():
    x, W1, W2, c = two_layer(1)
    lam1, lam2 = 0.9, 0.8
    ssf = get_method("ssf", faithful=True)
    n1, n2 = (LIFNode(decay=lam, backend="torch", grad_rule=ssf.grad_rule) for lam in (lam1, lam2))
    A, Bw = W1.clone().requires_grad_(), W2.clone().requires_grad_()
    s2 = n2(n1(x @ A.T) @ Bw.T)
    (c * s2).sum().backward()  # g2[t] = c at every step
    T = x.shape[0]
    w1, w2 = decay_weights(lam1, T, D), decay_weights(lam2, T, D)
    X1 = x @ W1.T
    S1 = LIFNode(decay=lam1, backend="torch")(X1)
    X2 = S1 @ W2.T
    FI1, FI2 = torch.einsum("t,tbh->bh", w1, X1), torch.einsum("t,tbk->bk", w2, X2)
    m1, m2 = ((FI1 > 0) & (FI1 < 1)).to(D), ((FI2 > 0) & (FI2 < 1)).to(D)
    g_x2 = c * m2  # same at every t (ĝ2 = Σ w_t c = c)
    grad_W2 = T * g_x2.T @ S1.mean(0)
    g_s1 = g_x2 @ W2  # same at every t
    g_x1 = g_s1 * m1
    grad_W1 = T * g_x1.T @ x.mean(0)
    torch.testing.assert_close(Bw.grad, grad_W2, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(A.grad, grad_W1, rtol=1e-6, atol=1e-9)


def test_plif_w_frozen_with_warning_and_bad_neurons():
    with pytest.warns(UserWarning, match="frozen"):
        n = PLIFNode(grad_rule=get_method("ssf").grad_rule)
    assert not n.w.requires_grad
    with pytest.raises(ValueError, match="must reset to 0 or by V_th"):
        IFNode(v_reset=-0.5, grad_rule=get_method("ssf").grad_rule)
    with pytest.raises(ValueError, match="V_th is not trained under ssf"):
        IFNode(learnable_threshold=True, grad_rule=get_method("ssf").grad_rule)


def test_plain_tensor_with_grad_raises():
    n = node(0.9)
    with pytest.raises(ValueError, match="built for ssf"):
        n(torch.rand(4, 2, dtype=D, requires_grad=True))
    with torch.no_grad():
        assert n(torch.full((4, 1), 0.6, dtype=D)).flatten().tolist() == [0, 1, 0, 1]  # eval: plain forward
