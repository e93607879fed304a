"""Windows sized by the device (streams/budget.py): cache-sized on the CPU, all of T on CUDA when it fits."""
import torch

from spikeforge.methods import get_method
from spikeforge.streams import budget
from spikeforge.streams.budget import CUDA_MEMORY_FRACTION, LAYER_TENSORS, WindowBudget, device_budget
from spikeforge.streams.lazy import LazySeq


def _seq(shape, b: WindowBudget) -> LazySeq:
    return LazySeq(lambda t0, t1: torch.zeros(t1 - t0, *shape[1:]), shape, torch.float32, torch.device("cpu"),
                   b.window_bytes, store_bytes=b.store_bytes)


def test_cpu_windows_are_cache_sized():
    assert device_budget("cpu") == (4 << 20, 64 << 20)
    assert _seq((16, 64, 128, 32, 32), device_budget("cpu")).steps_per_window == 1  # 32 MiB a step


def test_cuda_window_covers_all_of_T_when_three_float_tensors_fit_the_share_of_free_memory():
    T, step = 16, (64, 128, 32, 32)  # ResNet-19's widest layer at batch 64: 32 MiB of float32 a step
    need = LAYER_TENSORS * T * 4 * 64 * 128 * 32 * 32  # three [T, B, ...] float tensors
    enough = device_budget("cuda", free_bytes=int(need / CUDA_MEMORY_FRACTION))
    seq = _seq((T, *step), enough)
    assert seq.steps_per_window == T and seq.single_window and seq.stored_steps == T
    half = device_budget("cuda", free_bytes=int(need / CUDA_MEMORY_FRACTION) // 2)
    assert _seq((T, *step), half).steps_per_window == T // 2  # otherwise the largest window that fits
    assert _seq((T, *step), device_budget("cuda", free_bytes=need)).steps_per_window == T // 4


def test_a_method_takes_the_budget_once_per_device_and_explicit_sizes_win(monkeypatch):
    calls = []

    def fake(device):
        calls.append(device)
        return WindowBudget(123, 456)
    monkeypatch.setattr("spikeforge.methods.base.device_budget", fake)
    auto, explicit = get_method("ssf"), get_method("ssf", window_mb=1, store_mb=0)
    x = torch.rand(4, 2, 3)
    for _ in range(3):
        d = auto.enter(x)
    assert (d.seq.window_bytes, d.seq.store_bytes) == (123, 456) and len(calls) == 1
    d = explicit.enter(x)
    assert (d.seq.window_bytes, d.seq.store_bytes) == (1 << 20, 0)
    assert budget.CPU_WINDOW_BYTES == 4 << 20
