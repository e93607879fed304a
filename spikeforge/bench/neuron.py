"""``spikeforge bench neuron``: multi-step LIF forward and forward+backward, per implementation.

Implementations, all on the same input ``[T, numel]`` (LIF τ = 2, ``decay_input=True``, hard reset
to 0, detached reset, ATan α = 2, V_th = 1):
- every registered kernel but ``auto`` (``torch`` is the naive autograd loop over T); for ``triton`` also a
  row with H always stored (``KERNELS.get("triton", recompute_max_t=0)``), the other side of its choice for
  short sequences;
- SpikingJelly's multi-step ``LIFNode`` when it is installed (``pip install --no-deps
  spikingjelly==2.0.0 loguru``). On CPU its 2.0.0 release runs the custom op ``sj_lif`` (a per-step
  torch loop forward and a hand-written per-step backward, ``spikingjelly/_ops/lif/cpu.py``). On
  CUDA it picks its own implementation (``cuda``, i.e. its compiled kernels, else ``triton``, else
  ``torch``; the environment variable ``SJ_LIF_CUDA_IMPLEMENTATION`` forces one); the row names the
  one it ran.
- ``--device cuda`` adds a reference row ``torch copy_``: ``y.copy_(x)`` on a ``[T, numel]`` fp32
  tensor, whose bytes per second (read + write) are the device's copy bandwidth in the same run.
``--dtype bfloat16 float16`` runs the layer on that input (and spikes and gradients), as under ``torch.amp``.
Reported: median milliseconds of the forward (autograd recording) and of forward+backward, and the
bytes of the tensors saved for backward (counted once per storage with ``saved_tensors_hooks``); on
CUDA (``--device cuda``) the timings are synchronised and ``peak_mem_mb`` is the
``torch.cuda.max_memory_allocated`` of one forward+backward above the inputs. For spikeforge's fused
kernels also ``kernel_bytes``, what their forward and backward ops read and write in one forward+backward
(:class:`~spikeforge.bench.dispatch.KernelTraffic`: 24 bytes per element and step here in float32, 20 where
the Triton kernel recomputes H), and
``kernel_gb_per_s`` = kernel_bytes / fwd+bwd time; on CUDA ``copy_fraction`` = that rate over the
``torch copy_`` row's of the same T.
"""
from __future__ import annotations

import argparse
import json
import warnings
from typing import Callable, Iterator

import torch
from torch import Tensor

from spikeforge.bench.device import add_device_argument, device_fields, median_ms, peak_mb, resolve_device, start_peak
from spikeforge.bench.dispatch import KernelTraffic

__all__ = ["add_parser", "implementations", "measure", "run"]

Impl = Callable[[Tensor], Tensor]


def _spikeforge_impl(kernel: str, device: torch.device) -> Impl:
    from spikeforge.neuron import LIFNode

    return LIFNode(tau=2.0, backend=kernel).to(device)


def spikingjelly_version() -> str:
    try:
        from importlib.metadata import version

        return version("spikingjelly")
    except Exception:  # noqa: BLE001 - imported from a source tree
        return "?"


def spikingjelly_cuda_implementation(op: str, device: torch.device) -> str:
    """Which CUDA implementation SpikingJelly 2.0 selected for its op ``op`` (``lif``, ``if_``) on ``device``:
    ``cuda`` (its compiled kernels), ``triton`` or ``torch``; read after a first call (private API)."""
    try:
        import importlib

        selection = importlib.import_module(f"spikingjelly._ops.{op}")._selection
        chosen = selection._selections[device.index if device.index is not None else torch.cuda.current_device()]
        return str(chosen.name)
    except Exception:  # noqa: BLE001 - another release: say so rather than guess
        return "unknown (selection not readable)"


def _h_always_stored(device: torch.device) -> Impl:
    """The bench's LIF on the Triton kernel built with ``recompute_max_t=0`` (H stored at every T), called as the
    node calls its kernel (the same per-call coefficients)."""
    from spikeforge.neuron import LIFNode
    from spikeforge.neuron.kernels import KERNELS

    node = LIFNode(tau=2.0, backend="triton").to(device)
    kernel = KERNELS.get("triton", recompute_max_t=0)

    def run(x: Tensor) -> Tensor:
        decay, gain = node.coefficients(x)
        return kernel(x, None, decay, gain, node.threshold(x), node.spec)[0]

    return run


def _spikingjelly_impl(device: torch.device) -> tuple[str, Impl] | None:
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except Exception:  # not installed, or not importable beside this torch
        return None
    node = neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                          surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")

    def run(x: Tensor) -> Tensor:
        node.reset()
        return node(x)

    name = f"spikingjelly-{spikingjelly_version()} LIFNode(step_mode='m')"
    if device.type == "cuda":
        try:  # its CUDA implementation is selected (and possibly built) at the first call
            run(torch.zeros(2, 8, device=device, requires_grad=True)).sum().backward()
        except Exception as err:  # noqa: BLE001 - reported as the row's error
            return f"{name}, CUDA", RuntimeError(f"spikingjelly's LIFNode failed on CUDA: {type(err).__name__}: {err}")
        return f"{name}, CUDA implementation {spikingjelly_cuda_implementation('lif', device)}", run
    return f"{name}, CPU op sj_lif", run


def implementations(kernels: list[str] | None = None, device: str | torch.device = "cpu") -> Iterator[tuple[str, Impl]]:
    """``(name, impl)`` per implementation, SpikingJelly's last (its set-up may build kernels); ``impl`` is
    an exception where an installed implementation failed to set up."""
    from spikeforge.neuron.kernels import KERNELS

    dev = torch.device(device)
    for name in kernels or [n for n in KERNELS.names() if n != "auto"]:
        kernel = KERNELS.get(name)
        reason = kernel.unavailable(torch.zeros(1, 1, device=dev), _bench_rule())
        if reason is None:
            yield f"spikeforge-{name}" + (" (naive autograd loop)" if name == "torch" else ""), _spikeforge_impl(name, dev)
            if name == "triton":
                yield "spikeforge-triton, H stored (recompute_max_t=0)", _h_always_stored(dev)
    sj = _spikingjelly_impl(dev)
    if sj is not None:
        yield sj


def _bench_rule():
    from spikeforge.neuron import surrogate
    from spikeforge.neuron.kernels.base import NeuronSpec

    return NeuronSpec(v_reset=0.0, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))


def saved_bytes(impl: Impl, x: Tensor) -> int:
    """Bytes of distinct storages autograd keeps for backward during one forward."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = impl(x)
    del out
    return sum(seen.values())


def measure(impl: Impl, T: int, numel: int, repeats: int = 5, seed: int = 0,
            device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """``fwd_ms``, ``fwdbwd_ms`` (medians), ``saved_bytes``; on CUDA also ``peak_mem_mb`` of one forward+backward;
    ``kernel_bytes`` and ``kernel_gb_per_s`` where spikeforge ops ran (:class:`KernelTraffic`)."""
    dev = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, numel, generator=g) * 1.5).to(dev, dtype).requires_grad_()
    grad = torch.rand(T, numel, generator=g).to(dev, dtype)

    def fwd() -> None:
        impl(x)

    def fwdbwd() -> None:
        impl(x).backward(grad)
        x.grad = None

    times = {}
    for key, fn in (("fwd_ms", fwd), ("fwdbwd_ms", fwdbwd)):
        times[key] = median_ms(fn, repeats, dev)  # one warm-up call first (and first-use compilation)
    if dev.type == "cuda":
        base = start_peak(dev)
        fwdbwd()
        times["peak_mem_mb"] = peak_mb(dev, base)
    times["saved_bytes"] = saved_bytes(impl, x)
    with KernelTraffic() as traffic:
        fwdbwd()
    if traffic.total:
        times["kernel_bytes"] = traffic.total
        times["kernel_gb_per_s"] = traffic.total / (times["fwdbwd_ms"] * 1e-3) / 1e9
    return times


def copy_bandwidth(T: int, numel: int, repeats: int, dev: torch.device) -> dict[str, float]:
    """``y.copy_(x)`` on ``[T, numel]`` fp32: milliseconds and GB/s counting its read and its write."""
    x = torch.rand(T, numel, device=dev)
    y = torch.empty_like(x)
    ms = median_ms(lambda: y.copy_(x), repeats, dev)
    return {"copy_ms": ms, "bytes": 2 * x.numel() * 4, "gb_per_s": 2 * x.numel() * 4 / (ms * 1e-3) / 1e9}


def _each(source: Iterator, seen: list) -> Iterator:
    """The items of ``seen``, then the rest of ``source`` (appended to ``seen`` as they come)."""
    yield from list(seen)
    for item in source:
        seen.append(item)
        yield item


#: ``--dtype`` names: the input, spikes and gradients of the layer (its state is float32 in every kernel)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def run(Ts: list[int], numel: int, repeats: int, as_json: bool, kernels: list[str] | None = None,
        device: str = "cpu", dtypes: list[str] | None = None) -> list[dict]:
    dev = resolve_device(device)
    dtypes = dtypes or ["float32"]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise ValueError(f"--dtype: unknown {unknown}; choose from {list(DTYPES)}")
    rows = []
    impls: list[tuple[str, Impl]] = []
    source = implementations(kernels, dev)  # drawn while the first T runs: our rows come before SpikingJelly's set-up
    where = device_fields(dev)
    if not as_json:
        threads = f"{torch.get_num_threads()} threads" if dev.type == "cpu" else "synchronised timings"
        print(f"multi-step LIF, {'/'.join(dtypes)}, numel={numel}, torch {torch.__version__}, {where['device_name']}, "
              f"{threads}")
        print(f"{'impl':60s} {'T':>3s} {'dtype':>8s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'saved MiB':>10s} "
              f"{'kernel GB/s':>11s}")

    def emit(row: dict) -> None:
        rows.append(row)
        if as_json:
            print(json.dumps(row), flush=True)
        elif "error" in row:
            print(f"{row['impl']:60s} {row['T']:3d} {row.get('dtype', ''):>8s}  not run: {row['error']}", flush=True)
        elif "copy_ms" in row:
            print(f"{row['impl']:60s} {row['T']:3d} {row['dtype']:>8s} {row['copy_ms']:9.3f} {'':11s} {'':10s} "
                  f"{row['gb_per_s']:.0f} GB/s", flush=True)
        else:
            rate = f"{row['kernel_gb_per_s']:11.1f}" if "kernel_gb_per_s" in row else f"{'-':>11s}"
            share = f" ({100 * row['copy_fraction']:.0f}% of copy)" if "copy_fraction" in row else ""
            print(f"{row['impl']:60s} {row['T']:3d} {row['dtype']:>8s} {row['fwd_ms']:9.3f} {row['fwdbwd_ms']:11.3f} "
                  f"{row['saved_bytes'] / 2**20:10.1f} {rate}{share}", flush=True)

    for T in Ts:
        copy = None
        if dev.type == "cuda":
            copy = copy_bandwidth(T, numel, repeats, dev)
            emit({"impl": "torch copy_ (device copy bandwidth)", "T": T, "numel": numel,
                  **copy, **where, "dtype": "float32", "torch": torch.__version__})
        for dtype in dtypes:
            for name, impl in _each(source, impls):
                row = {"impl": name, "T": T, "numel": numel, **where, "dtype": dtype, "torch": torch.__version__}
                if isinstance(impl, Exception):
                    emit({**row, "error": str(impl)})
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        m = measure(impl, T, numel, repeats, device=dev, dtype=DTYPES[dtype])
                except (RuntimeError, TypeError, ValueError) as err:  # e.g. an implementation without this dtype
                    emit({**row, "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"})
                    continue
                if copy is not None and "kernel_gb_per_s" in m:
                    m["copy_fraction"] = m["kernel_gb_per_s"] / copy["gb_per_s"]
                emit({**row, **m})
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neuron", help="multi-step LIF kernels vs the naive loop and SpikingJelly")
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--numel", type=int, default=1 << 20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--kernels", nargs="+", help="kernel names (default: every registered kernel but auto)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPES),
                   help="input/spike/gradient dtypes to run (default float32; bfloat16/float16: the torch.amp case)")
    add_device_argument(p)
    p.set_defaults(func=lambda a: (run(a.T, a.numel, a.repeats, a.json, a.kernels, a.device, a.dtype), 0)[1])
