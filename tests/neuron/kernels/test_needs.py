"""The fused kernels (``cpu``, ``triton`` under its interpreter and, where CUDA exists, ``triton`` compiled for
the GPU) do only the work a call needs.

- No ``v_init``: the kernel starts at v_rest itself (an empty ``v0``; nothing is filled, read back or
  differentiated). Oracle: the ``torch`` kernel, and the same kernel given ``v_init = v_rest`` explicitly.
- Only the gradients asked for: each of λ, κ, V_th, v_init learnable alone (and all, and none) gives the
  ``torch`` kernel's gradient for it and None for the others.
- Traffic: one forward+backward of an LIF layer without v_init or learnable parameter reads and writes
  exactly 24 bytes per element and step in fp32 (forward: X read, S and H written; backward: ∂L/∂S and H
  read, ∂L/∂X written), or 20 where the kernel recomputes H from X instead (``triton`` for T <= 16: the
  forward writes no H, the backward reads X), plus the six 0-dim λ, κ, V_th reads, counted from the tensors
  the ops take and return.
"""
import pytest
import torch

from spikeforge.bench.dispatch import KernelTraffic
from spikeforge.neuron import LIFNode, surrogate
from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.kernels.base import NeuronSpec

NEEDS = ["decay", "gain", "vth", "v_init", "none", "all"]


@pytest.fixture(params=["cpu", "triton", "triton-cuda"])
def kernel(request, monkeypatch):
    """(kernel name, device of the tensors)."""
    if request.param == "cpu":
        request.getfixturevalue("cpu_built")
        return "cpu", torch.device("cpu")
    pytest.importorskip("triton")
    if request.param == "triton":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        return "triton", torch.device("cpu")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    return "triton", torch.device("cuda")


def _spec(v_reset, strict=False, detach=False):
    return NeuronSpec(v_reset=v_reset, detach_reset=detach, strict=strict, surrogate=surrogate.get("atan"))


def _run(name, x, v_init, params, learn, spec, w):
    """Spikes and the gradients (None where not asked) of ``(S·w).sum()``; ``learn`` names the leaves that
    require a gradient (x always does)."""
    x = x.clone().requires_grad_()
    v_init = None if v_init is None else v_init.clone().requires_grad_("v_init" in learn)
    leaves = [p.clone().requires_grad_(k in learn) for k, p in zip(("decay", "gain", "vth"), params)]
    s, _ = KERNELS.get(name)(x, v_init, *leaves, spec)
    (s * w).sum().backward()
    grads = {"x": x.grad, "v_init": None if v_init is None else v_init.grad}
    grads.update({k: p.grad for k, p in zip(("decay", "gain", "vth"), leaves)})
    return s.detach(), grads


def _inputs(seed, device, T=5, shape=(3, 41)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((T, *shape), generator=g) * 1.2
    v0 = torch.rand(shape, generator=g) * 0.5 - 0.3
    w = torch.randn((T, *shape), generator=g)
    params = (torch.tensor(0.7), torch.tensor(0.9), torch.tensor(0.8))
    return x.to(device), v0.to(device), tuple(p.to(device) for p in params), w.to(device)


@pytest.mark.parametrize("need", NEEDS)
@pytest.mark.parametrize("v_reset", [-0.4, None], ids=["hard-0.4", "soft"])
def test_gradients_only_where_asked(kernel, need, v_reset):
    name, device = kernel
    x, v0, params, w = _inputs(NEEDS.index(need), device)
    learn = {"decay", "gain", "vth", "v_init"} if need == "all" else {need}
    spec = _spec(v_reset)
    s_ref, g_ref = _run("torch", x, v0, params, learn, spec, w)
    s_got, g_got = _run(name, x, v0, params, learn, spec, w)
    assert torch.equal(s_got, s_ref)
    for key in ("x", "v_init", "decay", "gain", "vth"):
        if key != "x" and key not in learn:
            assert g_got[key] is None, key
            continue
        assert g_got[key] is not None, key
        torch.testing.assert_close(g_got[key], g_ref[key], rtol=1e-5, atol=1e-5, msg=lambda m: f"grad {key}: {m}")


@pytest.mark.parametrize("v_reset", [-0.5, 0.3])
def test_starts_at_v_rest_without_v_init(kernel, v_reset):
    """v_rest ≠ 0: a kernel starting at 0 instead fires differently in the first steps (x ∈ [0, 1.2))."""
    name, device = kernel
    x, _, params, w = _inputs(7, device)
    spec = _spec(v_reset, strict=True)
    learn = {"decay", "vth"}
    s_ref, g_ref = _run("torch", x, None, params, learn, spec, w)
    s_got, g_got = _run(name, x, None, params, learn, spec, w)
    s_explicit, g_explicit = _run(name, x, torch.full(x.shape[1:], v_reset, device=device), params, learn, spec, w)
    assert torch.equal(s_got, s_ref) and torch.equal(s_got, s_explicit)
    for key in ("x", "decay", "vth"):
        torch.testing.assert_close(g_got[key], g_ref[key], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g_got[key], g_explicit[key], rtol=1e-6, atol=1e-6)


def _recomputes(name: str, T: int) -> bool:
    from spikeforge.neuron.kernels import triton_kernel

    return name == "triton" and T <= triton_kernel.RECOMPUTE_MAX_T


@pytest.mark.parametrize("T,N", [(1, 37), (8, 4096), (20, 300)])
def test_traffic_per_element_and_step(kernel, T, N):
    name, device = kernel
    node = LIFNode(tau=2.0, backend=name).to(device)  # λ, κ, V_th fixed, no v_init
    x = (torch.rand(T, N, device=device) * 1.5).requires_grad_()
    with KernelTraffic() as traffic:
        node(x).backward(torch.rand(T, N, device=device))
    assert sum(traffic.ops.values()) == 2  # one forward op, one backward op
    if _recomputes(name, T):
        assert (traffic.read, traffic.written) == (12 * T * N + 6 * 4, 8 * T * N)  # X twice, ∂L/∂S | S, ∂L/∂X
    else:
        assert (traffic.read, traffic.written) == (12 * T * N + 6 * 4, 12 * T * N)  # X, ∂L/∂S, H | S, H, ∂L/∂X


def test_traffic_counts_what_is_asked(kernel):
    """A learnable κ (PLIF with decay_input) adds X to backward's reads and one [N] partial; a v_init with
    gradient adds its read in both directions and its [N] gradient."""
    name, device = kernel
    T, N = 4, 100
    spec = _spec(0.0)
    x = torch.rand(T, N, device=device, requires_grad=True)
    v0 = torch.rand(N, device=device, requires_grad=True)
    gain = torch.tensor(0.5, device=device, requires_grad=True)
    with KernelTraffic() as traffic:
        s, _ = KERNELS.get(name)(x, v0, torch.tensor(0.5, device=device), gain, torch.tensor(1.0, device=device), spec)
        s.sum().backward()
    per_step = 4 * T * N
    # [T, N]: x, s, h | ∂S, h, x, ∂X (no h where H is recomputed from x, read once for both);
    # [N]: v0 in both directions, ∂v0, κ's partials;  0-dim: λ, κ, V_th twice
    tensors = 5 if _recomputes(name, T) else 7
    assert traffic.total == tensors * per_step + 4 * 4 * N + 6 * 4
