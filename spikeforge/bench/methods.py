"""``spikeforge bench methods``: training-step time and peak memory per method and T.

For each method (``bptt``, ``ssf``, ``dsr`` and their ``faithful`` variants) and each T, a fresh
subprocess builds ``--model`` with that method, draws a random batch ``[B, C, H, W]`` (repeated over
T by the model), and times ``--steps`` training steps (forward + backward + SGD step; median after
one warm-up step). Memory: the CPU allocator keeps no peak statistics, so each subprocess reports
its peak resident set size (``ru_maxrss``) minus its resident size just before the first step
(model, optimizer and batch built): the extra memory one training step needs. A method the model
cannot take is reported with the reason instead of numbers.

That RSS includes what glibc's allocator keeps: freed blocks stay resident inside its heap, and on this kind
of workload the free heap at the peak can exceed the live tensors. ``--live-memory`` runs each subprocess
with ``MALLOC_MMAP_THRESHOLD_=65536`` instead, so every block above 64 KiB is mapped on allocation and
unmapped on free: peak RSS then follows the live tensor memory. Its step times are not representative
(every allocation faults in fresh pages), so time and memory come from separate runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

__all__ = ["add_parser", "measure_in_subprocess", "measure_one", "run"]

METHODS = ("bptt", "ssf", "dsr", "ssf:faithful", "dsr:faithful")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure_one(model_name: str, method: str, T: int | None, batch: int, size: int, steps: int, seed: int = 0,
                window_mb: float | None = None, store_mb: float | None = None) -> dict:
    """Run in the current process (the CLI runs it in a fresh subprocess per configuration)."""
    from spikeforge.methods import get_method
    from spikeforge.models import create_model

    name, _, mode = method.partition(":")
    torch.manual_seed(seed)
    try:
        kw = {"faithful": True} if mode == "faithful" else {}
        if window_mb is not None and name != "bptt":
            kw["window_mb"] = window_mb
        if store_mb is not None and name != "bptt":
            kw["store_mb"] = store_mb
        m = get_method(name, **kw)
        model = create_model(model_name, method=m, T=T)  # T None: the model's own
        T = model.T
    except ValueError as err:
        return {"method": method, "model": model_name, "T": T, "batch": batch, "error": str(err)}
    shape = [size if d is None else d for d in model.input_shape]
    if len(shape) == 3 and model.input_shape[1] is None:
        shape[1:] = [size, size]
    x = torch.rand(batch, *shape)
    y = torch.randint(0, model.num_classes, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    base = _rss_mb()
    step()  # warm-up (first-use kernel builds, allocator growth)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB on Linux
    return {"method": method, "model": model_name, "T": T, "batch": batch, "step_ms": statistics.median(times),
            "peak_mem_mb": peak - base, "input": shape, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": "cpu"}


#: glibc setting under which peak RSS follows live memory (``--live-memory``).
LIVE_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def measure_in_subprocess(model: str, method: str, T: int | None, batch: int, size: int, steps: int,
                          window_mb: float | None = None, store_mb: float | None = None,
                          live_memory: bool = False) -> dict:
    """:func:`measure_one` in a fresh Python process (so its peak RSS is this configuration's alone)."""
    code = ("import json; from spikeforge.bench.methods import measure_one; print(json.dumps(measure_one("
            f"{model!r}, {method!r}, {T!r}, {batch}, {size}, {steps}, window_mb={window_mb!r}, store_mb={store_mb!r})))")
    env = {**os.environ, **LIVE_MEMORY_ENV} if live_memory else None
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        return {"method": method, "model": model, "T": T, "batch": batch,
                "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["memory"] = "live" if live_memory else "rss"
    return row


def print_row(row: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
    elif "error" in row:
        print(f"{row['model']:22s} {row['method']:14s} {row['T']!s:>3s}  not run: {row['error']}", flush=True)
    else:
        print(f"{row['model']:22s} {row['method']:14s} {row['T']:3d} {row['step_ms']:10.1f} {row['peak_mem_mb']:10.1f}",
              flush=True)


def header(text: str, live_memory: bool = False) -> None:
    if live_memory:
        text += ("; peak_mem = peak RSS above the RSS before the first step, in a fresh process with "
                 "MALLOC_MMAP_THRESHOLD_=65536 (freed blocks unmapped: follows live memory; times not representative)")
    else:
        text += ("; peak_mem = peak RSS of a fresh process minus its RSS before the first step "
                 "(the CPU allocator keeps no peak statistics; glibc's retained free heap included)")
    print(text)
    print(f"{'model':22s} {'method':14s} {'T':>3s} {'step ms':>10s} {'peak MiB':>10s}")


def run(model: str, Ts: list[int], batch: int, size: int, steps: int, methods: list[str], as_json: bool,
        window_mb: float | None = None, store_mb: float | None = None, live_memory: bool = False) -> list[dict]:
    rows = []
    if not as_json:
        header(f"{model}, batch {batch}, {size}x{size}, {steps} timed steps", live_memory)
    for T in Ts:
        for method in methods:
            row = measure_in_subprocess(model, method, T, batch, size, steps, window_mb, store_mb, live_memory)
            rows.append(row)
            print_row(row, as_json)
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="training-step time and memory of bptt / ssf / dsr")
    p.add_argument("--model", default="resnet19")
    p.add_argument("--T", type=int, nargs="+", default=[2, 4, 6, 8, 16])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32, help="input height and width")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=list(METHODS), help="names, ':faithful' for the per-step variants")
    p.add_argument("--window-mb", dest="window_mb", type=float, default=None,
                   help="ssf/dsr: MiB of float32 per time window of the spiking forward (default: the method's)")
    p.add_argument("--store-mb", dest="store_mb", type=float, default=None,
                   help="ssf/dsr: MiB of float32 of its input a BN layer keeps instead of recomputing it per window "
                        "(default: the method's, 64; 0 = keep nothing)")
    p.add_argument("--live-memory", dest="live_memory", action="store_true",
                   help="measure memory with glibc returning freed blocks at once (MALLOC_MMAP_THRESHOLD_=65536): "
                        "peak RSS then follows live tensors; step times of this mode are not representative")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda a: (run(a.model, a.T, a.batch, a.size, a.steps, a.methods, a.json, a.window_mb,
                                       a.store_mb, a.live_memory), 0)[1])
