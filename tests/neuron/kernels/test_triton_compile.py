"""The Triton kernels compiled, without a GPU, for the H100/H200's architecture (sm_90), and the A100's (sm_80),
as the GPU launch would.

The interpreter (``test_triton.py``) checks what the kernels compute; it runs them in numpy and never sees
Triton's compiler. Here ``triton.compile`` takes each kernel through the real pipeline (TTIR, TTGIR, LLVM,
PTX, and ptxas, bundled with triton, to a cubin) for ``GPUTarget("cuda", 90, 32)`` (and 80), with the constexpr
flags set both ways, for every load/store dtype the host side passes, with the launch's compile options
(``LAUNCH_OPTIONS``). Checked in the output:
- it compiles (a construct only the interpreter accepts fails here);
- no fused multiply-add in the neuron kernels (``enable_fp_fusion=False``, as launched: the charge
  ``(λ·V + κ·X) + c`` must round like the reference for spikes to agree bit for bit);
- with the launch's alignment hints (16-byte aligned pointers, N a multiple of 16, which the JIT infers
  from the arguments), every global store of the neuron kernels writes a thread's consecutive values in one
  vector access (128-bit ``v4.b32`` for float32; 64-bit ``v2.b32`` for 4 half values) and the ``[T, N]``
  loads are vector loads: the access widths the bandwidth targets assume;
- no register spills (``LOCAL:0`` in ``cuobjdump --dump-resource-usage``, bundled with triton too): a spill
  would add local-memory traffic to every step; and no shared memory in the neuron kernels (``SHARED:0``):
  with half/bf16 I/O and 8 values per thread, Triton moved each step's values between two layouts through it.
"""
import inspect
import os
import re
import subprocess
import tempfile

import pytest

triton = pytest.importorskip("triton")

from spikeforge.neuron.kernels import triton_kernel as tk  # noqa: E402

NVIDIA_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
if not (os.environ.get("TRITON_PTXAS_PATH") or os.access(os.path.join(NVIDIA_BIN, "ptxas"), os.X_OK)):
    pytest.skip(f"no ptxas (neither bundled in {NVIDIA_BIN} nor TRITON_PTXAS_PATH)", allow_module_level=True)

ARCHS = [90, 80]  # H100/H200 (the issue's machine), A100
FLOAT_SCALARS = {"v_rest", "sg_a", "sg_b", "ratio"}
# pointers whose dtype follows the I/O dtype of the call (the rest are float32 unless named here)
IO_POINTERS = {
    "_lif_fwd_kernel": {"x_ptr", "s_ptr", "v_ptr"},
    "_lif_bwd_kernel": {"gs_ptr", "gv_ptr", "x_ptr", "gx_ptr"},
    "_lif_bwd_recompute_kernel": {"gs_ptr", "gv_ptr", "x_ptr", "gx_ptr"},
    "_lif_window_kernel": {"x_ptr"},
    "_unpack_kernel": {"out_ptr"},
}
FIXED_POINTERS = {"bits_ptr": "*u8", "data_ptr": "*u8"}
TYPE_NAMES = {"float32": "*fp32", "float16": "*fp16", "bfloat16": "*bf16", "uint8": "*u8"}


def _flags(fn, value: bool) -> dict:
    return {n: value for n, p in inspect.signature(fn).parameters.items()
            if p.annotation == "tl.constexpr" and n not in ("BLOCK", "SG", "T")}


H200_SMS = 132


def _compile(name: str, io: str, constexprs: dict, aligned: bool, arch: int = 90):
    """(ptx, cubin) of kernel ``name`` for sm_``arch``, in the launch shape of a large layer (2^24 values) on an H200."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    assert tk._import_triton() is None
    fn = getattr(tk, name)
    params = list(inspect.signature(fn).parameters)
    signature = {}
    for p in params:
        if p in constexprs:
            signature[p] = "constexpr"
        elif p.endswith("_ptr"):
            signature[p] = FIXED_POINTERS.get(p, TYPE_NAMES[io] if p in IO_POINTERS[name] else "*fp32")
        else:
            signature[p] = "fp32" if p in FLOAT_SCALARS else "i32"
    attrs = {}
    if aligned:  # what the JIT infers from 16-byte aligned tensors and sizes that are multiples of 16
        attrs = {(params.index(p),): [["tt.divisibility", 16]] for p in params
                 if signature[p].startswith("*") or p in ("N", "total", "n", "bits_stride", "data_stride")}
    src = ASTSource(fn=tk._kernel(fn, interpret=False), signature=signature,
                    constexprs={(params.index(k),): v for k, v in constexprs.items()}, attrs=attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options={"num_warps": constexprs["BLOCK"] // (32 * _per_thread(name, io)),
                                     **tk.LAUNCH_OPTIONS})
    return kernel.asm["ptx"], kernel.asm["cubin"]


def _per_thread(name: str, io: str) -> int:
    """Values per thread as launched: the neuron kernels by their I/O dtype, the window and unpack kernels 8."""
    import torch

    if name == "_lif_bwd_recompute_kernel":
        return 4  # as _backward launches it: T recomputed H per value held in registers
    return tk.values_per_thread(getattr(torch, io)) if name in ("_lif_fwd_kernel", "_lif_bwd_kernel") else 8


def _block(name: str, io: str) -> int:
    return tk.block_shape(1 << 24, H200_SMS, _per_thread(name, io))[0]


def _resources(cubin: bytes) -> dict[str, int]:
    """``{"REG": .., "LOCAL": .., "SHARED": .., ...}`` of the cubin's kernel (skips where cuobjdump is missing)."""
    tool = os.path.join(NVIDIA_BIN, "cuobjdump")
    if not os.access(tool, os.X_OK):
        pytest.skip(f"no cuobjdump at {tool}")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([tool, "--dump-resource-usage", f.name], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in re.findall(r"\b([A-Z]+(?:\[\d\])?):(\d+)", out)}


def _accesses(ptx: str) -> set[str]:
    return set(re.findall(r"\b(?:ld|st)\.global[.\w]*", ptx))


NEURON_CASES = [
    ("_lif_fwd_kernel", io, flags, {}) for io in ("float32", "float16", "bfloat16") for flags in (True, False)
] + [
    ("_lif_bwd_kernel", io, sg % 2 == 0, {"SG": sg}) for sg, io in enumerate(
        ("float32", "bfloat16", "float16", "float32", "bfloat16"))
] + [
    ("_lif_window_kernel", io, flags, {}) for io in ("float32", "bfloat16") for flags in (True, False)
] + [  # the longest T it serves, all gradients asked for (the most registers), and the shortest
    ("_lif_bwd_recompute_kernel", io, flags, {"SG": sg, "T": T})
    for io, flags, sg, T in (("float32", True, 0, tk.RECOMPUTE_MAX_T), ("bfloat16", True, 1, tk.RECOMPUTE_MAX_T),
                             ("float16", False, 3, 8), ("float32", False, 4, 1))
]


def test_block_shape():
    """4 warps of 8 (fp32) or 4 (half/bf16) values per thread; halved while fewer than 2 programs per SM."""
    import torch

    assert tk.block_shape(1 << 24, H200_SMS, tk.values_per_thread(torch.float32)) == (1024, 4)
    assert tk.block_shape(1 << 24, H200_SMS, tk.values_per_thread(torch.bfloat16)) == (512, 4)
    assert tk.block_shape(2 * H200_SMS * 512, H200_SMS, 8) == (512, 2)
    assert tk.block_shape(10, H200_SMS, 8) == (256, 1) and tk.block_shape(10, H200_SMS, 4) == (128, 1)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm{a}")
@pytest.mark.parametrize("name,io,flags,extra", NEURON_CASES,
                         ids=[f"{c[0][1:-7]}-{c[1]}-{'on' if c[2] else 'off'}{c[3].get('SG', '')}"
                              + (f"-T{c[3]['T']}" if "T" in c[3] else "")
                              for c in NEURON_CASES])
def test_neuron_kernel_compiles_for_the_gpu(name, io, flags, extra, arch):
    fn = getattr(tk, name)
    constexprs = {**_flags(fn, flags), **extra, "BLOCK": _block(name, io)}
    if "ROUND_BF16" in constexprs:
        constexprs["ROUND_BF16"] = io == "bfloat16"
    ptx, cubin = _compile(name, io, constexprs, aligned=False, arch=arch)
    assert len(cubin) > 0
    assert not re.search(r"\bfma\.", ptx), "fused multiply-add in the kernel: spikes would round differently"

    ptx, cubin = _compile(name, io, constexprs, aligned=True, arch=arch)
    resources = _resources(cubin)
    assert resources["LOCAL"] == 0 and resources["STACK"] == 0, f"register spills: {resources}"
    if name != "_lif_window_kernel":  # (the window kernel packs bits through shared memory)
        assert resources["SHARED"] == 0, f"values moved between layouts through shared memory: {resources}"
    accesses = _accesses(ptx)
    stores = {a for a in accesses if a.startswith("st.")}
    if name == "_lif_window_kernel":  # the packed bits are BLOCK/8 bytes per step: 128-bit for the [N] state
        stores -= {"st.global.v2.b8", "st.global.b8", "st.global.v4.b8", "st.global.b16", "st.global.v2.b16"}
    # a thread's consecutive values in one access: 128-bit for float32 (4 values), 64-bit for 4 half values
    widths = (".v4.",) if io == "float32" else (".v4.", ".v2.")
    assert stores and all(any(w in s for w in widths) for s in stores), f"narrow global stores: {sorted(stores)}"
    assert any(a.startswith(("ld.global.v4", "ld.global.v2")) for a in accesses), f"no vector loads: {sorted(accesses)}"


@pytest.mark.parametrize("out", ["float32", "bfloat16", "uint8"])
def test_unpack_kernel_compiles_for_sm90(out):
    _, cubin = _compile("_unpack_kernel", out, {"BLOCK": _block("_unpack_kernel", out)}, aligned=True)
    assert len(cubin) > 0
