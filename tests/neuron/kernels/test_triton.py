"""The ``triton`` kernel against the ``torch`` oracle, run on CPU by Triton's interpreter.

``TRITON_INTERPRET=1`` is set before anything here imports triton. No skip is needed when triton was
imported earlier without it (``torch._dynamo`` imports it, and other test files import the package
first): the kernel reads the variable at each call, wraps its kernels for the interpreter itself and
uses no @jit helper of triton.language (``test_triton_imported_before_interpreter_was_set``).

Oracle: spikes and potentials identical (``torch.equal``: same fp32 operations in the same order,
no FMA); gradients of x, v_init, λ, κ, V_th within rtol 1e-5, atol 1e-6·max|ref| (fp32, summation
order differs). A scalar gradient is a sum over T·N terms that may cancel to ~0 (T = 1 from rest:
∂L/∂λ = Σ ∂L/∂H·(v_rest − v_rest) is exactly 0 where the fp32 oracle returns 4e-8), so where
that tolerance fails, the λ, κ, V_th gradients must instead be no farther from the float64 oracle
than the fp32 oracle is (×2). Shapes are small (N <= 300, T <= 32): the interpreter runs each op in numpy.
"""
import os

os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton's jit machinery

import dataclasses  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from itertools import product  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton")

from spikeforge.neuron import LIFNode, PLIFNode, surrogate  # noqa: E402
from spikeforge.neuron.kernels import KERNELS  # noqa: E402
from spikeforge.neuron.kernels.base import NeuronSpec  # noqa: E402

SURROGATES = ["atan", "sigmoid", "rect", "triangle", "const"]
SHAPES = [(1,), (5,), (2, 3), (128,), (129,), (4, 7, 3), (2, 150), (300,), (3, 10, 10)]


def _cases():
    """80 cases: every surrogate × reset × detach × strict, twice, with T spread evenly over each
    surrogate and reset (a Latin arrangement); v_init, return_v, α, v_reset and the seed drawn (seeded)."""
    rng = random.Random(20261125)
    cases = []
    combos = product(enumerate(SURROGATES), [True, False], [True, False], [False, True], [0, 1])
    for i, ((k, sg), hard, detach, strict, rep) in enumerate(combos):
        j = 4 * hard + 2 * detach + strict
        cases.append(dict(
            sg=sg, hard=hard, detach=detach, strict=strict,
            T=(1, 2, 7, 32)[(j + j // 4 + k + 2 * rep) % 4], shape=rng.choice(SHAPES),
            v_init=rng.random() < 0.5, return_v=rng.random() < 0.5,
            learn=("none", "all", "no_gain")[i % 3],  # no_gain: κ fixed (x not saved) but λ, V_th learnt
            alpha=None if sg == "const" or rng.random() < 0.5 else rng.choice([0.5, 1.7, 3.0]),
            v_reset=rng.choice([0.0, -0.3, 0.2]) if hard else None,
            seed=rng.randrange(2**31),
        ))
    return cases


CASES = _cases()


def _case_id(c):
    return (f"{c['sg']}-{'hard' if c['hard'] else 'soft'}-{'det' if c['detach'] else 'nodet'}-"
            f"{'strict' if c['strict'] else 'ge'}-T{c['T']}-N{torch.Size(c['shape']).numel()}-"
            f"{'v0' if c['v_init'] else 'rest'}-{'v' if c['return_v'] else 's'}-{c['learn']}")


def _inputs(c):
    g = torch.Generator().manual_seed(c["seed"])
    T, shape = c["T"], c["shape"]
    vth = 1.0 if c["seed"] % 2 else 0.7
    x = (torch.randn((T, *shape), generator=g) * 0.7 + 0.35) * vth
    v0 = torch.rand(shape, generator=g) * vth if c["v_init"] else None
    decay = 0.5 + 0.5 * torch.rand((), generator=g).item()
    gain = 0.5 + torch.rand((), generator=g).item()
    w_s = torch.randn((T, *shape), generator=g)
    w_v = torch.randn((T, *shape), generator=g)
    sg = surrogate.get(c["sg"]) if c["alpha"] is None else surrogate.SURROGATES.get(c["sg"], alpha=c["alpha"])
    spec = NeuronSpec(v_reset=c["v_reset"], detach_reset=c["detach"], strict=c["strict"], surrogate=sg)
    return x, v0, (decay, gain, vth), spec, w_s, w_v


def _run(kernel, c, x, v0, params, spec, w_s, w_v):
    """Forward + backward of a weighted sum of spikes (and potentials) on ``kernel`` (a name or a kernel);
    outputs and input gradients."""
    x = x.clone().requires_grad_()
    v0 = None if v0 is None else v0.clone().requires_grad_()
    learn = {"none": (False, False, False), "all": (True, True, True), "no_gain": (True, False, True)}[c["learn"]]
    ps = [torch.tensor(p).to(x.dtype).requires_grad_(r) for p, r in zip(params, learn)]  # fp32 values
    s, v = (KERNELS.get(kernel) if isinstance(kernel, str) else kernel)(x, v0, *ps, spec, c["return_v"])
    loss = (s * w_s).sum() + ((v * w_v).sum() if c["return_v"] else 0)
    loss.backward()
    grads = {"x": x.grad, "v_init": None if v0 is None else v0.grad}
    grads.update({n: p.grad for n, p, r in zip(("decay", "gain", "vth"), ps, learn) if r})
    return s, v, grads


def _near_threshold(x, v0, params, spec):
    """How many H[t] lie within 1e-6 of V_th (recomputed like the reference, fp32, same order)."""
    decay, gain, vth = (torch.tensor(p) for p in params)
    with torch.no_grad():
        _, v = KERNELS.get("torch")(x, v0, decay, gain, vth, spec, True)
        prev = torch.cat([(torch.full_like(x[0], spec.v_rest) if v0 is None else v0)[None], v[:-1]])
        h = decay * prev + gain * x + (1 - decay) * spec.v_rest
    return int(((h - vth).abs() < 1e-6).sum())


def _assert_grads_close(got, ref, ref64=None):
    """rtol 1e-5, atol 1e-6·max|ref|; for a scalar (λ, κ, V_th) that misses it, |got − ref64| <= 2·|ref − ref64|."""
    assert got.keys() == ref.keys()
    for name, r in ref.items():
        if r is None:
            assert got[name] is None, name
            continue
        atol = 1e-6 * max(r.abs().max().item(), 1e-30)
        try:
            torch.testing.assert_close(got[name], r, rtol=1e-5, atol=atol, msg=lambda m: f"grad {name}: {m}")
        except AssertionError:
            if ref64 is None or r.dim() != 0:
                raise
            exact = ref64[name].item()
            err_got, err_ref = abs(got[name].item() - exact), abs(r.item() - exact)
            assert err_got <= 2 * err_ref, (
                f"grad {name}: triton {got[name].item():.9g}, fp32 oracle {r.item():.9g}, fp64 oracle {exact:.9g}")


def assert_matches_reference(c, inputs, s, v, g, near: int = 0) -> None:
    """A triton run's (spikes, potentials, gradients) against the ``torch`` oracle on the same ``inputs``:
    spikes and potentials bit for bit, gradients close (scalars against the float64 oracle where needed)."""
    x, v0, params, spec, w_s, w_v = inputs
    s_ref, v_ref, g_ref = _run("torch", c, x, v0, params, spec, w_s, w_v)
    d = torch.float64
    s64, _, g64 = _run("torch", c, x.to(d), None if v0 is None else v0.to(d), params, spec, w_s.to(d), w_v.to(d))
    assert s.dtype == x.dtype and s.shape == x.shape
    assert torch.equal(s, s_ref), f"spikes differ at {(s != s_ref).sum().item()} elements ({near} with |H - V_th| < 1e-6)"
    if c["return_v"]:
        assert torch.equal(v, v_ref), f"v_seq differs by up to {(v - v_ref).abs().max().item()}"
    else:
        assert v is None and v_ref is None
    _assert_grads_close(g, g_ref, g64 if torch.equal(s64.float(), s_ref) else None)


@pytest.mark.parametrize("c", CASES, ids=_case_id)
def test_triton_matches_torch(c):
    """Spikes, potentials (bit for bit) and all gradients equal the ``torch`` kernel's."""
    inputs = _inputs(c)
    x, v0, params, spec, w_s, w_v = inputs
    assert KERNELS.get("triton").unavailable(x, spec) is None
    near = _near_threshold(x, v0, params, spec)
    assert_matches_reference(c, inputs, *_run("triton", c, *inputs), near=near)
    # The data should not rely on ties for the bit-for-bit claim (ties are tested on purpose below).
    assert near == 0, f"{near} elements with |H - V_th| < 1e-6 in the random data; change the seed"


@pytest.mark.parametrize("c", CASES[::6], ids=_case_id)
def test_triton_fire_ratio_matches_torch(c):
    """DSR's alpha (fire at r·V_th, reset by V_th): spikes, potentials and gradients equal the reference's."""
    x, v0, params, spec, w_s, w_v = _inputs(c)
    spec = dataclasses.replace(spec, fire_ratio=0.5)
    s_ref, v_ref, g_ref = _run("torch", c, x, v0, params, spec, w_s, w_v)
    s, v, g = _run("triton", c, x, v0, params, spec, w_s, w_v)
    assert torch.equal(s, s_ref) and 0 < s_ref.mean() < 1
    if c["return_v"]:
        assert torch.equal(v, v_ref)
    _assert_grads_close(g, g_ref)


@pytest.mark.parametrize("hard", [True, False])
@pytest.mark.parametrize("strict", [False, True])
def test_exact_ties_like_torch(strict, hard):
    """H == V_th exactly (0.5 + 0.5 with λ = κ = 1) fires unless ``strict``, forward and in backward's recomputation."""
    x = torch.tensor([[0.5, 0.25, 1.0, 0.5], [0.5, 0.75, 0.0, 0.5], [0.0, 0.5, 1.0, 0.25], [0.5, 0.0, 0.0, 0.25]])
    w_s, w_v = torch.linspace(-1, 1, 16).reshape(4, 4), torch.linspace(0.5, -0.7, 16).reshape(4, 4)
    spec = NeuronSpec(v_reset=0.0 if hard else None, detach_reset=False, strict=strict, surrogate=surrogate.get("atan"))
    out = {}
    for kernel in ("torch", "triton"):
        xx = x.clone().requires_grad_()
        ps = [torch.tensor(1.0, requires_grad=True) for _ in range(3)]
        s, v = KERNELS.get(kernel)(xx, None, *ps, spec, True)
        ((s * w_s).sum() + (v * w_v).sum()).backward()
        out[kernel] = (s, v, {"x": xx.grad, "decay": ps[0].grad, "gain": ps[1].grad, "vth": ps[2].grad})
    (s_ref, v_ref, g_ref), (s, v, g) = out["torch"], out["triton"]
    assert torch.equal(s, s_ref) and torch.equal(v, v_ref)
    assert s[1, 0].item() == (0.0 if strict else 1.0)
    _assert_grads_close(g, g_ref)


def test_lif_node_backend_triton():
    """LIFNode(backend="triton") equals backend="torch": outputs and input / v_init gradients."""
    torch.manual_seed(1)
    x = torch.randn(6, 3, 5, 7) * 0.8 + 0.3
    v_init = torch.rand(3, 5, 7) * 0.5
    w = torch.randn(6, 3, 5, 7)
    out = {}
    for backend in ("torch", "triton"):
        node = LIFNode(tau=2.0, v_reset=None, detach_reset=False, surrogate_function="sigmoid",
                       return_v=True, backend=backend)
        xx, vv = x.clone().requires_grad_(), v_init.clone().requires_grad_()
        s, v = node(xx, vv)
        ((s * w).sum() + v.square().sum()).backward()
        out[backend] = (s, v, xx.grad, vv.grad)
        s2, v2 = node(xx, vv)  # no state between calls
        assert torch.equal(s2, s) and torch.equal(v2, v)
    (s_ref, v_ref, gx_ref, gv_ref), (s, v, gx, gv) = out["torch"], out["triton"]
    assert torch.equal(s, s_ref) and torch.equal(v, v_ref)
    _assert_grads_close({"x": gx, "v_init": gv}, {"x": gx_ref, "v_init": gv_ref})


@pytest.mark.parametrize("decay_input", [True, False])
def test_plif_node_backend_triton(decay_input):
    """PLIFNode (learnable w) with a learnable threshold: w and V_th gradients equal the oracle's."""
    torch.manual_seed(2)
    x = torch.randn(8, 4, 30) * 0.8 + 0.4
    w = torch.randn(8, 4, 30)
    out = {}
    for backend in ("torch", "triton"):
        node = PLIFNode(init_tau=2.5, decay_input=decay_input, learnable_threshold=True, strict=True,
                        surrogate_function="triangle", backend=backend)
        xx = x.clone().requires_grad_()
        s = node(xx)
        (s * w).sum().backward()
        out[backend] = (s, {"x": xx.grad, "w": node.w.grad, "vth": node.v_threshold.grad})
    assert torch.equal(out["triton"][0], out["torch"][0])
    _assert_grads_close(out["triton"][1], out["torch"][1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("v_reset,return_v,learn", [(0.0, False, False), (None, True, True), (-0.3, True, False)])
def test_half_input_loaded_and_stored_as_is(dtype, v_reset, return_v, learn):
    check_half_io(dtype, v_reset, return_v, learn, torch.device("cpu"))


def check_half_io(dtype, v_reset, return_v, learn, device):
    """fp16/bf16 X, S, v_seq, ∂L/∂S and ∂L/∂X are loaded and stored in their dtype (no conversion passes) and
    equal, bit for bit, what the fp32 kernel gives on the upcast input and gradients, rounded to the dtype."""
    torch.manual_seed(3)
    x = (torch.randn(5, 3, 40) * 0.8 + 0.4).to(device=device, dtype=dtype)
    v0 = (torch.rand(3, 40) * 0.5).to(device=device, dtype=dtype) if learn else None
    w_s = torch.randn(5, 3, 40).to(device=device, dtype=dtype)
    w_v = torch.randn(5, 3, 40).to(device=device, dtype=dtype)
    spec = NeuronSpec(v_reset=v_reset, detach_reset=False, strict=False, surrogate=surrogate.get("atan"))

    def run(compute):
        xi = x.detach().to(compute, copy=True).requires_grad_()
        vi = None if v0 is None else v0.to(compute, copy=True).requires_grad_()
        ps = [torch.tensor(p, dtype=compute, device=device).requires_grad_(learn) for p in (0.75, 0.625, 1.0)]
        s, v = KERNELS.get("triton")(xi, vi, *ps, spec, return_v)
        torch.autograd.backward([s, v] if return_v else [s], [w_s.to(compute), w_v.to(compute)][:1 + return_v])
        grads = [xi.grad, None if vi is None else vi.grad, *(p.grad for p in ps)]
        return s.detach(), None if v is None else v.detach(), grads

    s, v, grads = run(dtype)
    s32, v32, grads32 = run(torch.float32)
    assert s.dtype == dtype and torch.equal(s, s32.to(dtype))
    if return_v:
        assert v.dtype == dtype and torch.equal(v, v32.to(dtype))
    assert grads[0].dtype == dtype and torch.equal(grads[0], grads32[0].to(dtype))
    for got, ref in zip(grads[1:], grads32[1:]):  # v_init, λ, κ, V_th: summed in fp32, returned in the dtype
        assert (got is None) == (ref is None) and (got is None or torch.equal(got, ref.to(dtype)))


def test_half_gradient_through_v_seq_only():
    """A loss on v_seq alone (no gradient arrives for S): the kernel still reads and writes fp16, and ∂L/∂X equals
    the fp32 kernel's rounded."""
    from spikeforge.bench.dispatch import KernelTraffic

    spec = NeuronSpec(v_reset=None, detach_reset=False, strict=False, surrogate=surrogate.get("atan"))
    x = (torch.rand(4, 30) * 1.5).half()
    grads = {}
    for dtype in (torch.float16, torch.float32):
        xi = x.to(dtype, copy=True).requires_grad_()
        with KernelTraffic() as traffic:
            _, v = KERNELS.get("triton")(xi, None, *[torch.tensor(p, dtype=dtype) for p in (0.5, 1.0, 1.0)], spec, True)
            v.backward(torch.ones_like(v))
        grads[dtype] = (xi.grad, traffic.total)
    (g16, bytes16), (g32, bytes32) = grads[torch.float16], grads[torch.float32]
    assert g16.dtype == torch.float16 and torch.equal(g16, g32.half())
    # x, s, v | ∂S (zeros), ∂V, x (H recomputed), ∂X: 2 bytes each instead of 4
    assert bytes16 == bytes32 - 2 * 7 * x.numel()


@pytest.mark.parametrize("T,per_step", [(6, 10), (20, 16)])
def test_half_traffic(T, per_step):
    """Under AMP a layer moves 2-byte X, S, ∂L/∂S, ∂L/∂X: 10 bytes per element and step where backward recomputes
    H from X (T <= RECOMPUTE_MAX_T: X read twice), 16 where H (4 bytes) is stored and read back."""
    from spikeforge.bench.dispatch import KernelTraffic
    from spikeforge.neuron.kernels import triton_kernel

    assert (T <= triton_kernel.RECOMPUTE_MAX_T) == (per_step == 10)
    x = torch.rand(T, 3, 50).half().requires_grad_()
    node = LIFNode(tau=2.0, backend="triton")
    with KernelTraffic() as traffic:
        node(x).backward(torch.rand(T, 3, 50).half())
    assert traffic.total == per_step * x.numel() + 6 * 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_v0", [True, False])
def test_opcheck_custom_op(dtype, with_v0):
    """The registered op passes torch.library's schema, autograd-registration and fake-tensor checks (the fake
    results' dtypes too: bf16 x gives bf16 spikes and a float32 h; an empty v0 starts at v_rest)."""
    torch.manual_seed(4)
    op = KERNELS.get("triton").op()
    x = torch.randn(3, 20).to(dtype).requires_grad_()
    v0 = torch.rand(20, requires_grad=True) if with_v0 else torch.empty(0)
    args = (x, v0, torch.tensor(0.7, requires_grad=True), torch.tensor(1.0, requires_grad=True),
            torch.tensor(1.0), 0.0, True, False, False, 0, *surrogate.get("atan").kernel_constants(), True, 0.5, False)
    torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    s, h, v = op(*args)
    assert (s.dtype, h.dtype, v.dtype) == (dtype, torch.float32, dtype) and h.numel() == 0  # store_h False
    long = (torch.randn(20, 20).to(dtype).requires_grad_(), *args[1:-1], True)  # T = 20: H stored
    torch.library.opcheck(op, long, test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
    assert op(*long)[1].shape == (20, 20)


def test_unavailable_reasons(monkeypatch):
    """Clear reasons: CPU tensors without the interpreter, float64, a plain callable surrogate."""
    kernel = KERNELS.get("triton")
    spec = NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))
    x = torch.zeros(2, 3)
    assert kernel.unavailable(x, spec) is None  # interpreter on
    monkeypatch.delenv("TRITON_INTERPRET")
    reason = kernel.unavailable(x, spec)
    assert reason is not None and "cuda" in reason and "TRITON_INTERPRET=1" in reason and "cpu" in reason
    with pytest.raises(ValueError, match="runs on cuda tensors"):
        kernel(x, None, *(torch.tensor(1.0) for _ in range(3)), spec)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert kernel.unavailable(x, spec) is not None
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert "float64" in kernel.unavailable(x.double(), spec)
    callable_rule = NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=lambda z: (z >= 0).float())
    assert "registered surrogate" in kernel.unavailable(x, callable_rule)
    # auto never picks triton for CPU tensors, even under the interpreter
    assert KERNELS.get("auto").choose(x, spec).name != "triton"


def _run_python(code, interpret):
    """Run ``code`` in a fresh interpreter (nothing imported or built yet); its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_import_is_lazy_and_survives_missing_triton():
    """Importing the package binds no triton in the kernel module; without triton, a reason instead of a crash."""
    code = (
        "import os, sys\n"
        "sys.modules['triton'] = None  # import triton -> ImportError\n"
        "import torch\n"
        "from spikeforge.neuron.kernels import KERNELS, triton_kernel\n"
        "from spikeforge.neuron.kernels.base import NeuronSpec\n"
        "from spikeforge.neuron import surrogate\n"
        "assert triton_kernel.triton is None and triton_kernel.tl is None\n"
        "spec = NeuronSpec(0.0, True, False, surrogate.get('atan'))\n"
        "os.environ['TRITON_INTERPRET'] = '1'\n"
        "reason = KERNELS.get('triton').unavailable(torch.zeros(2, 3), spec)\n"
        "assert reason is not None and 'triton cannot be imported' in reason, reason\n"
        "assert KERNELS.get('auto').choose(torch.zeros(2, 3), spec).name != 'triton'\n"
        "print('ok')\n"
    )
    assert "ok" in _run_python(code, interpret=False)


def test_triton_imported_before_interpreter_was_set():
    """triton (and triton.language's own @jit helpers) imported without TRITON_INTERPRET, the variable set
    afterwards: the kernel still runs under the interpreter, every surrogate, forward and backward."""
    code = (
        "import os, torch, triton, triton.language\n"
        "os.environ['TRITON_INTERPRET'] = '1'\n"
        "from spikeforge.neuron.kernels import KERNELS\n"
        "from spikeforge.neuron.kernels.base import NeuronSpec\n"
        "from spikeforge.neuron import surrogate\n"
        "torch.manual_seed(0)\n"
        "x = torch.randn(5, 40) * 0.8 + 0.4\n"
        "for name in surrogate.SURROGATES.names():\n"
        "    spec = NeuronSpec(None, False, False, surrogate.get(name))\n"
        "    out = []\n"
        "    for kernel in ('torch', 'triton'):\n"
        "        xx = x.clone().requires_grad_()\n"
        "        vth = torch.tensor(1.0, requires_grad=True)\n"
        "        s, v = KERNELS.get(kernel)(xx, None, torch.tensor(0.8), torch.tensor(1.0), vth, spec, True)\n"
        "        (s.sum() + v.square().sum()).backward()\n"
        "        out.append((s, v, xx.grad, vth.grad))\n"
        "    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1]), name\n"
        "    torch.testing.assert_close(out[1][2], out[0][2], rtol=1e-5, atol=1e-5)\n"
        "    torch.testing.assert_close(out[1][3], out[0][3], rtol=1e-5, atol=1e-5)\n"
        "print('ok')\n"
    )
    assert "ok" in _run_python(code, interpret=False)


def test_torch_compile_fullgraph_first_call():
    """torch.compile(fullgraph=True) works when the first call (import of triton, op registration) is traced."""
    code = (
        "import torch\n"
        "from spikeforge.neuron import PLIFNode\n"
        "torch.manual_seed(0)\n"
        "x = torch.randn(4, 3, 20) + 0.5\n"
        "node = PLIFNode(backend='triton', return_v=True, learnable_threshold=True)\n"
        "ref = PLIFNode(backend='torch', return_v=True, learnable_threshold=True)\n"
        "out = {}\n"
        "for name, f in (('triton', torch.compile(node, backend='aot_eager', fullgraph=True)), ('torch', ref)):\n"
        "    xx = x.clone().requires_grad_()\n"
        "    s, v = f(xx)\n"
        "    (s.sum() + v.square().sum()).backward()\n"
        "    out[name] = (s, v, xx.grad)\n"
        "assert torch.equal(out['triton'][0], out['torch'][0]) and torch.equal(out['triton'][1], out['torch'][1])\n"
        "torch.testing.assert_close(out['triton'][2], out['torch'][2], rtol=1e-5, atol=1e-6)\n"
        "torch.testing.assert_close(node.w.grad, ref.w.grad, rtol=1e-5, atol=1e-6)\n"
        "print('ok')\n"
    )
    assert "ok" in _run_python(code, interpret=True)


@pytest.mark.parametrize("c", [c for c in CASES if c["T"] <= 8][::3], ids=_case_id)
def test_recomputed_h_backward_equals_stored_h_backward(c):
    """For T <= RECOMPUTE_MAX_T the backward recomputes H from X in registers instead of reading a stored H; the
    recomputation is the forward's own arithmetic, so every gradient equals the stored-H backward's bit for bit
    (and the forward then writes no H: fewer bytes written)."""
    from spikeforge.bench.dispatch import KernelTraffic
    from spikeforge.neuron.kernels import triton_kernel

    inputs = _inputs(c)
    results = {}
    for max_t in (0, triton_kernel.RECOMPUTE_MAX_T):
        with KernelTraffic() as traffic:
            results[max_t] = _run(KERNELS.get("triton", recompute_max_t=max_t), c, *inputs)
        results[max_t] += (traffic.written,)
    (s0, v0, g0, written0), (s1, v1, g1, written1) = results[0], results[triton_kernel.RECOMPUTE_MAX_T]
    assert torch.equal(s0, s1) and (v0 is None or torch.equal(v0, v1))
    assert g0.keys() == g1.keys()
    for key in g0:
        assert (g0[key] is None) == (g1[key] is None) and (g0[key] is None or torch.equal(g0[key], g1[key])), key
    assert written1 == written0 - 4 * inputs[0].numel()  # no H written


def test_recompute_max_t_is_checked():
    """The recompute bound is an option of the kernel (no global to patch), within what registers allow; the op
    refuses to skip H where its backward could not recompute it."""
    from spikeforge.neuron.kernels import triton_kernel

    assert KERNELS.get("triton").recompute_max_t == triton_kernel.RECOMPUTE_MAX_T
    assert KERNELS.get("triton", recompute_max_t=0).recompute_max_t == 0
    for bad in (-1, triton_kernel.RECOMPUTE_MAX_T + 1, 2.0):
        with pytest.raises(ValueError, match="recompute_max_t"):
            KERNELS.get("triton", recompute_max_t=bad)
    spec = NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))
    T = triton_kernel.RECOMPUTE_MAX_T + 1
    with pytest.raises(ValueError, match="store_h=False"):
        KERNELS.get("triton").op()(torch.rand(T, 16), torch.empty(0), torch.tensor(0.5), torch.tensor(0.5),
                                   torch.tensor(1.0), 0.0, True, True, False, 0,
                                   *surrogate.get("atan").kernel_constants(), False, 1.0, False)
