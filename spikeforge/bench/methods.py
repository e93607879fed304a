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

Every row also carries ``ops_per_step``: the aten ops one more step dispatches (counted by
:class:`~spikeforge.bench.dispatch.OpCounter`; on a GPU about one launch each), the figure that shows how a
method's work is cut into pieces as T grows; and, for ``ssf``/``dsr``, ``window_mb``, the window budget the
method took for the device. ``--compile [MODE]`` times the step of ``torch.compile(model, mode=MODE)`` (the
first step, which compiles, is the warm-up; ``reduce-overhead`` on CUDA replays CUDA graphs).

``--device cuda``: model and batch on the GPU, each step timed between ``torch.cuda.synchronize()``
calls, and memory is ``torch.cuda.max_memory_allocated()`` above the allocation before the first step
(after ``reset_peak_memory_stats``; ``"memory": "cuda_max_allocated"`` in the row); ``--live-memory``
is a CPU option. Rows carry ``device`` and ``device_name``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import torch

from spikeforge.bench.device import add_device_argument, device_fields, median_ms, peak_mb, resolve_device, start_peak
from spikeforge.bench.dispatch import OpCounter

__all__ = ["add_parser", "measure_in_subprocess", "measure_one", "run"]

METHODS = ("bptt", "ssf", "dsr", "ssf:faithful", "dsr:faithful")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure_one(model_name: str, method: str, T: int | None, batch: int, size: int, steps: int, seed: int = 0,
                window_mb: float | None = None, store_mb: float | None = None, device: str = "cpu",
                compile_mode: str | None = None) -> dict:
    """Run in the current process (the CLI runs it in a fresh subprocess per configuration)."""
    from spikeforge.methods import get_method
    from spikeforge.models import create_model

    dev = resolve_device(device)
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
        return {"method": method, "model": model_name, "T": T, "batch": batch, **device_fields(dev), "error": str(err)}
    shape = [size if d is None else d for d in model.input_shape]
    if len(shape) == 3 and model.input_shape[1] is None:
        shape[1:] = [size, size]
    model = model.to(dev)
    x = torch.rand(batch, *shape).to(dev)
    y = torch.randint(0, model.num_classes, (batch,)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    net = model if compile_mode is None else torch.compile(model, mode=compile_mode)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        opt.step()

    row = {"method": method, "model": model_name, "T": T, "batch": batch, **time_and_memory(step, steps, dev)}
    if compile_mode is None:  # a compiled step dispatches inside its own graphs: not counted
        with OpCounter() as count:
            step()
        row["ops_per_step"] = count.ops
    else:
        row["compile"] = compile_mode
    if m.one_step:
        row["window_mb"] = m.window_budget(dev).window_bytes / 2**20
    return {**row, "input": shape, "num_classes": model.num_classes, "threads": torch.get_num_threads(),
            "torch": torch.__version__, **device_fields(dev)}


def time_and_memory(step, steps: int, dev: torch.device) -> dict:
    """``step_ms`` (median of ``steps`` after one warm-up step) and ``peak_mem_mb`` of ``step`` on ``dev``.

    CPU: peak RSS of this process minus its RSS before the warm-up; CUDA: ``max_memory_allocated``
    above the allocation before the warm-up (synchronised timings).
    """
    base = _rss_mb() if dev.type == "cpu" else start_peak(dev)
    ms = median_ms(step, steps, dev)  # one warm-up step first (first-use kernel builds, allocator growth)
    if dev.type == "cuda":
        return {"step_ms": ms, "peak_mem_mb": peak_mb(dev, base), "memory": "cuda_max_allocated"}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB on Linux
    return {"step_ms": ms, "peak_mem_mb": peak - base}


#: glibc setting under which peak RSS follows live memory (``--live-memory``).
LIVE_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def run_python(code: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -c code`` in a fresh process that imports this same spikeforge (also from a source tree)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, **(extra_env or {})}
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)


def last_json(proc: subprocess.CompletedProcess, failed: dict) -> dict:
    """The JSON object a measuring subprocess printed last, or ``failed`` with its last stderr line as ``error``."""
    if proc.returncode != 0:
        return {**failed, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_in_subprocess(model: str, method: str, T: int | None, batch: int, size: int, steps: int,
                          window_mb: float | None = None, store_mb: float | None = None,
                          live_memory: bool = False, device: str = "cpu", compile_mode: str | None = None) -> dict:
    """:func:`measure_one` in a fresh Python process (so its peak RSS is this configuration's alone)."""
    code = ("import json; from spikeforge.bench.methods import measure_one; print(json.dumps(measure_one("
            f"{model!r}, {method!r}, {T!r}, {batch}, {size}, {steps}, window_mb={window_mb!r}, store_mb={store_mb!r}, "
            f"device={device!r}, compile_mode={compile_mode!r})))")
    proc = run_python(code, LIVE_MEMORY_ENV if live_memory else None)
    row = last_json(proc, {"method": method, "model": model, "T": T, "batch": batch, "device": device})
    if "error" not in row and row["device"] == "cpu":
        row["memory"] = "live" if live_memory else "rss"
    return row


def print_row(row: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
    elif "error" in row:
        print(f"{row['model']:26s} {row['method']:14s} {row['T']!s:>3s}  not run: {row['error']}", flush=True)
    else:
        print(f"{row['model']:26s} {row['method']:14s} {row['T']:3d} {row['step_ms']:10.1f} {row['peak_mem_mb']:10.1f} "
              f"{row.get('ops_per_step', '-'):>9}", flush=True)


def header(text: str, live_memory: bool = False, device: str = "cpu") -> None:
    if device == "cuda":
        text += ("; peak_mem = torch.cuda.max_memory_allocated above the allocation before the first step "
                 "(synchronised timings)")
    elif live_memory:
        text += ("; peak_mem = peak RSS above the RSS before the first step, in a fresh process with "
                 "MALLOC_MMAP_THRESHOLD_=65536 (freed blocks unmapped: follows live memory; times not representative)")
    else:
        text += ("; peak_mem = peak RSS of a fresh process minus its RSS before the first step "
                 "(the CPU allocator keeps no peak statistics; glibc's retained free heap included)")
    print(text)
    print(f"{'model':26s} {'method':14s} {'T':>3s} {'step ms':>10s} {'peak MiB':>10s} {'ops/step':>9s}")


def run(model: str, Ts: list[int], batch: int, size: int, steps: int, methods: list[str], as_json: bool,
        window_mb: float | None = None, store_mb: float | None = None, live_memory: bool = False,
        device: str = "cpu", compile_mode: str | None = None) -> list[dict]:
    dev = resolve_device(device)  # a clear error here, before any subprocess starts
    if live_memory and dev.type == "cuda":
        raise ValueError("bench methods: --live-memory is a CPU option (on CUDA memory is torch.cuda.max_memory_allocated)")
    rows = []
    if not as_json:
        header(f"{model}, batch {batch}, {size}x{size}, {steps} timed steps, {device_fields(dev)['device_name']}",
               live_memory, dev.type)
    for T in Ts:
        for method in methods:
            row = measure_in_subprocess(model, method, T, batch, size, steps, window_mb, store_mb, live_memory, dev.type,
                                        compile_mode)
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
                   help="ssf/dsr: MiB of float32 per time window of the spiking forward (default: sized by the device)")
    p.add_argument("--store-mb", dest="store_mb", type=float, default=None,
                   help="ssf/dsr: MiB of float32 of its input a BN layer keeps instead of recomputing it per window "
                        "(default: sized by the device, 64 on the CPU; 0 = keep nothing)")
    p.add_argument("--live-memory", dest="live_memory", action="store_true",
                   help="measure memory with glibc returning freed blocks at once (MALLOC_MMAP_THRESHOLD_=65536): "
                        "peak RSS then follows live tensors; step times of this mode are not representative")
    p.add_argument("--compile", dest="compile_mode", nargs="?", const="default", default=None, metavar="MODE",
                   help="torch.compile the model with this mode (default; reduce-overhead: CUDA graphs); the first, "
                        "compiling step is the warm-up")
    p.add_argument("--json", action="store_true")
    add_device_argument(p)
    p.set_defaults(func=lambda a: (run(a.model, a.T, a.batch, a.size, a.steps, a.methods, a.json, a.window_mb,
                                       a.store_mb, a.live_memory, a.device, a.compile_mode), 0)[1])
