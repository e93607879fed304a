"""``backend="auto"``: the fused kernel where it can run; on CUDA a fallback to the torch loop says why."""
import warnings
from types import SimpleNamespace

import pytest
import torch

from spikeforge.neuron import surrogate
from spikeforge.neuron.kernels import KERNELS, NeuronSpec


def spec(sg):
    return NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=sg)


def cuda_like(dtype=torch.float32):
    """What ``choose`` reads of a CUDA tensor (no GPU here): its device and dtype."""
    return SimpleNamespace(device=torch.device("cuda"), dtype=dtype)


def test_auto_on_cuda_warns_when_it_falls_back_to_the_torch_loop():
    auto = KERNELS.get("auto")
    with pytest.warns(RuntimeWarning, match=r"per-step torch loop on CUDA.*triton: .*callable"):
        chosen = auto.choose(cuda_like(), spec(lambda x: (x >= 0).to(x.dtype)))
    assert type(chosen) is type(KERNELS.get("torch"))
    with pytest.warns(RuntimeWarning, match="float64"):
        auto.choose(cuda_like(torch.float64), spec(surrogate.get("atan")))


def test_auto_on_cpu_falls_back_silently():
    auto = KERNELS.get("auto")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = auto.choose(torch.zeros(2, 2, dtype=torch.float64), spec(lambda x: (x >= 0).to(x.dtype)))
    assert type(chosen) is type(KERNELS.get("torch"))
