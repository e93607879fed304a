"""The ``torch`` reference kernel's gradients against an independently written backward recursion.

The recursion below is derived by hand from SPEC §2 (see ``kernels/base.py``) and runs on plain
float64 tensors without autograd. ``gradcheck`` covers the parts of the map that are smooth (the
potential sequence with a detached reset, and the readout).
"""
import itertools

import pytest
import torch

from spikeforge.neuron import surrogate
from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.kernels.base import NeuronSpec

D = torch.float64


def manual_forward(x, v0, lam, kap, vth, v_reset):
    """Returns H [T, N] and S [T, N] (no autograd)."""
    v_rest = 0.0 if v_reset is None else v_reset
    c = (1 - lam) * v_rest
    v, hs, ss = v0.clone(), [], []
    for t in range(x.shape[0]):
        h = lam * v + kap * x[t] + c
        s = (h >= vth).to(D)
        v = s * v_reset + (1 - s) * h if v_reset is not None else h - s * vth
        hs.append(h)
        ss.append(s)
    return torch.stack(hs), torch.stack(ss)


def manual_backward(x, v0, lam, kap, vth, v_reset, detach, sg, gS, gV):
    """Unrolled BPTT: returns grads for x, v0, λ, κ, V_th."""
    H, S = manual_forward(x, v0, lam, kap, vth, v_reset)
    v_rest = 0.0 if v_reset is None else v_reset
    T = x.shape[0]
    V = [None] * T
    for t in range(T):  # potentials after reset
        V[t] = S[t] * v_reset + (1 - S[t]) * H[t] if v_reset is not None else H[t] - S[t] * vth
    delta = torch.zeros_like(v0)
    gx, glam, gkap, gvth = torch.zeros_like(x), 0.0, 0.0, 0.0
    for t in reversed(range(T)):
        d = sg.derivative(H[t] - vth)
        delta = delta + gV[t]
        if v_reset is not None:
            dv_dh = (1 - S[t]) + (0.0 if detach else (v_reset - H[t]) * d)
            dv_dvth = 0.0 if detach else -(v_reset - H[t]) * d
        else:
            dv_dh = 1 - (0.0 if detach else vth * d)
            dv_dvth = -S[t] + (0.0 if detach else vth * d)
        gh = gS[t] * d + delta * dv_dh
        gvth = gvth + (-gS[t] * d + delta * dv_dvth).sum()
        v_prev = V[t - 1] if t > 0 else v0
        glam = glam + (gh * (v_prev - v_rest)).sum()
        gkap = gkap + (gh * x[t]).sum()
        gx[t] = kap * gh
        delta = lam * gh
    return gx, delta, glam, gkap, gvth


CASES = list(itertools.product([0.0, None, -0.2], [True, False], ["atan", "sigmoid", "rect", "triangle", "const"]))


@pytest.mark.parametrize("v_reset,detach,sg_name", CASES)
def test_reference_gradients_match_unrolled_formula(v_reset, detach, sg_name):
    g = torch.Generator().manual_seed(CASES.index((v_reset, detach, sg_name)))
    T, N = 7, 40
    x = (torch.rand(T, N, generator=g, dtype=D) * 1.6 - 0.2).requires_grad_()
    v0 = (torch.rand(N, generator=g, dtype=D) * 0.5).requires_grad_()
    lam = torch.tensor(0.8, dtype=D, requires_grad=True)
    kap = torch.tensor(0.9, dtype=D, requires_grad=True)
    vth = torch.tensor(1.0, dtype=D, requires_grad=True)
    sg = surrogate.get(sg_name)
    spec = NeuronSpec(v_reset=v_reset, detach_reset=detach, strict=False, surrogate=sg)
    s, v = KERNELS.get("torch")(x, v0, lam, kap, vth, spec, return_v=True)
    gS, gV = torch.randn(T, N, generator=g, dtype=D), torch.randn(T, N, generator=g, dtype=D)
    got = torch.autograd.grad((s * gS).sum() + (v * gV).sum(), (x, v0, lam, kap, vth))
    want = manual_backward(x.detach(), v0.detach(), 0.8, 0.9, 1.0, v_reset, detach, sg, gS, gV)
    assert s.sum() > 0 and s.sum() < T * N  # the case fires, and not everywhere
    for a, b, name in zip(got, want, ["x", "v_init", "decay", "input_gain", "v_threshold"]):
        torch.testing.assert_close(a, torch.as_tensor(b, dtype=D), rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_gradcheck_potential_sequence(v_reset):
    """With a detached reset the potential sequence is smooth between threshold crossings."""
    spec = NeuronSpec(v_reset=v_reset, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(5, 6, generator=g, dtype=D) * 1.2).requires_grad_()
    v0 = (torch.rand(6, generator=g, dtype=D) * 0.3).requires_grad_()
    lam, kap, vth = (torch.tensor(v, dtype=D, requires_grad=True) for v in (0.7, 0.9, 1.0))

    def potentials(x, v0, lam, kap, vth):
        return KERNELS.get("torch")(x, v0, lam, kap, vth, spec, return_v=True)[1]

    assert torch.autograd.gradcheck(potentials, (x, v0, lam, kap, vth), eps=1e-7, atol=1e-6)


def test_gradcheck_plif_w_and_readout():
    from spikeforge.neuron import PLIFNode, Readout

    node = PLIFNode(init_tau=3.0, return_v=True, backend="torch").double()
    x = (torch.rand(4, 5, dtype=D) * 1.5)

    def potentials_of_w(w):
        node.w.data.copy_(w.detach())
        k = torch.sigmoid(w)
        spec = node.spec
        return KERNELS.get("torch")(x, None, 1 - k, k, torch.tensor(1.0, dtype=D), spec, return_v=True)[1]

    assert torch.autograd.gradcheck(potentials_of_w, (torch.tensor(-0.4, dtype=D, requires_grad=True),))
    readout = Readout(decay=0.9)
    assert torch.autograd.gradcheck(lambda z: readout(z), (torch.rand(4, 3, dtype=D, requires_grad=True),))
