"""The ``triton`` kernel compiled for and run on a real GPU (not the interpreter) against the ``torch``
oracle on the CPU: the 80 cases of ``test_triton.py`` and its fire-ratio cases, same oracle
(spikes and potentials bit for bit, gradients within rtol 1e-5 / atol 1e-6·max|ref|, scalars against
the float64 oracle where that misses). Skipped without CUDA; ``python -m spikeforge.bench.gpu_check``
runs it on a GPU machine."""
import dataclasses

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

pytest.importorskip("triton")

from tests.neuron.kernels import test_triton as cases  # noqa: E402  (sets TRITON_INTERPRET=1; unset per test below)


@pytest.fixture(autouse=True)
def compiled_kernels(monkeypatch):
    """Real compilation: the kernel reads TRITON_INTERPRET at each call."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def _on_gpu(c, x, v0, params, spec, w_s, w_v):
    """``cases._run`` of the triton kernel with every tensor (λ, κ, V_th included) on the GPU; results on the CPU."""
    cuda = torch.device("cuda")
    x = x.to(cuda, copy=True).requires_grad_()
    v0 = None if v0 is None else v0.to(cuda, copy=True).requires_grad_()
    learn = {"none": (False, False, False), "all": (True, True, True), "no_gain": (True, False, True)}[c["learn"]]
    ps = [torch.tensor(p).to(device=cuda, dtype=x.dtype).requires_grad_(r) for p, r in zip(params, learn)]
    s, v = cases.KERNELS.get("triton")(x, v0, *ps, spec, c["return_v"])
    assert s.device.type == "cuda"
    loss = (s * w_s.to(cuda)).sum() + ((v * w_v.to(cuda)).sum() if c["return_v"] else 0)
    loss.backward()
    grads = {"x": x.grad, "v_init": None if v0 is None else v0.grad}
    grads.update({n: p.grad for n, p, r in zip(("decay", "gain", "vth"), ps, learn) if r})
    return s.cpu(), None if v is None else v.cpu(), {k: None if g is None else g.cpu() for k, g in grads.items()}


@pytest.mark.parametrize("c", cases.CASES, ids=cases._case_id)
def test_triton_on_cuda_matches_torch(c):
    inputs = cases._inputs(c)
    assert cases.KERNELS.get("triton").unavailable(inputs[0].cuda(), inputs[3]) is None
    cases.assert_matches_reference(c, inputs, *_on_gpu(c, *inputs))


@pytest.mark.parametrize("c", cases.CASES[::6], ids=cases._case_id)
def test_triton_on_cuda_fire_ratio_matches_torch(c):
    x, v0, params, spec, w_s, w_v = cases._inputs(c)
    spec = dataclasses.replace(spec, fire_ratio=0.5)
    s_ref, v_ref, g_ref = cases._run("torch", c, x, v0, params, spec, w_s, w_v)
    s, v, g = _on_gpu(c, x, v0, params, spec, w_s, w_v)
    assert torch.equal(s, s_ref) and 0 < s_ref.mean() < 1
    if c["return_v"]:
        assert torch.equal(v, v_ref)
    cases._assert_grads_close(g, g_ref)


def test_auto_picks_triton_for_cuda_tensors():
    spec = cases.NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=cases.surrogate.get("atan"))
    assert cases.KERNELS.get("auto").choose(torch.zeros(2, 3, device="cuda"), spec).name == "triton"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("v_reset,return_v,learn", [(0.0, False, False), (None, True, True), (-0.3, True, False)])
def test_half_io_on_cuda(dtype, v_reset, return_v, learn):
    """fp16/bf16 loaded and stored as they are on the GPU: bit-equal to the fp32 kernel's results rounded by torch."""
    cases.check_half_io(dtype, v_reset, return_v, learn, torch.device("cuda"))
