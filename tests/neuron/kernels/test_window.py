"""``Kernel.fire_window`` (the one-step methods' no-grad window pass) and ``unpack_bits_triton``.

Oracles: (1) the ``torch`` kernel's ``fire_window`` over the same windows, (2) one call of the ``torch``
kernel over all T steps of X' (X after the affine, computed here in torch ops). Spikes and the last V must be
identical (same operations in the same order, no FMA); the weighted sums within rtol 1e-5 (float32) / 1e-12
(float64) of Σ w[t]·X'[t] and Σ w[t]·S[t] computed in float64. Bits are read back by their definition
(value j of a step is bit j mod 8 of byte j div 8) and the bits past N must be 0.

The fused ``cpu`` kernel is the C++ extension (skipped where it cannot be built); ``triton`` runs under the
interpreter (``TRITON_INTERPRET=1``, set as ``test_triton.py`` does), on float32 only.
"""
import os

os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton's jit machinery

from itertools import product  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from spikeforge.neuron import surrogate  # noqa: E402
from spikeforge.neuron.kernels import KERNELS, WindowState  # noqa: E402
from spikeforge.neuron.kernels.base import NeuronSpec  # noqa: E402

T = 7
B, C, INNER = 2, 3, 5  # N = 30: not a multiple of 8
NEURONS = {"lif": (0.75, 1.0), "if": (1.0, 1.0), "lif_gain": (0.6, 0.7)}  # (λ, κ)
RESETS = {"hard0": 0.0, "hard-0.2": -0.2, "soft": None}
FIRING = {"ge": (False, 1.0), "strict": (True, 1.0), "r0.4": (False, 0.4)}  # (strict, fire_ratio)
WINDOWS = {"n1": 1, "n3": 3, "nT": T}


@pytest.fixture(scope="module")
def triton_ok():
    pytest.importorskip("triton")


def make_case(neuron: str, reset: str, firing: str, affine: bool, dtype: torch.dtype, seed: int = 0,
              batch: int = B, inner: int = INNER, steps: int = T, x_dtype: torch.dtype | None = None) -> dict:
    """Input, parameters and spec of one case; x' = x·scale[c] + shift[c] (the oracle's input) alongside."""
    g = torch.Generator().manual_seed(seed)
    decay, gain = NEURONS[neuron]
    strict, ratio = FIRING[firing]
    spec = NeuronSpec(v_reset=RESETS[reset], detach_reset=True, strict=strict, surrogate=surrogate.get("atan"),
                      fire_ratio=ratio)
    vth = 0.9 * ratio ** 0.5  # keeps the firing rate moderate at r = 0.4
    x = (torch.randn(steps, batch * C * inner, generator=g, dtype=torch.float64) * 0.7 + 0.45).to(x_dtype or dtype)
    weights = (torch.rand(steps, generator=g, dtype=torch.float64) * 2 - 0.5).to(dtype)
    params = [torch.tensor(p, dtype=dtype) for p in (decay, gain)]
    params.append(torch.tensor(vth, dtype=dtype, requires_grad=True))  # a parameter: read, never differentiated
    xc = x.to(dtype)
    aff = None
    if affine:
        scale = (torch.randn(C, generator=g, dtype=torch.float64) * 0.3 + 1.0).to(dtype)
        shift = (torch.randn(C, generator=g, dtype=torch.float64) * 0.2).to(dtype)
        aff = (scale, shift, inner)
        xc = (xc.view(steps, batch, C, inner) * scale[:, None] + shift[:, None]).view(steps, -1)
    return dict(x=x, x_eff=xc, weights=weights, params=params, spec=spec, affine=aff, dtype=dtype)


def run_windows(kernel: str, case: dict, n: int) -> tuple[WindowState, torch.Tensor]:
    """``fire_window`` of ``kernel`` over windows of n steps (the last one shorter); (final state, bits [T, M])."""
    x, dtype = case["x"], case["dtype"]
    steps, numel = x.shape
    state = WindowState.start(numel, case["spec"].v_rest, dtype, x.device)
    # garbage: every byte must be written
    bits = torch.full((steps, -(-numel // 8)), 0xA5, dtype=torch.uint8, device=x.device)
    for t0 in range(0, steps, n):
        t1 = min(t0 + n, steps)
        KERNELS.get(kernel).fire_window(x[t0:t1], state, case["weights"][t0:t1], *case["params"], case["spec"],
                                        bits[t0:t1], case["affine"])
    return state, bits


def unpack_by_definition(bits: torch.Tensor, numel: int) -> torch.Tensor:
    """[k, m] uint8 → [k, 8m] 0/1 int64: value j is bit j mod 8 of byte j div 8 (independent of the kernels)."""
    j = torch.arange(bits.shape[1] * 8)
    return (bits.long()[:, j // 8] >> (j % 8)) & 1


def assert_matches_oracles(kernel: str, case: dict, n: int, run=run_windows) -> None:
    """``run(kernel, case, n)`` (CPU results) against both oracles."""
    state, bits = run(kernel, case, n)
    dtype, spec, x_eff, w = case["dtype"], case["spec"], case["x_eff"], case["weights"]
    numel = x_eff.shape[1]
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    # (1) one call of the torch kernel over all of T
    spikes, v_seq = KERNELS.get("torch")(x_eff, None, *[p.detach() for p in case["params"]], spec, True)
    assert 0 < spikes.mean() < 1
    got = unpack_by_definition(bits, numel)
    assert torch.equal(got[:, :numel], spikes.long()), "spikes differ from the torch kernel over all of T"
    assert not got[:, numel:].any(), "bits past N must be 0"
    assert state.v.dtype == dtype and torch.equal(state.v, v_seq[-1])
    w64 = w.double()[:, None]
    scale_x = float((w64 * x_eff.double()).abs().sum(0).max())
    torch.testing.assert_close(state.input_sum.double(), (w64 * x_eff.double()).sum(0), rtol=rtol, atol=rtol * scale_x)
    torch.testing.assert_close(state.spike_sum.double(), (w64 * spikes.double()).sum(0), rtol=rtol,
                               atol=rtol * float(w64.abs().sum()))
    # (2) the torch kernel's fire_window over the same windows
    ref_state, ref_bits = run_windows("torch", case, n)
    assert torch.equal(bits, ref_bits) and torch.equal(state.v, ref_state.v)
    torch.testing.assert_close(state.input_sum, ref_state.input_sum, rtol=rtol, atol=rtol * scale_x)
    torch.testing.assert_close(state.spike_sum, ref_state.spike_sum, rtol=rtol, atol=rtol * float(w64.abs().sum()))


CASES = list(product(NEURONS, RESETS, FIRING, [False, True]))


def _id(c) -> str:
    return "-".join([c[0], c[1], c[2], "affine" if c[3] else "plain"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("c", CASES, ids=_id)
def test_cpu_fire_window_matches_torch(cpu_built, c, dtype):
    case = make_case(*c, dtype=dtype, seed=CASES.index(c))
    for n in WINDOWS.values():
        assert_matches_oracles("cpu", case, n)


@pytest.mark.parametrize("c", CASES, ids=_id)
def test_triton_fire_window_matches_torch(triton_ok, c):
    case = make_case(*c, dtype=torch.float32, seed=CASES.index(c))
    for n in WINDOWS.values():
        assert_matches_oracles("triton", case, n)


def test_torch_fire_window_matches_one_call():
    """The oracle itself, over windows, equals one call of the torch kernel (float64 and float32)."""
    for dtype in (torch.float32, torch.float64):
        case = make_case("lif", "soft", "r0.4", True, dtype=dtype, seed=3)
        for n in WINDOWS.values():
            assert_matches_oracles("torch", case, n)


@pytest.mark.parametrize("firing", list(FIRING))
def test_cpu_large_layer_spans_threads_and_blocks(cpu_built, firing):
    """N = 2·3·2001 (odd): several tasks (each owning whole bytes) and several 1024-neuron blocks per task."""
    case = make_case("lif", "hard-0.2", firing, True, dtype=torch.float32, seed=11, inner=2001)
    for n in (3, T):
        assert_matches_oracles("cpu", case, n)


@pytest.mark.parametrize("kernel", ["cpu", "triton"])
def test_bf16_input_computed_in_float32(cpu_built, triton_ok, kernel):
    """bfloat16 x is computed in float32: the same result as its exact float32 copy."""
    case = make_case("lif", "hard0", "ge", True, dtype=torch.float32, seed=5, x_dtype=torch.bfloat16)
    ref = dict(case, x=case["x"].float())
    (state, bits), (ref_state, ref_bits) = run_windows(kernel, case, 3), run_windows("torch", ref, 3)
    assert state.v.dtype == torch.float32 and torch.equal(bits, ref_bits) and torch.equal(state.v, ref_state.v)
    torch.testing.assert_close(state.input_sum, ref_state.input_sum, rtol=1e-5, atol=1e-5)


def test_auto_dispatches_and_falls_back(cpu_built):
    """auto runs cpu on CPU tensors; a plain-callable surrogate goes to the torch loop (cpu refuses it)."""
    case = make_case("lif", "soft", "ge", False, dtype=torch.float32)
    auto, ref = run_windows("auto", case, 3), run_windows("cpu", case, 3)
    assert torch.equal(auto[1], ref[1]) and torch.equal(auto[0].v, ref[0].v)
    plain = NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=lambda u: (u >= 0).to(u.dtype))
    case = dict(case, spec=plain)
    with pytest.raises(ValueError, match="registered surrogate"):
        run_windows("cpu", case, 3)
    assert torch.equal(run_windows("auto", case, 3)[1], run_windows("torch", case, 3)[1])


def test_float64_not_for_triton(triton_ok):
    case = make_case("lif", "soft", "ge", False, dtype=torch.float64)
    with pytest.raises(ValueError, match="float64"):
        run_windows("triton", case, 3)


@pytest.mark.parametrize("kernel", ["torch", "cpu"])
def test_rejects_mismatched_arguments(cpu_built, kernel):
    x = torch.randn(3, 30)
    spec = NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))
    one = torch.tensor(1.0)
    state = WindowState.start(30, 0.0, torch.float32, "cpu")
    fire = KERNELS.get(kernel).fire_window
    with pytest.raises(ValueError, match=r"bits must be \[n, ceil\(N/8\)\] = \[3, 4\]"):
        fire(x, state, torch.ones(3), one, one, one, spec, torch.zeros(3, 3, dtype=torch.uint8))
    with pytest.raises(TypeError, match="state.v must be in the compute dtype"):
        fire(x, WindowState.start(30, 0.0, torch.float64, "cpu"), torch.ones(3), one, one, one, spec,
             torch.zeros(3, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="N divisible by C·inner"):
        fire(x, state, torch.ones(3), one, one, one, spec, torch.zeros(3, 4, dtype=torch.uint8),
             (torch.ones(4), torch.zeros(4), 2))


class _OpLog(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kernel", ["cpu", "triton"])
def test_fused_window_has_no_host_sync_nor_per_step_ops(cpu_built, triton_ok, kernel):
    """No ``item()`` (``_local_scalar_dense``: a host sync on CUDA), and the torch ops around the one launch do
    not grow with the window length (no per-step launches)."""
    counts = []
    for n in (1, T):
        case = make_case("lif", "hard0", "r0.4", True, dtype=torch.float32)
        state = WindowState.start(30, 0.0, torch.float32, "cpu")
        bits = torch.zeros(n, 4, dtype=torch.uint8)
        with _OpLog() as log:
            KERNELS.get(kernel).fire_window(case["x"][:n], state, case["weights"][:n], *case["params"],
                                            case["spec"], bits, case["affine"])
        assert not [op for op in log.ops if "_local_scalar_dense" in op or "item" in op], log.ops
        counts.append(len(log.ops))
    assert counts[0] == counts[1], counts


# ------------------------------------------------------------------------------------------------ unpack

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("n", [128, 125, 121])
def test_unpack_all_byte_patterns(triton_ok, dtype, n):
    """All 256 bytes as [16, 16]; n = 128 (every bit), 125 and 121 (a partial last byte)."""
    from spikeforge.neuron.kernels.triton_kernel import unpack_bits_triton

    data = torch.arange(256, dtype=torch.uint8).reshape(16, 16)
    out = unpack_bits_triton(data, n, dtype)
    assert out.dtype == dtype and out.shape == (16, n)
    assert torch.equal(out, unpack_by_definition(data, n)[:, :n].to(dtype))


def test_unpack_row_slice_and_empty(triton_ok):
    """Rows of a larger tensor (the layer's [T, M] bits), and empty outputs."""
    from spikeforge.neuron.kernels.triton_kernel import unpack_bits_triton

    data = torch.randint(0, 256, (9, 40), dtype=torch.uint8)[:, 3:20]  # rows 40 bytes apart
    assert torch.equal(unpack_bits_triton(data, 130), unpack_by_definition(data, 130)[:, :130].float())
    assert unpack_bits_triton(data[:0], 130).shape == (0, 130)
    assert unpack_bits_triton(data, 0).shape == (9, 0)
    with pytest.raises(ValueError, match="n must be in"):
        unpack_bits_triton(data, 8 * 17 + 1)


def test_unpack_unusable_without_interpreter(triton_ok, monkeypatch):
    from spikeforge.neuron.kernels.triton_kernel import unpack_bits_triton

    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="runs on cuda tensors"):
        unpack_bits_triton(torch.zeros(2, 2, dtype=torch.uint8), 16)
