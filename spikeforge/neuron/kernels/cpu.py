"""The ``cpu`` kernel: fused C++ forward/backward (placeholder until the fused build lands)."""
from __future__ import annotations

from spikeforge.neuron.kernels.base import Kernel


class CpuKernel(Kernel):
    name = "cpu"

    def unavailable(self, x, rule):
        return "the fused cpu kernel is not built yet"
