"""The ``triton`` kernel: fused multi-step forward and backward as two Triton GPU kernels.

The dynamics and the backward formulas are those of :mod:`spikeforge.neuron.kernels.base`. The flat
input ``x [T, N]`` is cut into blocks of ``BLOCK`` neurons along N, one program per block; each program
loops over time, so every ``[T, N]`` tensor is read or written once per direction, in coalesced rows.

- Forward: ``H = (λ·V + κ·X) + c``, c = (1 − λ)·v_rest, evaluated in that order without FMA
  (``enable_fp_fusion=False``), and S = Θ(H − V_th) on the difference as the reference computes it,
  so spikes equal the ``torch`` kernel's bit for bit. Stores S, H (all backward needs) and, when
  asked, V after reset; reads v_init only when one is given (else starts at v_rest).
- Backward: reverse loop over time, recomputing S[t] and V[t-1] from H (V[-1] = v_init); for
  T <= ``RECOMPUTE_MAX_T`` (8) H itself is recomputed from X into registers (the forward then stores no H,
  and X is kept for backward instead: 20 bytes per element and step in fp32, 10 in bf16); writes
  ∂L/∂X and, only where a gradient is asked for, ∂L/∂v_init and the per-neuron partials of λ, κ, V_th
  (summed over N by :mod:`.fused`). Per element and step the pair moves 24 bytes in fp32 (forward:
  X read, S and H written; backward: ∂L/∂S and H read, ∂L/∂X written), plus X again when κ is learnable.

λ, κ, V_th are read in the kernel from 0-dim tensors (no host sync for learnable values). Compute is
fp32; half/bf16 X, S, v_seq, ∂L/∂S, ∂L/∂X are loaded and stored in their own dtype (converted in
registers, the values the upcast-then-round path gives), H stays fp32: 16 bytes per element and step
under ``torch.amp``. float64 is not supported (use ``torch`` or ``cpu``).

Launch (:func:`block_shape`): 8 neurons per thread in 4 warps, BLOCK = 1024 (4 per thread, BLOCK 512, for
half/bf16 I/O: :func:`values_per_thread`), halved down to one warp while there would be fewer than two
programs per SM; vector accesses (128-bit for float32, 64-bit for 4 half values) when N is a multiple of 16
(``tests/neuron/kernels/test_triton_compile.py`` compiles the kernels for sm_90 and sm_80 and checks the
accesses, no FMA, no spills, no shared memory); offsets are int64.

Two no-grad kernels serve the one-step methods: :meth:`TritonKernel.fire_window`, one launch per
window of :mod:`.window` (charge, fire, reset, the weighted sums and the spikes packed to bits), and
:func:`unpack_bits_triton`, packed bits back to 0/1 values in one pass.

Triton is imported at first use, never at import time. With ``TRITON_INTERPRET=1`` in the
environment the kernels run under Triton's interpreter and accept CPU tensors (how the tests run it
without a GPU; BLOCK is then 128 and launch options are dropped). The mode is read at each call and
the kernels are wrapped for it here, so it does not matter when triton was first imported.
"""
from __future__ import annotations

import os
import types

import torch
from torch import Tensor

from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.kernels.base import NeuronSpec
from spikeforge.neuron.kernels.fused import FusedKernel, define_fused_ops, define_window_op, surrogate_unsupported
from spikeforge.neuron.kernels.window import prepare_window
from spikeforge.neuron.surrogate import KERNEL_DERIVATIVES
from spikeforge.streams.bits import unpack_bits

__all__ = ["TritonKernel", "unpack_bits_triton"]

# Bound at first use by _import_triton(); the kernel functions below look them up as globals.
triton = None
tl = None

_IMPORT_ERROR: list[str] = []  # [] = not tried yet; [""] = imported; [message] = failed
_KERNELS: dict[tuple[str, bool], object] = {}  # (kernel name, interpret?) -> wrapped kernel
_JIT_SCOPE: dict[str, object] = {}  # the globals of GPU-compiled kernels and helpers (helpers as triton.jit)
_OP = None
_SM_COUNT: dict[int, int] = {}


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _import_triton() -> str | None:
    """Import triton once; the failure message, or None when it imported (a constant under torch.compile)."""
    global triton, tl
    if not _IMPORT_ERROR:
        try:
            import triton as _triton
            import triton.language as _tl
        except Exception as e:  # ImportError, or a broken installation
            _IMPORT_ERROR.append(f"triton cannot be imported ({type(e).__name__}: {e})")
        else:
            triton, tl = _triton, _tl
            _IMPORT_ERROR.append("")
    return _IMPORT_ERROR[0] or None


# ---------------------------------------------------------------------------------------------------
# Kernels and the helpers they share: plain functions, bound for one mode by _kernel() (the kernels to
# triton.jit or the interpreter, the helpers named in _HELPERS to triton.jit or left plain). They use
# only builtins of triton.language, none of its own @jit helpers (tl.zeros, tl.sigmoid, ...): those are
# wrapped for one mode when triton.language is imported, and fail in the other.


def _load_params(decay_ptr, gain_ptr, vth_ptr, fth_ptr):
    """(λ, κ, V_th, r·V_th) read from their 0-dim tensors: r·V_th fires, the reset is by V_th."""
    return tl.load(decay_ptr), tl.load(gain_ptr), tl.load(vth_ptr), tl.load(fth_ptr)


def _initial_v(v0_ptr, col, mask, v_rest, HAS_V0: tl.constexpr, BLOCK: tl.constexpr):
    """V[-1]: v_init where one is given, else v_rest in every lane."""
    if HAS_V0:
        v = tl.load(v0_ptr + col, mask=mask, other=0.0)
    else:
        v = tl.full([BLOCK], 0.0, tl.float32) + v_rest
    return v


def _spike(d, STRICT: tl.constexpr):
    """Θ(d) for d = H − r·V_th: d > 0 when strict, d >= 0 otherwise (bool)."""
    if STRICT:
        spike = d > 0
    else:
        spike = d >= 0
    return spike


def _reset(h, spike, vth, v_rest, HARD: tl.constexpr):
    """V after the reset of potentials h with spikes ``spike`` (bool): to v_rest (hard) or minus V_th (soft)."""
    if HARD:
        v = tl.where(spike, v_rest, h)
    else:
        v = h - spike.to(tl.float32) * vth
    return v


def _store_io(ptrs, value, mask, ROUND_BF16: tl.constexpr):
    """Store float32 ``value`` in the pointers' dtype; for bfloat16 rounded to nearest even by hand first, so the
    conversion in the store is an exact truncation and the interpreter (which truncates) and the GPU (which
    rounds) store the same value."""
    if ROUND_BF16:
        bits = value.to(tl.uint32, bitcast=True)
        value = ((bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000).to(tl.float32, bitcast=True)
    tl.store(ptrs, value.to(ptrs.dtype.element_ty), mask=mask)


def _step_grads(h, gs, delta, vth, fth, v_rest, sg_a, sg_b, ratio,
                HARD: tl.constexpr, DETACH: tl.constexpr, STRICT: tl.constexpr, SG: tl.constexpr, BLOCK: tl.constexpr):
    """One step of the backward (base.py's formulas): (∂L/∂H[t], the step's ∂L/∂V_th term) from H[t], ∂L/∂S[t] and
    δ = ∂L/∂V[t]. σ'(d), d = H − r·V_th, is the formula KERNEL_DERIVATIVES[SG] of spikeforge.neuron.surrogate with
    (sg_a, sg_b) its Surrogate.kernel_constants(), passed in as they are; IEEE division like torch's."""
    d = h - fth
    s = _spike(d, STRICT).to(tl.float32)
    if SG == 0:  # a / (1 + (b·d)²)
        z = sg_b * d
        sg = tl.math.div_rn(tl.full([BLOCK], sg_a, tl.float32), 1 + z * z)
    elif SG == 1:  # a·s(a·d)·(1 − s(a·d))
        sig = 1 / (1 + tl.exp(-(sg_a * d)))  # tl.sigmoid's formula
        sg = sg_a * sig * (1 - sig)
    elif SG == 2:  # 1[|d| < a] / b
        sg = tl.where(tl.abs(d) < sg_a, tl.math.div_rn(1.0, sg_b), 0.0)
    elif SG == 3:  # max(0, a − |d|) / b
        sg = tl.math.div_rn(tl.maximum(sg_a - tl.abs(d), 0.0), tl.full([BLOCK], sg_b, tl.float32))
    else:  # 1
        sg = tl.full([BLOCK], 1.0, tl.float32)
    gsg = gs * sg
    if HARD:
        if DETACH:
            gh = gsg + delta * (1 - s)
            gvth = -(ratio * gsg)
        else:
            r = (v_rest - h) * sg  # (v_reset − H)·σ'
            gh = gsg + delta * ((1 - s) + r)
            gvth = -(ratio * gsg) - delta * (ratio * r)
    else:
        if DETACH:
            gh = gsg + delta
            gvth = -(ratio * gsg) - delta * s
        else:
            q = vth * sg
            gh = gsg + delta * (1 - q)
            gvth = -(ratio * gsg) + delta * (ratio * q - s)
    return gh, gvth


def _reverse_step(h, v_prev, row, col, mask, gs_ptr, gv_ptr, x_ptr, gx_ptr, delta, acc_decay, acc_gain, acc_vth,
                  lam, gain, vth, fth, v_rest, sg_a, sg_b, ratio,
                  HARD: tl.constexpr, DETACH: tl.constexpr, STRICT: tl.constexpr, SG: tl.constexpr,
                  HAS_GV: tl.constexpr, NEED_DECAY: tl.constexpr, NEED_GAIN: tl.constexpr, NEED_VTH: tl.constexpr,
                  ROUND_BF16: tl.constexpr, BLOCK: tl.constexpr):
    """Step t of the reverse pass, given H[t] and V[t-1] (read from a stored H or recomputed: the kernels differ
    only there): reads ∂L/∂S[t] (and ∂L/∂V[t]), writes ∂L/∂X[t], adds to the partials that are asked for;
    returns (δ for step t-1, the three partials)."""
    gs = tl.load(gs_ptr + row + col, mask=mask, other=0.0).to(tl.float32)
    if HAS_GV:
        delta += tl.load(gv_ptr + row + col, mask=mask, other=0.0).to(tl.float32)
    gh, gvth = _step_grads(h, gs, delta, vth, fth, v_rest, sg_a, sg_b, ratio, HARD, DETACH, STRICT, SG, BLOCK)
    _store_io(gx_ptr + row + col, gain * gh, mask, ROUND_BF16)
    if NEED_VTH:
        acc_vth += gvth
    if NEED_DECAY:
        acc_decay += gh * (v_prev - v_rest)
    if NEED_GAIN:
        acc_gain += gh * tl.load(x_ptr + row + col, mask=mask, other=0.0).to(tl.float32)
    return lam * gh, acc_decay, acc_gain, acc_vth


def _store_partials(gv0_ptr, gdecay_ptr, ggain_ptr, gvth_ptr, col, mask, delta, acc_decay, acc_gain, acc_vth,
                    NEED_V0: tl.constexpr, NEED_DECAY: tl.constexpr, NEED_GAIN: tl.constexpr, NEED_VTH: tl.constexpr):
    """The per-neuron outputs that were asked for: ∂L/∂v_init (= δ[-1]) and the partials of λ, κ, V_th."""
    if NEED_V0:
        tl.store(gv0_ptr + col, delta, mask=mask)
    if NEED_DECAY:
        tl.store(gdecay_ptr + col, acc_decay, mask=mask)
    if NEED_GAIN:
        tl.store(ggain_ptr + col, acc_gain, mask=mask)
    if NEED_VTH:
        tl.store(gvth_ptr + col, acc_vth, mask=mask)


_HELPERS = ("_load_params", "_initial_v", "_spike", "_reset", "_store_io", "_step_grads", "_reverse_step",
            "_store_partials")


def _lif_fwd_kernel(
    x_ptr, v0_ptr, decay_ptr, gain_ptr, vth_ptr, fth_ptr,
    s_ptr, h_ptr, v_ptr,
    T, N, v_rest,
    HARD: tl.constexpr, STRICT: tl.constexpr, RETURN_V: tl.constexpr, HAS_V0: tl.constexpr, STORE_H: tl.constexpr,
    ROUND_BF16: tl.constexpr, BLOCK: tl.constexpr,
):
    col = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = col < N
    lam, gain, vth, fth = _load_params(decay_ptr, gain_ptr, vth_ptr, fth_ptr)
    c = (1 - lam) * v_rest
    v = _initial_v(v0_ptr, col, mask, v_rest, HAS_V0, BLOCK)
    for t in range(T):
        idx = tl.cast(t, tl.int64) * N + col
        x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
        h = lam * v + gain * x + c
        spike = _spike(h - fth, STRICT)
        v = _reset(h, spike, vth, v_rest, HARD)
        tl.store(s_ptr + idx, spike.to(tl.float32).to(s_ptr.dtype.element_ty), mask=mask)
        if STORE_H:
            tl.store(h_ptr + idx, h, mask=mask)
        if RETURN_V:
            _store_io(v_ptr + idx, v, mask, ROUND_BF16)


def _lif_bwd_kernel(
    gs_ptr, gv_ptr, h_ptr, x_ptr, v0_ptr, decay_ptr, gain_ptr, vth_ptr, fth_ptr,
    gx_ptr, gv0_ptr, gdecay_ptr, ggain_ptr, gvth_ptr,
    T, N, v_rest, sg_a, sg_b, ratio,
    HARD: tl.constexpr, DETACH: tl.constexpr, STRICT: tl.constexpr, SG: tl.constexpr,
    HAS_GV: tl.constexpr, HAS_V0: tl.constexpr,
    NEED_V0: tl.constexpr, NEED_DECAY: tl.constexpr, NEED_GAIN: tl.constexpr, NEED_VTH: tl.constexpr,
    ROUND_BF16: tl.constexpr, BLOCK: tl.constexpr,
):
    # From the stored H: a reverse loop over any T, reading H[t] once (carried as H[t-1] of the next step).
    col = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = col < N
    lam, gain, vth, fth = _load_params(decay_ptr, gain_ptr, vth_ptr, fth_ptr)
    v0 = _initial_v(v0_ptr, col, mask, v_rest, HAS_V0, BLOCK)
    delta = tl.full([BLOCK], 0.0, tl.float32)  # ∂L/∂V[t], carried backwards as λ·∂L/∂H[t+1]
    acc_decay = tl.full([BLOCK], 0.0, tl.float32)
    acc_gain = tl.full([BLOCK], 0.0, tl.float32)
    acc_vth = tl.full([BLOCK], 0.0, tl.float32)
    h = tl.load(h_ptr + (T - 1).to(tl.int64) * N + col, mask=mask, other=0.0)
    for i in range(T):
        t = T - 1 - i
        row = t.to(tl.int64) * N
        # V[t-1]: recomputed from H[t-1] (which is H of the next iteration), or v_init at t = 0.
        has_prev = t > 0
        h_prev = tl.load(h_ptr + (row - N) + col, mask=mask & has_prev, other=0.0)
        v_prev = _reset(h_prev, _spike(h_prev - fth, STRICT), vth, v_rest, HARD)
        v_prev = tl.where(has_prev, v_prev, v0)
        delta, acc_decay, acc_gain, acc_vth = _reverse_step(
            h, v_prev, row, col, mask, gs_ptr, gv_ptr, x_ptr, gx_ptr, delta, acc_decay, acc_gain, acc_vth,
            lam, gain, vth, fth, v_rest, sg_a, sg_b, ratio,
            HARD, DETACH, STRICT, SG, HAS_GV, NEED_DECAY, NEED_GAIN, NEED_VTH, ROUND_BF16, BLOCK)
        h = h_prev
    _store_partials(gv0_ptr, gdecay_ptr, ggain_ptr, gvth_ptr, col, mask, delta, acc_decay, acc_gain, acc_vth,
                    NEED_V0, NEED_DECAY, NEED_GAIN, NEED_VTH)


def _lif_bwd_recompute_kernel(
    gs_ptr, gv_ptr, x_ptr, v0_ptr, decay_ptr, gain_ptr, vth_ptr, fth_ptr,
    gx_ptr, gv0_ptr, gdecay_ptr, ggain_ptr, gvth_ptr,
    N, v_rest, sg_a, sg_b, ratio,
    T: tl.constexpr, HARD: tl.constexpr, DETACH: tl.constexpr, STRICT: tl.constexpr, SG: tl.constexpr,
    HAS_GV: tl.constexpr, HAS_V0: tl.constexpr,
    NEED_V0: tl.constexpr, NEED_DECAY: tl.constexpr, NEED_GAIN: tl.constexpr, NEED_VTH: tl.constexpr,
    ROUND_BF16: tl.constexpr, BLOCK: tl.constexpr,
):
    # Without a stored H (short sequences, T <= RECOMPUTE_MAX_T): X is read, H[0..T-1] recomputed forward into
    # registers (the forward's own expression and order: the same values bit for bit), then the reverse pass.
    col = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = col < N
    n64 = tl.cast(N, tl.int64)
    lam, gain, vth, fth = _load_params(decay_ptr, gain_ptr, vth_ptr, fth_ptr)
    c = (1 - lam) * v_rest
    v0 = _initial_v(v0_ptr, col, mask, v_rest, HAS_V0, BLOCK)
    v = v0
    hs = ()  # newest first: hs[i] = H[T-1-i], as the reverse pass takes them
    for t in tl.static_range(T):
        x = tl.load(x_ptr + n64 * t + col, mask=mask, other=0.0).to(tl.float32)
        h = lam * v + gain * x + c
        v = _reset(h, _spike(h - fth, STRICT), vth, v_rest, HARD)
        hs = (h,) + hs
    delta = tl.full([BLOCK], 0.0, tl.float32)
    acc_decay = tl.full([BLOCK], 0.0, tl.float32)
    acc_gain = tl.full([BLOCK], 0.0, tl.float32)
    acc_vth = tl.full([BLOCK], 0.0, tl.float32)
    for i in tl.static_range(T):  # step t = T-1-i (index arithmetic stays in the subscripts: constexpr there)
        # V[t-1] from H[t-1] = hs[i+1], or v_init at t = 0 (unused, and dropped by the compiler, without NEED_DECAY);
        # X is read again for κ's partial, not kept: T more values per thread would halve the programs an SM holds
        v_prev = _reset(hs[i + 1], _spike(hs[i + 1] - fth, STRICT), vth, v_rest, HARD) if i + 1 < T else v0
        delta, acc_decay, acc_gain, acc_vth = _reverse_step(
            hs[i], v_prev, n64 * (T - 1 - i), col, mask, gs_ptr, gv_ptr, x_ptr, gx_ptr, delta, acc_decay, acc_gain,
            acc_vth, lam, gain, vth, fth, v_rest, sg_a, sg_b, ratio,
            HARD, DETACH, STRICT, SG, HAS_GV, NEED_DECAY, NEED_GAIN, NEED_VTH, ROUND_BF16, BLOCK)
    _store_partials(gv0_ptr, gdecay_ptr, ggain_ptr, gvth_ptr, col, mask, delta, acc_decay, acc_gain, acc_vth,
                    NEED_V0, NEED_DECAY, NEED_GAIN, NEED_VTH)


def _lif_window_kernel(
    x_ptr, v_ptr, isum_ptr, ssum_ptr, w_ptr, decay_ptr, gain_ptr, vth_ptr, fth_ptr, scale_ptr, shift_ptr,
    bits_ptr, T, N, bits_stride, inner, C, v_rest,
    HARD: tl.constexpr, STRICT: tl.constexpr, AFFINE: tl.constexpr, BLOCK: tl.constexpr,
):
    # One window of the no-grad pass (window.py) for BLOCK neurons (a multiple of 8: whole bytes of bits).
    col = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = col < N
    byte = tl.program_id(0).to(tl.int64) * (BLOCK // 8) + tl.arange(0, BLOCK // 8)
    byte_mask = byte < (N + 7) // 8
    lam, gain, vth, fth = _load_params(decay_ptr, gain_ptr, vth_ptr, fth_ptr)
    c = (1 - lam) * v_rest
    v = tl.load(v_ptr + col, mask=mask, other=0.0)
    isum = tl.load(isum_ptr + col, mask=mask, other=0.0)
    ssum = tl.load(ssum_ptr + col, mask=mask, other=0.0)
    if AFFINE:
        channel = (col // inner) % C
        scale = tl.load(scale_ptr + channel, mask=mask, other=0.0)
        shift = tl.load(shift_ptr + channel, mask=mask, other=0.0)
    for t in range(T):
        row = tl.cast(t, tl.int64)
        x = tl.load(x_ptr + row * N + col, mask=mask, other=0.0).to(tl.float32)
        if AFFINE:
            x = x * scale + shift
        h = lam * v + gain * x + c
        spike = _spike(h - fth, STRICT) & mask  # lanes past N never fire: their bits stay 0
        s = spike.to(tl.float32)
        v = _reset(h, spike, vth, v_rest, HARD)
        w = tl.load(w_ptr + row)
        isum = isum + w * x
        ssum = ssum + w * s
        # Pack: value j of the block is bit j % 8 of byte j // 8, the sum of s << (j % 8) over each byte's
        # eight values, taken by halving with split (tl.sum is an @jit helper, which the mode switch breaks).
        shifted = tl.reshape(spike.to(tl.int32), [BLOCK // 8, 8]) << tl.arange(0, 8)[None, :]
        lo, hi = tl.split(tl.reshape(shifted, [BLOCK // 8, 4, 2]))
        lo, hi = tl.split(tl.reshape(lo + hi, [BLOCK // 8, 2, 2]))
        lo, hi = tl.split(lo + hi)
        tl.store(bits_ptr + row * bits_stride + byte, (lo + hi).to(tl.uint8), mask=byte_mask)
    tl.store(v_ptr + col, v, mask=mask)
    tl.store(isum_ptr + col, isum, mask=mask)
    tl.store(ssum_ptr + col, ssum, mask=mask)


def _unpack_kernel(data_ptr, out_ptr, total, n, data_stride, BLOCK: tl.constexpr):
    # out[i, j] = bit j % 8 of data[i, j // 8], for BLOCK of the k·n outputs (flat index).
    flat = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = flat < total
    row = flat // n
    col = flat - row * n
    byte = tl.load(data_ptr + row * data_stride + col // 8, mask=mask, other=0).to(tl.int32)
    bit = (byte >> (col % 8).to(tl.int32)) & 1
    # Through float32: the interpreter casts int32 to bfloat16 as a bit pattern (1 -> 9e-41), not as a value.
    tl.store(out_ptr + flat, bit.to(tl.float32).to(out_ptr.dtype.element_ty), mask=mask)


def _kernel(fn, interpret: bool, do_not_specialize: tuple[str, ...] = ("T",)):
    """``fn`` wrapped for a GPU launch or for the interpreter, built once per kernel and mode.

    The interpreter wrapper is chosen explicitly here (not by ``triton.jit`` reading the environment
    at decoration time), so the mode follows ``TRITON_INTERPRET`` at the call whenever triton was imported.
    """
    key = (fn.__name__, interpret)
    if key not in _KERNELS:
        reason = _import_triton()
        if reason is not None:
            raise RuntimeError(f"kernel 'triton': {reason}")
        if interpret:
            from triton.runtime.interpreter import InterpretedFunction

            _KERNELS[key] = InterpretedFunction(_bind_helpers(fn, interpret))
        else:
            from triton.runtime.jit import JITFunction

            _KERNELS[key] = JITFunction(_bind_helpers(fn, interpret), do_not_specialize=list(do_not_specialize))
    return _KERNELS[key]


def _bind_helpers(fn, interpret: bool):
    """``fn`` as the mode runs it: for the interpreter (which runs Python) as it is, its helpers the plain
    functions of this module; for a GPU compile with globals in which every helper of ``_HELPERS`` is a
    ``triton.jit`` function (the only kind a compiled kernel inlines) seeing the same globals, so helpers may
    call helpers."""
    if interpret:
        return fn
    return types.FunctionType(fn.__code__, _jit_scope(), fn.__name__, fn.__defaults__, fn.__closure__)


def _jit_scope() -> dict:
    """This module's globals with each helper of ``_HELPERS`` replaced by its ``triton.jit`` wrapper (made once)."""
    if not _JIT_SCOPE:
        from triton.runtime.jit import JITFunction

        scope = dict(globals())
        for name in _HELPERS:
            helper = globals()[name]
            scope[name] = JITFunction(types.FunctionType(helper.__code__, scope, name, helper.__defaults__))
        _JIT_SCOPE.update(scope)
    return _JIT_SCOPE


# ---------------------------------------------------------------------------------------------------
# Host side: the raw forward/backward of fused.py's contract.


def block_shape(n: int, sm_count: int, per_thread: int = 8) -> tuple[int, int]:
    """(BLOCK, num_warps) of a launch over ``n`` values: ``per_thread`` values per thread and 4 warps
    (BLOCK = 128·per_thread), halved (one warp less each time) while fewer than two programs per SM would
    run, down to one warp."""
    block = 128 * per_thread
    while block > 32 * per_thread and -(-n // block) < 2 * sm_count:
        block //= 2
    return block, block // (32 * per_thread)


def values_per_thread(dtype: torch.dtype) -> int:
    """Values per thread of the neuron kernels for I/O ``dtype``: 8 (two 128-bit accesses per float32 tensor), 4
    for a 2-byte dtype. With 8, its 128-bit loads and the float32 stores of H would take two layouts, and Triton
    would move each step's values between them through shared memory; with 4 both share one (the sm_90 compile
    test checks that the neuron kernels use no shared memory)."""
    return 8 if dtype.itemsize >= 4 else 4


def _launch_config(n: int, device: torch.device, interpret: bool, per_thread: int) -> tuple[int, int]:
    """(BLOCK, num_warps) on ``device`` (:func:`block_shape` with its SM count)."""
    if interpret:
        return 128, 4  # several programs (and a masked tail) even for small test inputs
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SM_COUNT:
        _SM_COUNT[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return block_shape(n, _SM_COUNT[index], per_thread)


#: compile options of every GPU launch: no fused multiply-add, so charges round like the reference kernel
LAUNCH_OPTIONS = {"enable_fp_fusion": False}


def _launch(kernel, n: int, x: Tensor, interpret: bool, *args, per_thread: int = 8, **constexprs) -> None:
    block, num_warps = _launch_config(n, x.device, interpret, per_thread)
    grid = (triton.cdiv(n, block),)
    if interpret:
        # The interpreter ignores launch options (it filters keyword arguments to the kernel's own).
        kernel[grid](*args, BLOCK=block, **constexprs)
        return
    with torch.cuda.device(x.device):
        kernel[grid](*args, BLOCK=block, num_warps=num_warps, **LAUNCH_OPTIONS, **constexprs)


#: dtypes of x (and so of spikes, v_seq, ∂L/∂S, ∂L/∂X) the kernels load and store as they are; h is float32
_IO_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _scalar(p: Tensor, like: Tensor) -> Tensor:
    return p.to(device=like.device, dtype=torch.float32).reshape(())


def _device_unusable(device: torch.device) -> str | None:
    """Why the kernels cannot run on ``device`` (None when they can): cuda, or cpu under the interpreter."""
    if device.type != "cuda" and not (device.type == "cpu" and _interpreting()):
        return (f"kernel 'triton' runs on cuda tensors (or cpu tensors under TRITON_INTERPRET=1), "
                f"got a {device.type} tensor")
    return None


def _check(x: Tensor, dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> bool:
    if x.dtype not in dtypes:
        raise TypeError(f"kernel 'triton' takes {', '.join(map(str, dtypes))} here, got {x.dtype}")
    interpret = _interpreting()
    if x.device.type != "cuda" and not (interpret and x.device.type == "cpu"):
        raise ValueError(f"kernel 'triton' runs on cuda tensors (cpu ones with TRITON_INTERPRET=1), got {x.device.type}")
    return interpret


def _fire_threshold(vth: Tensor, ratio: float, like: Tensor) -> Tensor:
    """r·V_th computed as the reference kernel does (a float32 product), so spikes agree bit for bit."""
    v = _scalar(vth, like)
    return v if ratio == 1.0 else ratio * v


#: longest sequence whose backward recomputes H from X (held in registers) instead of reading a stored H: the forward
#: then writes S only, 20 bytes per element and step in all instead of 24 in float32 (10 instead of 16 in bf16), and
#: autograd keeps X rather than H (half the bytes under AMP). Longer sequences store H: compiled for sm_90 the
#: recomputing backward takes 62 registers a thread at T = 8 (the stored-H one 58), 95 at T = 16, 209 at T = 16 with
#: every gradient asked for, which would cut the threads an SM holds. The kernel's default
#: ``recompute_max_t`` (``KERNELS.get("triton", recompute_max_t=0)``: H always stored).
RECOMPUTE_MAX_T = 8


def _forward(x, v0, decay, gain, vth, v_rest, hard, strict, return_v, fire_ratio=1.0, store_h=True):
    interpret = _check(x, _IO_DTYPES)
    T, N = x.shape
    if not store_h and T > RECOMPUTE_MAX_T:
        raise ValueError(f"kernel 'triton': H is recomputed for T <= {RECOMPUTE_MAX_T} only, got T={T} with store_h=False")
    s = torch.empty_like(x)
    h = torch.empty_like(x, dtype=torch.float32) if store_h else x.new_empty(0, dtype=torch.float32)
    v = torch.empty_like(x) if return_v else x.new_empty(0)
    if T == 0 or N == 0:
        return s, h, v
    has_v0 = v0.numel() > 0
    _launch(_kernel(_lif_fwd_kernel, interpret), N, x, interpret,
            x, v0 if has_v0 else x, _scalar(decay, x), _scalar(gain, x), _scalar(vth, x), _fire_threshold(vth, fire_ratio, x),
            s, h if store_h else s, v if return_v else s,
            T, N, float(v_rest), HARD=bool(hard), STRICT=bool(strict), RETURN_V=bool(return_v), HAS_V0=has_v0,
            STORE_H=store_h, ROUND_BF16=x.dtype == torch.bfloat16, per_thread=values_per_thread(x.dtype))
    return s, h, v


def _backward(grad_s, grad_v, h, x, v0, decay, gain, vth, v_rest, hard, detach, strict, sg_id, sg_a, sg_b,
              fire_ratio=1.0, need_v0=True, need_decay=True, need_gain=True, need_vth=True):
    """From the stored H when there is one (h ``[T, N]``), else recomputing H from x (h empty, x ``[T, N]``)."""
    interpret = _check(grad_s, _IO_DTYPES)
    _check(h)
    if int(sg_id) not in KERNEL_DERIVATIVES:
        raise ValueError(f"kernel 'triton': unknown surrogate kernel_id {sg_id}; known: {sorted(KERNEL_DERIVATIVES)}")
    T, N = grad_s.shape
    recompute = h.numel() == 0
    if (recompute or need_gain) and tuple(x.shape) != (T, N):
        raise ValueError(f"kernel 'triton': backward needs x of shape {(T, N)} (to recompute H or for κ's gradient), "
                         f"got {tuple(x.shape)}")
    has_gv, has_v0 = grad_v.numel() > 0, v0.numel() > 0
    gx = torch.empty_like(grad_s)
    state = torch.float32
    gv0, gdecay, ggain, gvth = (grad_s.new_empty(N if need else 0, dtype=state)
                                for need in (need_v0, need_decay, need_gain, need_vth))
    if T == 0 or N == 0:
        return gx, gv0.zero_(), gdecay.zero_(), ggain.zero_(), gvth.zero_()
    params = (_scalar(decay, gx), _scalar(gain, gx), _scalar(vth, gx), _fire_threshold(vth, fire_ratio, gx))
    outputs = (gx, *(out if out.numel() else gx for out in (gv0, gdecay, ggain, gvth)))  # unwritten unless asked for
    flags = dict(HARD=bool(hard), DETACH=bool(detach), STRICT=bool(strict), SG=int(sg_id), HAS_GV=has_gv,
                 HAS_V0=has_v0, NEED_V0=bool(need_v0), NEED_DECAY=bool(need_decay), NEED_GAIN=bool(need_gain),
                 NEED_VTH=bool(need_vth), ROUND_BF16=grad_s.dtype == torch.bfloat16)
    grads = (grad_s, grad_v if has_gv else grad_s)
    v0 = v0 if has_v0 else gx
    if recompute:  # 4 values per thread: the T recomputed H of each stay in registers
        _launch(_kernel(_lif_bwd_recompute_kernel, interpret, ()), N, gx, interpret,
                *grads, x, v0, *params, *outputs, N, float(v_rest), float(sg_a), float(sg_b), float(fire_ratio),
                T=T, **flags, per_thread=4)
    else:
        _launch(_kernel(_lif_bwd_kernel, interpret), N, gx, interpret,
                *grads, h, x if need_gain else h, v0, *params, *outputs,
                T, N, float(v_rest), float(sg_a), float(sg_b), float(fire_ratio),
                **flags, per_thread=values_per_thread(grad_s.dtype))
    return gx, gv0, gdecay, ggain, gvth


def _define_op() -> bool:
    """Register the custom ops once per process (run eagerly, as a constant, under torch.compile)."""
    global _OP
    if _OP is None:
        _OP = define_fused_ops("lif_triton", _forward, _backward, ("cuda", "cpu"))
    return True


def _fire_window_raw(x: Tensor, v: Tensor, input_sum: Tensor, spike_sum: Tensor, weights: Tensor, decay: Tensor,
                     gain: Tensor, vth: Tensor, bits: Tensor, scale: Tensor, shift: Tensor, inner: int, v_rest: float,
                     hard: bool, strict: bool, fire_ratio: float) -> None:
    """One launch of :func:`_lif_window_kernel` on checked arguments (``scale`` empty: no affine)."""
    n, numel = x.shape
    if n == 0 or numel == 0:
        return
    interpret = _interpreting()
    affine = scale.numel() > 0
    _launch(_kernel(_lif_window_kernel, interpret), numel, x, interpret,
            x, v, input_sum, spike_sum, weights, decay, gain, vth, _fire_threshold(vth, fire_ratio, x),
            scale if affine else x, shift if affine else x, bits,  # unread without the affine
            n, numel, bits.stride(0), inner, scale.numel() if affine else 1, v_rest,
            HARD=hard, STRICT=strict, AFFINE=affine)


_WINDOW_OP: list = []


def _window_op():
    """``spikeforge::lif_triton_window`` (:func:`~spikeforge.neuron.kernels.fused.define_window_op`), defined on
    first use: one opaque node under ``torch.compile`` (any device, so the interpreter's CPU tensors run it too)."""
    if not _WINDOW_OP:
        _WINDOW_OP.append(define_window_op("lif_triton", _fire_window_raw, None))
    return _WINDOW_OP[0]


_UNPACK_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.uint8)


def unpack_where_triton_runs(data: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """:func:`unpack_bits_triton` (one pass) where Triton runs and supports ``dtype``, else the torch shifts."""
    if dtype in _UNPACK_DTYPES and _device_unusable(data.device) is None and _import_triton() is None:
        return unpack_bits_triton(data, n, dtype)
    return unpack_bits(data, n, dtype)


def unpack_bits_triton(data: Tensor, n: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 ``[k, m]`` packed bits → ``[k, n]`` 0/1 in ``dtype``, one Triton pass (load the byte, shift, mask,
    store): value j of row i is bit j mod 8 of ``data[i, j div 8]`` (the layout of :mod:`.window`).

    Args:
        data: uint8 ``[k, m]`` with contiguous rows (a row slice of a larger tensor is fine), m >= ⌈n/8⌉.
        n: values per row.
        dtype: float32, float16, bfloat16, float64 or uint8.

    Raises:
        ValueError: a shape that does not fit, or Triton cannot run here (no CUDA and no ``TRITON_INTERPRET=1``,
            triton not importable).
        TypeError: ``data`` not uint8, or an unsupported ``dtype``.
    """
    if data.dtype != torch.uint8 or data.dim() != 2:
        raise TypeError(f"unpack_bits_triton: data must be uint8 [k, m], got {data.dtype} of shape {tuple(data.shape)}")
    if dtype not in _UNPACK_DTYPES:
        raise TypeError(f"unpack_bits_triton: dtype must be one of {', '.join(map(str, _UNPACK_DTYPES))}, got {dtype}")
    k, m = data.shape
    if not 0 <= n <= 8 * m or (m > 1 and data.stride(1) != 1):
        raise ValueError(f"unpack_bits_triton: n must be in [0, 8·m] = [0, {8 * m}] and rows contiguous, got n={n}, "
                         f"strides {data.stride()}")
    reason = _device_unusable(data.device) or _import_triton()
    if reason is not None:
        raise ValueError(reason)
    out = torch.empty((k, n), dtype=dtype, device=data.device)
    if out.numel():
        interpret = _interpreting()
        _launch(_kernel(_unpack_kernel, interpret, ()), out.numel(), data, interpret,
                data, out, out.numel(), n, data.stride(0))
    return out

    def __call__(self, x, v_init, decay, input_gain, v_threshold, spec: NeuronSpec, return_v=False):
        reason = self.unavailable(x, spec)
        if reason is not None:
            raise ValueError(reason)
        return super().__call__(x, v_init, decay, input_gain, v_threshold, spec, return_v)


# What torch.compiler.assume_constant_result does to these two, without importing torch._dynamo when
# spikeforge is imported (1.5–3.5 s per process); the compile tests of the kernel check first use.
_import_triton._dynamo_marked_constant = True  # type: ignore[attr-defined]
_define_op._dynamo_marked_constant = True  # type: ignore[attr-defined]


@KERNELS.register("triton")
class TritonKernel(FusedKernel):
    """Fused Triton forward/backward on CUDA (or CPU tensors under ``TRITON_INTERPRET=1``).

    Same signature and results as the ``torch`` kernel (spikes bit for bit) for the registered
    surrogates; float32 compute, half/bf16 loaded and stored as they are (h kept in float32), float64
    unsupported.

    Raises:
        ValueError: when called on input it cannot run (see :meth:`unavailable`).
    """

    name = "triton"
    device_type = "cuda"
    io_dtypes = _IO_DTYPES

    def __init__(self, recompute_max_t: int = RECOMPUTE_MAX_T) -> None:
        if not isinstance(recompute_max_t, int) or not 0 <= recompute_max_t <= RECOMPUTE_MAX_T:
            raise ValueError(f"kernel 'triton': recompute_max_t must be an int in [0, {RECOMPUTE_MAX_T}], "
                             f"got {recompute_max_t!r}")
        self.recompute_max_t = recompute_max_t

    def unavailable(self, x: Tensor, spec: NeuronSpec) -> str | None:
        reason = _device_unusable(x.device)
        if reason is not None:
            return reason
        if x.dtype == torch.float64:
            return "kernel 'triton' computes in float32; float64 input is not supported (use 'torch' or 'cpu')"
        return surrogate_unsupported(self.name, spec.surrogate) or _import_triton()

    def op(self):
        _define_op()
        return _OP

    def fire_window(self, x, state, weights, decay, gain, vth, spec: NeuronSpec, bits, affine=None) -> None:
        """One Triton launch over the window (see :meth:`Kernel.fire_window`): one program per block of
        neurons, the loop over steps inside; half/bf16 ``x`` is loaded as is and computed in float32."""
        reason = self.unavailable(x, spec)
        if reason is not None:
            raise ValueError(reason)
        a = prepare_window(x, state, weights, decay, gain, vth, bits, affine)
        empty = a.x.new_empty(0)
        scale, shift, inner = a.affine if a.affine is not None else (empty, empty, 1)
        _window_op()(a.x, state.v, state.input_sum, state.spike_sum, a.weights, a.decay, a.gain, a.vth, bits, scale,
                     shift, inner, float(spec.v_rest), spec.hard, bool(spec.strict), float(spec.fire_ratio))

    unpack = staticmethod(unpack_where_triton_runs)
