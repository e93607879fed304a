"""The ``triton`` kernel: fused GPU forward/backward (placeholder until it lands)."""
from __future__ import annotations

from spikeforge.neuron.kernels.base import Kernel


class TritonKernel(Kernel):
    name = "triton"

    def unavailable(self, x, rule):
        return "the triton kernel is not built yet"
