"""The benchmarks' ``--device cpu|cuda``: checking it, naming it, timing and measuring memory on it.

On CUDA every timer is read between two ``torch.cuda.synchronize()`` calls (a launch returns before
the kernel ends), and memory is ``torch.cuda.max_memory_allocated()`` above the allocation at the
start, after ``torch.cuda.reset_peak_memory_stats()``: what the measured work added at its peak. On
CPU timers are plain ``perf_counter`` and memory stays each benchmark's own CPU measure (peak RSS in
``bench methods``; the CPU allocator keeps no peak statistics).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any, Callable

import torch

__all__ = ["DEVICES", "add_device_argument", "device_fields", "median_ms", "peak_mb", "resolve_device",
           "start_peak", "synchronize"]

DEVICES = ("cpu", "cuda")


def add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="cpu (default) or cuda (timings synchronised, memory = torch.cuda.max_memory_allocated)")


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` that can run here.

    Raises:
        ValueError: a device type other than cpu or cuda, or cuda where torch finds no CUDA device
            (the message says which torch build this is and what to use instead).
    """
    dev = torch.device(device)
    if dev.type not in DEVICES:
        raise ValueError(f"bench --device must be one of {', '.join(DEVICES)}, got {str(device)!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ValueError(f"bench --device cuda: no CUDA device is available (torch {torch.__version__}, {build}); "
                             "run with --device cpu, or install a CUDA build of PyTorch on a machine with a GPU")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def device_fields(dev: torch.device) -> dict[str, Any]:
    """The JSON row fields naming the device: ``device`` (cpu / cuda) and ``device_name``."""
    if dev.type == "cuda":
        return {"device": "cuda", "device_name": torch.cuda.get_device_name(dev), "cuda": torch.version.cuda}
    return {"device": "cpu", "device_name": platform.processor() or platform.machine() or "cpu"}


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def median_ms(fn: Callable[[], Any], repeats: int, dev: torch.device, warmup: int = 1) -> float:
    """Median wall-clock milliseconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        synchronize(dev)
        start = time.perf_counter()
        fn()
        synchronize(dev)
        samples.append(1e3 * (time.perf_counter() - start))
    return statistics.median(samples)


def start_peak(dev: torch.device) -> int:
    """CUDA: reset the peak statistics and return the bytes allocated now (the baseline); CPU: 0."""
    if dev.type != "cuda":
        return 0
    synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    return torch.cuda.memory_allocated(dev)


def peak_mb(dev: torch.device, base: int) -> float:
    """CUDA: MiB of ``max_memory_allocated`` above ``base`` (from :func:`start_peak`)."""
    synchronize(dev)
    return (torch.cuda.max_memory_allocated(dev) - base) / 2**20
