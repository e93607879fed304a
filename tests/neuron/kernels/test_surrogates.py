"""Every registered surrogate × every kernel against the ``torch`` oracle (forward spikes, gradients).

The grid is read from the registries (``SURROGATES.names()``, ``KERNELS.names()``), so a new surrogate or
kernel is covered here without editing this file. The ``triton`` kernel runs under Triton's interpreter on
CPU tensors (``TRITON_INTERPRET=1``, read by the kernel at each call); a kernel that cannot run here (no
triton, no C++ toolchain, a CUDA-only kernel) is skipped with its own reason.

Oracle: spikes and potentials equal bit for bit; gradients of x and v_init within rtol 1e-5, atol 1e-6·max|ref|;
the scalar gradients of λ, κ, V_th (sums over T·N terms that may cancel) within rtol 1e-5 and an atol of
1e-6 × Σ|terms|, the terms taken from the oracle with one copy of the scalar per neuron.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.kernels.base import NeuronSpec
from spikeforge.neuron.kernels.fused import FusedKernel
from spikeforge.neuron.surrogate import KERNEL_DERIVATIVES, SURROGATES, ATan, Surrogate

ORACLE = "torch"
KERNEL_NAMES = [name for name in KERNELS.names() if name != ORACLE]
SURROGATE_NAMES = SURROGATES.names()
PARAMS = ("decay", "gain", "vth")

# (v_reset, detach_reset, strict, alpha, fire_ratio): soft and hard resets (hard to v_rest != 0 too), with and
# without detach, both tie rules, default and other alphas, DSR's fire_ratio.
CONFIGS = [
    (None, False, False, None, 1.0),
    (-0.2, False, True, 1.7, 0.8),
    (0.0, True, False, 0.6, 1.0),
    (None, True, True, 3.0, 0.5),
]


@pytest.fixture(autouse=True)
def _triton_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _inputs(seed: int, T: int = 6, shape: tuple[int, ...] = (3, 50)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((T, *shape), generator=g) * 0.7 + 0.35
    v0 = torch.rand(shape, generator=g) * 0.6
    k = torch.sigmoid(torch.randn((), generator=g) * 0.8)
    params = (1 - k, k, torch.tensor(0.75))  # PLIF-style λ = 1 − k, κ = k
    w_s, w_v = torch.randn((T, *shape), generator=g), torch.randn((T, *shape), generator=g)
    return x, v0, params, w_s, w_v


def _run(kernel: str, x, v0, params, spec, w_s, w_v, per_neuron: bool = False):
    """Spikes, potentials and the gradients (x, v_init, λ, κ, V_th) of a weighted sum of both."""
    x = x.clone().requires_grad_()
    v0 = v0.clone().requires_grad_()
    if per_neuron:  # one copy of each scalar per neuron: the terms of its gradient, unsummed
        leaves = [p.detach().expand(x.shape[1:]).clone().requires_grad_() for p in params]
    else:
        leaves = [p.detach().clone().requires_grad_() for p in params]
    s, v = KERNELS.get(kernel)(x, v0, *leaves, spec, True)
    ((s * w_s).sum() + (v * w_v).sum()).backward()
    grads = {"x": x.grad, "v_init": v0.grad, **{n: p.grad for n, p in zip(PARAMS, leaves)}}
    return s.detach(), v.detach(), grads


def _assert_matches_oracle(kernel: str, x, v0, params, spec, w_s, w_v) -> None:
    impl = KERNELS.get(kernel)
    reason = impl.unavailable(x, spec)
    if reason is not None:
        pytest.skip(reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a fallback to the oracle is caught just below
        s, v, g = _run(kernel, x, v0, params, spec, w_s, w_v)
    reason = impl.unavailable(x, spec)  # e.g. the cpu build failed on first use (the call fell back)
    if reason is not None:
        pytest.skip(reason)
    s_ref, v_ref, g_ref = _run(ORACLE, x, v0, params, spec, w_s, w_v)
    assert 0 < s_ref.mean() < 1, "the data should fire sometimes, not always"
    assert torch.equal(s, s_ref), f"spikes differ at {(s != s_ref).sum().item()} elements"
    assert torch.equal(v, v_ref), f"potentials differ by up to {(v - v_ref).abs().max().item()}"
    _, _, terms = _run(ORACLE, x, v0, params, spec, w_s, w_v, per_neuron=True)
    for name, ref in g_ref.items():
        assert g[name] is not None, name
        scale = terms[name].abs().sum() if name in PARAMS else ref.abs().max()
        torch.testing.assert_close(g[name], ref, rtol=1e-5, atol=1e-6 * max(scale.item(), 1e-30),
                                   msg=lambda m, name=name: f"{kernel} × {spec.surrogate!r}: grad {name}: {m}")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"reset{c[0]}-{'det' if c[1] else 'nodet'}"
                         f"-{'strict' if c[2] else 'ge'}-a{c[3]}-r{c[4]}")
@pytest.mark.parametrize("sg_name", SURROGATE_NAMES)
@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_kernel_matches_oracle_for_every_surrogate(kernel, sg_name, config):
    """Spikes and potentials bit for bit, gradients of x, v_init, λ, κ, V_th equal the oracle's."""
    v_reset, detach, strict, alpha, fire_ratio = config
    sg = SURROGATES.get(sg_name) if alpha is None else SURROGATES.get(sg_name, alpha=alpha)
    spec = NeuronSpec(v_reset=v_reset, detach_reset=detach, strict=strict, surrogate=sg, fire_ratio=fire_ratio)
    seed = 17 * CONFIGS.index(config) + SURROGATE_NAMES.index(sg_name)
    x, v0, params, w_s, w_v = _inputs(seed)
    _assert_matches_oracle(kernel, x, v0, params, spec, w_s, w_v)


class _FreeATan(ATan):
    """The atan formula with constants unrelated to alpha: a kernel that derived its own from alpha would differ."""

    def kernel_constants(self) -> tuple[float, float]:
        return 0.3, 5.0


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_kernels_take_the_constants_from_the_surrogate(kernel):
    """The fused kernels evaluate σ' with ``kernel_constants()`` as given, never recomputed from ``alpha``."""
    spec = NeuronSpec(v_reset=None, detach_reset=False, strict=False, surrogate=_FreeATan())
    x, v0, params, w_s, w_v = _inputs(99)
    _assert_matches_oracle(kernel, x, v0, params, spec, w_s, w_v)


@pytest.mark.parametrize("sg_name", SURROGATE_NAMES)
def test_every_surrogate_has_a_kernel_formula(sg_name):
    """Each registered surrogate names a formula of KERNEL_DERIVATIVES and gives its two constants as floats."""
    sg = SURROGATES.get(sg_name)
    assert sg.kernel_id in KERNEL_DERIVATIVES
    consts = sg.kernel_constants()
    assert len(consts) == 2 and all(isinstance(c, float) for c in consts)


class _NoKernel(Surrogate):
    name, kernel_id = "nokernel", 99

    def derivative(self, x):
        return torch.ones_like(x)


@pytest.mark.parametrize("kernel", [k for k in KERNEL_NAMES if isinstance(KERNELS.get(k), FusedKernel)])
def test_a_surrogate_without_kernel_formula_is_unavailable(kernel):
    """A kernel_id the fused kernels do not implement is refused with a reason (``auto`` falls back to ``torch``)."""
    spec = NeuronSpec(v_reset=0.0, detach_reset=False, strict=False, surrogate=_NoKernel())
    x = torch.zeros(2, 3)
    reason = KERNELS.get(kernel).unavailable(x, spec)
    assert reason is not None
    assert KERNELS.get("auto").choose(x, spec).name == ORACLE
