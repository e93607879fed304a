"""Registry of multi-step neuron kernels (``KERNELS``): one signature, same results.

- ``torch``: the reference loop (:mod:`.reference`), any dtype, any callable surrogate; the oracle.
- ``cpu``: fused C++ forward/backward compiled at run time (:mod:`.cpu`).
- ``triton``: fused GPU kernels (:mod:`.triton_kernel`), testable with ``TRITON_INTERPRET=1``.
- ``auto``: the fastest kernel that can run the input (``cpu`` on CPU, ``triton`` on CUDA, else ``torch``).

Each also runs the no-grad window pass of the one-step methods, :meth:`Kernel.fire_window` (:mod:`.window`).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from spikeforge.neuron.kernels.base import Kernel, NeuronSpec
from spikeforge.neuron.kernels.reference import ReferenceKernel
from spikeforge.neuron.kernels.window import Affine, WindowState
from spikeforge.registry import Registry

__all__ = ["KERNELS", "Kernel", "NeuronSpec", "AutoKernel", "WindowState", "Affine"]

KERNELS: Registry[Kernel] = Registry("kernel")
KERNELS.register("torch", ReferenceKernel)


#: device type -> the kernels ``auto`` tries, in order
PREFERENCE = {"cpu": ("cpu", "torch"), "cuda": ("triton", "torch")}


def unpack_preferred(data: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """The unpack of the kernel ``auto`` prefers on the device of ``data`` (Triton's one pass on CUDA; torch shifts
    on the CPU)."""
    first = PREFERENCE.get(data.device.type, ("torch",))[0]
    return KERNELS.lookup(first if first in KERNELS else "torch").unpack(data, n, dtype)


@KERNELS.register("auto")
class AutoKernel(Kernel):
    """Dispatches each call to the first kernel of :attr:`preference` that can run it.

    On CUDA, falling back to the per-step ``torch`` loop (no Triton, a plain-callable surrogate, an
    unsupported dtype) costs several times the fused kernel's time, so it warns with the reason (once per
    reason: Python's default warning filter). On the CPU the loop is the documented path for float64 and
    plain callables, and stays silent.
    """

    name = "auto"
    preference = PREFERENCE

    def choose(self, x: Tensor, spec: NeuronSpec) -> Kernel:
        reasons = []
        for name in self.preference.get(x.device.type, ("torch",)):
            if name == "torch" or name not in KERNELS:
                continue
            kernel = KERNELS.get(name)
            reason = kernel.unavailable(x, spec)
            if reason is None:
                return kernel
            reasons.append(f"{name}: {reason}")
        if x.device.type == "cuda":
            warnings.warn("neuron backend 'auto' runs the per-step torch loop on CUDA (slow): "
                          + "; ".join(reasons), RuntimeWarning, stacklevel=3)
        return KERNELS.get("torch")

    def __call__(self, x, v_init, decay, input_gain, v_threshold, spec, return_v=False):
        return self.choose(x, spec)(x, v_init, decay, input_gain, v_threshold, spec, return_v)

    def fire_window(self, x, state, weights, decay, gain, vth, spec, bits, affine=None) -> None:
        return self.choose(x, spec).fire_window(x, state, weights, decay, gain, vth, spec, bits, affine)

    unpack = staticmethod(unpack_preferred)


from spikeforge.neuron.kernels import cpu as _cpu  # noqa: E402,F401  (registers "cpu")
from spikeforge.neuron.kernels import triton_kernel as _triton  # noqa: E402,F401  (registers "triton")
