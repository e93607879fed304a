"""``fire_window`` and ``unpack_bits_triton`` compiled for and run on a real GPU (not the interpreter), against
the ``torch`` oracle on the CPU, with the same cases and tolerances as ``test_window.py``; and no host
sync inside a window (``torch.cuda.set_sync_debug_mode("error")``). Skipped without CUDA."""
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

pytest.importorskip("triton")

from tests.neuron.kernels import test_window as cases  # noqa: E402  (sets TRITON_INTERPRET=1; unset per test below)


@pytest.fixture(autouse=True)
def compiled_kernels(monkeypatch):
    """Real compilation: the kernel reads TRITON_INTERPRET at each call."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def on_cuda(case: dict) -> dict:
    """The case with every tensor (λ, κ, V_th, the affine included) on the GPU."""
    cuda = torch.device("cuda")
    affine = None if case["affine"] is None else (case["affine"][0].to(cuda), case["affine"][1].to(cuda),
                                                  case["affine"][2])
    return dict(case, x=case["x"].to(cuda), weights=case["weights"].to(cuda), affine=affine,
                params=[p.detach().to(cuda).requires_grad_(p.requires_grad) for p in case["params"]])


def run_on_cuda(kernel: str, case: dict, n: int) -> tuple[cases.WindowState, torch.Tensor]:
    """``cases.run_windows`` with the case on the GPU; the final state and bits back on the CPU."""
    state, bits = cases.run_windows(kernel, on_cuda(case), n)
    return cases.WindowState(state.v.cpu(), state.input_sum.cpu(), state.spike_sum.cpu()), bits.cpu()


@pytest.mark.parametrize("c", cases.CASES, ids=cases._id)
def test_triton_fire_window_on_cuda_matches_torch(c):
    case = cases.make_case(*c, dtype=torch.float32, seed=cases.CASES.index(c))
    for n in cases.WINDOWS.values():
        cases.assert_matches_oracles("triton", case, n, run=run_on_cuda)


def test_large_layer_on_cuda_without_host_sync():
    """Many programs; no host synchronisation inside fire_window (parameters are device tensors)."""
    case = cases.make_case("lif", "hard-0.2", "r0.4", True, dtype=torch.float32, seed=11, inner=4001, steps=9)
    cuda_case = on_cuda(case)
    state = cases.WindowState.start(case["x"].shape[1], case["spec"].v_rest, torch.float32, "cuda")
    bits = torch.zeros(9, -(-case["x"].shape[1] // 8), dtype=torch.uint8, device="cuda")
    fire = cases.KERNELS.get("triton").fire_window
    fire(cuda_case["x"][:1], state, cuda_case["weights"][:1], *cuda_case["params"], case["spec"], bits[:1],
         cuda_case["affine"])  # compile outside the sync check
    torch.cuda.set_sync_debug_mode("error")
    try:
        fire(cuda_case["x"][1:], state, cuda_case["weights"][1:], *cuda_case["params"], case["spec"], bits[1:],
             cuda_case["affine"])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ref_state, ref_bits = cases.run_windows("torch", case, 9)
    assert torch.equal(bits.cpu(), ref_bits) and torch.equal(state.v.cpu(), ref_state.v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("n", [128, 125])
def test_unpack_all_byte_patterns_on_cuda(dtype, n):
    from spikeforge.neuron.kernels.triton_kernel import unpack_bits_triton

    data = torch.arange(256, dtype=torch.uint8).reshape(16, 16)
    out = unpack_bits_triton(data.cuda(), n, dtype)
    assert out.dtype == dtype and torch.equal(out.cpu(), cases.unpack_by_definition(data, n)[:, :n].to(dtype))
