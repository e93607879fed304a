"""DSR (SPEC §5): oracles R1–R8 (faithful per-step values beside the one-step ones), threshold clamp."""
import math

import pytest
import torch

from spikeforge.methods import Dual, get_method
from spikeforge.neuron.dsr import DSRNode, dsr_lif_preset
from spikeforge.streams.dual import decay_weights, uniform_weights
from spikeforge.neuron import LIFNode

D = torch.float64
R6_W = [0.860708, 0.904837, 0.951229, 1.0]


def if_node(alpha=0.5, faithful=False, **kw):
    return DSRNode("if", v_threshold=1.0, alpha=alpha, backend="torch", grad_rule=get_method("dsr", faithful=faithful).grad_rule, **kw)


def lif_node(faithful=False, exact=False):
    rule = get_method("dsr", faithful=faithful, exact_vth_grad=exact).grad_rule
    return DSRNode("lif", v_threshold=0.3, lower_bound=0.0005, dt=0.05, tau=1.0, alpha=0.3, backend="torch",
                   grad_rule=rule).double()


def faithful(n, values):
    """Per-step run with L = o = Σ w_t y_t: returns (y, o, ∂L/∂x, ∂L/∂V_th)."""
    x = torch.tensor(values, dtype=D).reshape(-1, 1).requires_grad_()
    n = n.double()
    y = n(x)
    w = n.weights(len(values), x)
    o = (w.reshape(-1, 1) * y).sum()
    o.backward()
    return y.flatten().tolist(), o.item(), x.grad.flatten().tolist(), n.v_threshold.grad.item()


def one_step(n, values):
    """One-step run with L = o: returns (spikes·value, o, ∂L/∂flow, ∂L/∂V_th)."""
    n = n.double()
    T = len(values)
    seq = torch.tensor(values, dtype=D).reshape(-1, 1)
    flow = seq.mean(0).clone().requires_grad_()
    out = n(Dual(seq, flow, uniform_weights(T, D)))
    out.flow.sum().backward()
    return out.materialize().flatten().tolist(), out.flow.item(), flow.grad.item(), n.v_threshold.grad.item()


def test_R1_if_alpha_changes_only_firing():
    y, o, _, _ = faithful(if_node(0.5, True), [0.3] * 4)
    assert y == [0, 1, 0, 0] and o == pytest.approx(0.25)
    y, o, _, _ = faithful(if_node(1.0, True), [0.3] * 4)
    assert y == [0, 0, 0, 1] and o == pytest.approx(0.25)
    n = if_node(0.5).double()
    s, v = n.run_kernel(torch.full((4, 1), 0.3, dtype=D), return_v=True)
    assert v[-1].item() == pytest.approx(0.2)  # u − V_th per spike, whatever α


def test_R2_if_representation():
    y, o, _, _ = faithful(if_node(0.5, True), [0.7, 0.1, 0.9, 0.3])
    assert y == [1, 0, 1, 0] and o == pytest.approx(0.5)


def test_R3_R4_R5_if_gradients():
    # R3: saturated — no input gradient, V_th gradient 1
    _, o, gx, gv = faithful(if_node(faithful=True), [2.0] * 4)
    assert o == pytest.approx(1.0) and gx == [0, 0, 0, 0] and gv == pytest.approx(1.0)
    _, o, gflow, gv = one_step(if_node(), [2.0] * 4)
    assert o == pytest.approx(1.0) and gflow == 0 and gv == pytest.approx(1.0)
    # R4: inside — ∂L/∂x_t = 1/T per step (one-step: 1 on the mean input), no V_th gradient
    _, _, gx, gv = faithful(if_node(faithful=True), [0.3] * 4)
    assert gx == pytest.approx([0.25] * 4) and gv == 0
    _, _, gflow, gv = one_step(if_node(), [0.3] * 4)
    assert gflow == pytest.approx(1.0) and gv == 0
    # R5: silent
    _, o, gx, gv = faithful(if_node(faithful=True), [-0.5] * 4)
    assert o == 0 and gx == [0, 0, 0, 0] and gv == 0


def weighted(n, values, g):
    """Per-step run with L = Σ_t g_t·y_t: returns (∂L/∂x, ∂L/∂V_th)."""
    x = torch.tensor(values, dtype=D).reshape(-1, 1).requires_grad_()
    n = n.double()
    (n(x) * torch.tensor(g, dtype=D).reshape(-1, 1)).sum().backward()
    return x.grad.flatten().tolist(), n.v_threshold.grad.item()


@pytest.mark.parametrize("vth", [1.0, 0.5])
def test_if_mask_closed_at_both_edges(vth):
    """SPEC §5: DSR-IF ∂L/∂x_t = (G/T)·1[0 ≤ Ī ≤ V_th] (inclusive), ∂L/∂V_th = Σ G·1[Ī > V_th] (strict). S6:
    g = [1, 2, 3, 4], G = 10 → 2.5 at every t at Ī = 0 and at Ī = V_th, with no V_th gradient at either;
    one-step (L = o): ∂L/∂flow = 1 at both edges. Exact (float64, dyadic values)."""
    make = lambda faithful: DSRNode("if", v_threshold=vth, alpha=0.5, backend="torch",  # noqa: E731
                                    grad_rule=get_method("dsr", faithful=faithful).grad_rule)
    for value in (0.0, vth):
        gx, gv = weighted(make(True), [value] * 4, [1, 2, 3, 4])
        assert gx == [2.5] * 4 and gv == 0, f"Ī = {value}"
        _, o, gflow, gv = one_step(make(False), [value] * 4)
        assert o == value and gflow == 1.0 and gv == 0, f"Ī = {value}"


def test_lif_mask_open_at_zero():
    """SPEC §5: DSR-LIF's input mask is strict, 1[0 < Î < V_th·τ/Δt]: at Î = 0 no gradient (IF's gives G/T)."""
    gx, gv = weighted(lif_node(faithful=True), [0.0] * 4, [1, 2, 3, 4])
    assert gx == [0, 0, 0, 0] and gv == 0
    _, o, gflow, gv = one_step(lif_node(), [0.0] * 4)
    assert o == 0 and gflow == 0 and gv == 0


def test_R6_dsr_lif_faithful_per_step():
    n = lif_node(faithful=True)
    torch.testing.assert_close(decay_weights(math.exp(-0.05), 4, D) * sum(R6_W), torch.tensor(R6_W, dtype=D), atol=1e-6, rtol=0)
    y, o, gx, gv = faithful(n, [4.0] * 4)
    assert y == pytest.approx([6, 6, 0, 6]) and o == pytest.approx(4.464428, abs=1e-6)
    assert gx == pytest.approx([0.250781] * 4, abs=1e-6) and gv == 0
    assert sum(gx) == pytest.approx(1.003122, abs=1e-6)
    # one-step: ∂o/∂Î = 1/τ = 1 (the code's per-step values sum to 1.003122 — its G = T·Σw·g/W quirk)
    _, o1, gflow, gv1 = one_step(lif_node(), [4.0] * 4)
    assert o1 == pytest.approx(4.464428, abs=1e-6) and gflow == pytest.approx(1.0) and gv1 == 0


def test_R7_dsr_lif_spikes():
    y, o, _, _ = faithful(lif_node(True), [2.0] * 4)
    assert [v > 0 for v in y] == [True, False, False, True] and o == pytest.approx(3.003746, abs=1e-6)


def test_R8_dsr_lif_saturated_threshold_gradient():
    y, o, gx, gv = faithful(lif_node(True), [8.0] * 4)
    assert o == pytest.approx(6.0) and gx == [0, 0, 0, 0] and gv == pytest.approx(0.05 * 1.003122, abs=1e-6)
    _, _, gflow, gv1 = one_step(lif_node(), [8.0] * 4)
    assert gflow == 0 and gv1 == pytest.approx(0.05)  # one-step: Δt·∂L/∂o
    _, _, _, gv_exact = one_step(lif_node(exact=True), [8.0] * 4)
    assert gv_exact == pytest.approx(1 / 0.05)  # exact_vth_grad: the closed form's 1/Δt


def test_threshold_clamped_to_lower_bound_before_forward():
    n = if_node()
    with torch.no_grad():
        n.v_threshold.fill_(-3.0)
    with torch.no_grad():
        n(torch.rand(4, 2))
    assert n.v_threshold.item() == pytest.approx(0.01)


def test_same_spikes_under_bptt_and_dsr():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 5) * 2
    plain = DSRNode("if", v_threshold=0.7, alpha=0.5, backend="torch")  # bptt: no grad rule
    rule = DSRNode("if", v_threshold=0.7, alpha=0.5, backend="torch", grad_rule=get_method("dsr").grad_rule)
    y = plain(x)
    out = rule(Dual(x, x.mean(0).requires_grad_(), uniform_weights(6)))
    assert torch.equal(y.detach(), out.materialize())


def test_lif_presets_and_errors():
    assert dsr_lif_preset(5) == {"kind": "lif", "v_threshold": 0.6, "lower_bound": 0.001, "dt": 0.1, "alpha": 0.5, "tau": 1.0}
    with pytest.raises(ValueError, match="T in"):
        dsr_lif_preset(7)
    with pytest.raises(ValueError, match="needs DSRNode neurons"):
        LIFNode(grad_rule=get_method("dsr").grad_rule)
    with pytest.raises(ValueError, match="cannot take the DSR form"):
        get_method("dsr").make_neuron({"kind": "lif", "v_reset": 0.0})
    with pytest.raises(ValueError, match="cannot take the DSR form"):
        get_method("dsr").make_neuron({"kind": "plif"})
    with pytest.raises(ValueError, match="kind must be one of if, lif"):
        DSRNode("plif")
