"""The ``cpu`` kernel: fused C++ forward/backward over the whole sequence, compiled at run time.

The source is :file:`cpu_kernel.cpp` next to this file. It is compiled on first use with
:func:`torch.utils.cpp_extension.load_inline` (a C++ compiler and ninja are needed; the build is cached
in torch's extensions directory, ``TORCH_EXTENSIONS_DIR``, under a name carrying a hash of the source,
the flags and the environment (Python executable, torch version, include paths), so later processes
load it in about a second, a changed source rebuilds, and two environments sharing the directory keep
a build each instead of rebuilding each other's). Before a build a one-line message goes to stderr,
and another when this process waits on the lock of another process's build. One pass over
memory per direction, parallel over neurons; only ``h`` is saved for backward (see :mod:`.fused`).
:meth:`CpuKernel.fire_window` runs the no-grad window pass of :mod:`.window` in one call.

The build uses ``-O3 -ffp-contract=off``: no fused multiply-add, so the charge ``(λ·V + κ·X) + c`` is
rounded like the ``torch`` reference and spikes agree bit for bit. No ``-march=native``, since a cached
build may be loaded on another CPU: the float kernels are compiled for the baseline ISA and, on x86-64,
a second time for AVX2 (still without FMA), chosen at run time (:func:`simd_level`).

When the build fails (no compiler, no ninja, a compiler error), the failure is remembered for the
process and every call falls back to the ``torch`` reference kernel with a :class:`RuntimeWarning`
naming the reason.
"""
from __future__ import annotations

import hashlib
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.kernels.base import NeuronSpec
from spikeforge.neuron.kernels.fused import FusedKernel, define_fused_ops, define_window_op
from spikeforge.neuron.kernels.reference import ReferenceKernel
from spikeforge.neuron.kernels.window import prepare_window

__all__ = ["CpuKernel", "build_name", "build_op", "build_failure", "simd_level", "SOURCE", "CFLAGS", "LDFLAGS"]

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")
CFLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fopenmp")
LDFLAGS = ("-fopenmp",)

# Process-wide build state: {"ext": module, "op": forward op} after a successful build, {"error": reason}
# after a failure.
_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()


def _notify(message: str) -> None:
    print(f"spikeforge: {message}", file=sys.stderr, flush=True)


def build_name() -> str:
    """The extension's name: a hash of the source, the flags and this environment (Python executable, torch
    version, include paths), so each environment has its own cached build."""
    import torch
    from torch.utils import cpp_extension

    key = (SOURCE.read_text(), *CFLAGS, *LDFLAGS, sys.executable, torch.__version__, *cpp_extension.include_paths())
    return f"spikeforge_lif_cpu_{hashlib.sha256(chr(0).join(key).encode()).hexdigest()[:16]}"


def _compile(notify: Callable[[str], None] = _notify) -> Any:
    """Compile (or load the cached build of) the extension module; raises on any failure.

    ``notify`` gets one line before a build (none when a build is cached), or while waiting on another
    process's build lock.
    """
    from torch.utils import cpp_extension

    name = build_name()
    build_dir = Path(cpp_extension._get_build_directory(name, verbose=False))
    if not (build_dir / f"{name}.so").is_file():
        if (build_dir / "lock").exists():
            notify(f"waiting for another process building the fused cpu kernel (lock {build_dir / 'lock'}; "
                   "delete it if no build is running)...")
        else:
            notify(f"building the fused cpu kernel (once per environment, about a minute) in {build_dir} ...")
    return cpp_extension.load_inline(
        name=name,
        cpp_sources=[SOURCE.read_text()],
        functions=["lif_forward", "lif_backward", "lif_fire_window", "lif_simd"],
        extra_cflags=list(CFLAGS),
        extra_ldflags=list(LDFLAGS),
        verbose=False,
    )


def build_op() -> Callable:
    """The fused forward op ``spikeforge::lif_cpu_fwd``, built on first use and cached.

    Raises:
        RuntimeError: the extension could not be built (also on every later call: the failure is cached).
    """
    if "op" in _STATE:
        return _STATE["op"]
    with _LOCK:  # one build (and one op registration) per process, whichever thread comes first
        if "op" in _STATE:
            return _STATE["op"]
        if "error" in _STATE:
            raise RuntimeError(_STATE["error"])
        try:
            ext = _compile()
        except Exception as exc:  # no compiler, no ninja, compile or link error, ...
            first_line = (str(exc).strip().splitlines() or [""])[0]
            if len(first_line) > 240:
                first_line = first_line[:240] + "..."
            _STATE["error"] = f"the C++ extension could not be built ({type(exc).__name__}: {first_line})"
            raise RuntimeError(_STATE["error"]) from exc
        _STATE["ext"] = ext
        _STATE["window_op"] = define_window_op("lif_cpu", ext.lif_fire_window, "cpu")
        _STATE["op"] = define_fused_ops("lif_cpu", ext.lif_forward, ext.lif_backward, "cpu")
        return _STATE["op"]


def _ensure_built() -> str | None:
    """Build the op if needed; the failure reason or None.

    Under ``torch.compile`` Dynamo runs it eagerly and takes the result as a constant, so the build
    happens at trace time even in a ``fullgraph`` compile that is the first use of the kernel.
    """
    try:
        build_op()
    except RuntimeError as exc:
        return str(exc)
    return None


# What torch.compiler.assume_constant_result(_ensure_built) does, without importing torch._dynamo at
# import time (about 1.5 s); tests/neuron/kernels/test_cpu.py checks a first use under fullgraph compile.
_ensure_built._dynamo_marked_constant = True  # type: ignore[attr-defined]


def simd_level(level: int | None = None) -> int:
    """The instruction set the kernels use: 0 baseline x86-64 (SSE2) or other CPUs, 1 AVX2.

    ``level`` forces it (capped at what the CPU supports; for tests and benchmarks); returns the level
    now in use. Builds the extension if needed (raises :class:`RuntimeError` if it cannot be built).
    """
    build_op()
    return int(_STATE["ext"].lif_simd(-1 if level is None else int(level)))


def build_failure() -> str | None:
    """Why the extension could not be built in this process, or None (not tried yet, or built)."""
    return _STATE.get("error")


@KERNELS.register("cpu")
class CpuKernel(FusedKernel):
    """Fused C++ kernel for CPU tensors (float32/float64 compute; half/bf16 run in float32).

    Falls back to the ``torch`` kernel, with a :class:`RuntimeWarning`, when the build fails.
    """

    name = "cpu"
    device_type = "cpu"

    def op(self) -> Callable:
        return build_op()

    def unavailable(self, x, spec: NeuronSpec) -> str | None:
        reason = super().unavailable(x, spec)
        if reason is None and build_failure() is not None:
            reason = f"kernel 'cpu': {build_failure()}"
        return reason

    def __call__(self, x, v_init, decay, input_gain, v_threshold, spec: NeuronSpec, return_v=False):
        misuse = FusedKernel.unavailable(self, x, spec)  # wrong device or a plain callable surrogate
        if misuse is not None:
            raise ValueError(f"{misuse}; use backend='auto' or 'torch'")
        reason = _ensure_built()
        if reason is not None:
            warnings.warn(f"kernel 'cpu' falls back to the 'torch' kernel: {reason}", RuntimeWarning, stacklevel=2)
            return ReferenceKernel()(x, v_init, decay, input_gain, v_threshold, spec, return_v)
        return super().__call__(x, v_init, decay, input_gain, v_threshold, spec, return_v)

    def fire_window(self, x, state, weights, decay, gain, vth, spec: NeuronSpec, bits, affine=None) -> None:
        """One fused C++ pass over the window (see :meth:`Kernel.fire_window`); half/bf16 ``x`` is converted
        to float32 first. Falls back to the ``torch`` loop, with a warning, when the build fails."""
        misuse = FusedKernel.unavailable(self, x, spec)
        if misuse is not None:
            raise ValueError(f"{misuse}; use backend='auto' or 'torch'")
        reason = _ensure_built()
        if reason is not None:
            warnings.warn(f"kernel 'cpu' falls back to the 'torch' kernel: {reason}", RuntimeWarning, stacklevel=2)
            return ReferenceKernel().fire_window(x, state, weights, decay, gain, vth, spec, bits, affine)
        a = prepare_window(x, state, weights, decay, gain, vth, bits, affine)
        empty = state.v.new_empty(0)
        scale, shift, inner = a.affine if a.affine is not None else (empty, empty, 1)
        _STATE["window_op"](a.x.to(state.v.dtype), state.v, state.input_sum, state.spike_sum, a.weights, a.decay,
                            a.gain, a.vth, bits, scale, shift, inner, float(spec.v_rest), spec.hard, spec.strict,
                            float(spec.fire_ratio))
