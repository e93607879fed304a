"""``spikeforge bench neuron``: multi-step LIF forward and forward+backward, per implementation.

Implementations, all on the same input ``[T, numel]`` (LIF τ = 2, ``decay_input=True``, hard reset
to 0, detached reset, ATan α = 2, V_th = 1):
- every registered kernel but ``auto`` (``torch`` is the naive autograd loop over T);
- SpikingJelly's multi-step ``LIFNode`` when it is installed (``pip install --no-deps
  spikingjelly==2.0.0 loguru``). On CPU its 2.0.0 release runs the custom op ``sj_lif`` (a per-step
  torch loop forward and a hand-written per-step backward, ``spikingjelly/_ops/lif/cpu.py``).
Reported: median milliseconds of the forward (autograd recording) and of forward+backward, and the
bytes of the tensors saved for backward (counted once per storage with ``saved_tensors_hooks``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from typing import Callable, Iterator

import torch
from torch import Tensor

__all__ = ["add_parser", "implementations", "measure", "run"]

Impl = Callable[[Tensor], Tensor]


def _spikeforge_impl(kernel: str) -> Impl:
    from spikeforge.neuron import LIFNode

    node = LIFNode(tau=2.0, backend=kernel)
    return node


def _spikingjelly_impl() -> tuple[str, Impl] | None:
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except Exception:  # not installed, or not importable beside this torch
        return None
    node = neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                          surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")

    def run(x: Tensor) -> Tensor:
        node.reset()
        return node(x)

    return "spikingjelly-2.0.0 LIFNode(step_mode='m'), CPU op sj_lif", run


def implementations(kernels: list[str] | None = None) -> Iterator[tuple[str, Impl]]:
    from spikeforge.neuron.kernels import KERNELS

    for name in kernels or [n for n in KERNELS.names() if n != "auto"]:
        kernel = KERNELS.get(name)
        reason = kernel.unavailable(torch.zeros(1, 1), _bench_rule())
        if reason is None:
            yield f"spikeforge-{name}" + (" (naive autograd loop)" if name == "torch" else ""), _spikeforge_impl(name)
    sj = _spikingjelly_impl()
    if sj is not None:
        yield sj


def _bench_rule():
    from spikeforge.neuron import surrogate
    from spikeforge.neuron.kernels.base import NeuronRule

    return NeuronRule(v_reset=0.0, detach_reset=True, strict=False, surrogate=surrogate.get("atan"))


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


def measure(impl: Impl, T: int, numel: int, repeats: int = 5, seed: int = 0) -> dict[str, float]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, numel, generator=g) * 1.5).requires_grad_()
    grad = torch.rand(T, numel, generator=g)

    def fwd() -> None:
        impl(x)

    def fwdbwd() -> None:
        impl(x).backward(grad)
        x.grad = None

    times = {}
    for key, fn in (("fwd_ms", fwd), ("fwdbwd_ms", fwdbwd)):
        fn()  # warm-up (and first-use compilation)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            samples.append(1e3 * (time.perf_counter() - start))
        times[key] = statistics.median(samples)
    times["saved_bytes"] = saved_bytes(impl, x)
    return times


def run(Ts: list[int], numel: int, repeats: int, as_json: bool, kernels: list[str] | None = None) -> list[dict]:
    rows = []
    impls = list(implementations(kernels))
    if not as_json:
        print(f"multi-step LIF, fp32, numel={numel}, torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{'impl':60s} {'T':>3s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'saved MiB':>10s}")
    for T in Ts:
        for name, impl in impls:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = measure(impl, T, numel, repeats)
            row = {"impl": name, "T": T, "numel": numel, **m, "device": "cpu", "dtype": "float32",
                   "torch": torch.__version__}
            rows.append(row)
            if as_json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{name:60s} {T:3d} {m['fwd_ms']:9.1f} {m['fwdbwd_ms']:11.1f} {m['saved_bytes'] / 2**20:10.1f}", flush=True)
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neuron", help="multi-step LIF kernels vs the naive loop and SpikingJelly")
    p.add_argument("--T", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--numel", type=int, default=1 << 20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--kernels", nargs="+", help="kernel names (default: every registered kernel but auto)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=lambda a: (run(a.T, a.numel, a.repeats, a.json, a.kernels), 0)[1])
