"""``spikeforge bench models``: one training step (forward + backward + SGD step) of whole zoo models.

Each model runs at its own T and input shape (``None`` dims take ``--size``) in a fresh subprocess, under
``--method``; reported as the median step time and the peak memory of a step
(:func:`spikeforge.bench.methods.measure_one`: peak RSS above the idle baseline on CPU,
``torch.cuda.max_memory_allocated`` above it with ``--device cuda``). ``--json``: one object per line with
keys ``method, model, T, batch, step_ms, peak_mem_mb, device, device_name``.

``--compare-spikingjelly``: after each ``sew_resnet{18,34,50,101,152}``, the same step of SpikingJelly's
own model of that name (``spikingjelly.activation_based.model.sew_resnet``: ``cnf="ADD"``, its multi-step
``IFNode`` with V_th = 1, V_reset = 0, detached reset, ATan α = 2 — the neuron of ours, SPEC §7.1 —
``functional.set_step_mode(net, "m")`` and ``functional.reset_net`` before every step) at the same
input: the batch ``[B, 3, H, W]`` repeated over T inside the step, cross-entropy of the time-mean
output, SGD with momentum, BPTT. Its row names the CUDA implementation SpikingJelly chose for the
neuron. Its model zoo module imports torchvision only for ``load_state_dict_from_url`` (pretrained
weights, unused here); where torchvision is not installed at all, that one name is supplied from
``torch.hub`` (the function torchvision re-exports) and the row says so. Where SpikingJelly still does
not import, a row with ``error`` says why. A ``sew_resnet`` row of ours and SpikingJelly's are
followed, in text mode, by the ratios theirs / ours of step time and memory.
"""
from __future__ import annotations

import argparse
from typing import Any

import torch

from spikeforge.bench.device import add_device_argument, device_fields, resolve_device
from spikeforge.bench.methods import header, last_json, measure_in_subprocess, print_row, run_python

__all__ = ["SPIKINGJELLY_COUNTERPARTS", "add_parser", "measure_spikingjelly_one", "run"]

#: our model -> SpikingJelly's builder of the same network in ``spikingjelly.activation_based.model.sew_resnet``
SPIKINGJELLY_COUNTERPARTS = {f"sew_resnet{d}": f"sew_resnet{d}" for d in (18, 34, 50, 101, 152)}


def _import_spikingjelly_zoo() -> tuple[Any, str | None]:
    """``(spikingjelly.activation_based.model.sew_resnet, note)``; ``note`` says when torchvision was supplied."""
    import importlib.util
    import sys
    import types

    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        # sew_resnet.py's only torchvision import is load_state_dict_from_url (pretrained weights)
        tv = types.ModuleType("torchvision")
        tv.__path__ = []
        tv.spikeforge_stand_in = True
        utils = types.ModuleType("torchvision._internally_replaced_utils")
        utils.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        tv._internally_replaced_utils = utils
        sys.modules["torchvision"] = tv
        sys.modules["torchvision._internally_replaced_utils"] = utils
    note = None
    if getattr(sys.modules.get("torchvision"), "spikeforge_stand_in", False):
        note = "torchvision not installed: its load_state_dict_from_url taken from torch.hub (no pretrained weights used)"
    from spikingjelly.activation_based.model import sew_resnet

    return sew_resnet, note


def measure_spikingjelly_one(arch: str, T: int, batch: int, size: int, steps: int, num_classes: int = 1000,
                             seed: int = 0, device: str = "cpu") -> dict:
    """One BPTT training step of SpikingJelly's ``arch`` (run in a fresh subprocess by :func:`run`)."""
    from spikeforge.bench.methods import time_and_memory
    from spikeforge.bench.neuron import spikingjelly_cuda_implementation, spikingjelly_version

    dev = resolve_device(device)
    impl = f"spikingjelly-{spikingjelly_version()} {arch}"
    row: dict[str, Any] = {"impl": impl, "method": "bptt", "model": f"spikingjelly:{arch}", "T": T, "batch": batch}
    try:
        sew_resnet, note = _import_spikingjelly_zoo()
        from spikingjelly.activation_based import functional, neuron, surrogate
    except Exception as err:  # noqa: BLE001 - not installed, or not importable beside this torch
        return {**row, **device_fields(dev), "error": f"spikingjelly's model zoo does not import: {type(err).__name__}: {err}"}
    torch.manual_seed(seed)
    net = getattr(sew_resnet, arch)(cnf="ADD", spiking_neuron=neuron.IFNode, num_classes=num_classes,
                                    surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=True,
                                    v_threshold=1.0, v_reset=0.0)
    functional.set_step_mode(net, "m")
    net = net.to(dev)
    x = torch.rand(batch, 3, size, size).to(dev)
    y = torch.randint(0, num_classes, (batch,)).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        functional.reset_net(net)
        x_seq = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)  # [T, B, 3, H, W], as ours repeats a static batch
        loss_fn(net(x_seq).mean(0), y).backward()
        opt.step()

    row.update(time_and_memory(step, steps, dev))
    row.update({"input": [3, size, size], "threads": torch.get_num_threads(), "torch": torch.__version__,
                **device_fields(dev)})
    if dev.type == "cuda":
        row["neuron_implementation"] = spikingjelly_cuda_implementation("if_", dev)
    if note:
        row["note"] = note
    return row


def _spikingjelly_in_subprocess(arch: str, T: int, batch: int, size: int, steps: int, num_classes: int,
                                device: str) -> dict:
    code = ("import json; from spikeforge.bench.models import measure_spikingjelly_one; print(json.dumps("
            f"measure_spikingjelly_one({arch!r}, {T}, {batch}, {size}, {steps}, {num_classes}, device={device!r})))")
    row = last_json(run_python(code), {"impl": f"spikingjelly {arch}", "method": "bptt", "model": f"spikingjelly:{arch}",
                                        "T": T, "batch": batch, "device": device})
    if "error" not in row and row["device"] == "cpu":
        row["memory"] = "rss"
    return row


def _print_ratio(ours: dict, theirs: dict) -> None:
    if "error" in ours or "error" in theirs:
        return
    mem = (f"{theirs['peak_mem_mb'] / ours['peak_mem_mb']:.2f}" if ours["peak_mem_mb"] > 0 else "n/a")
    print(f"{'':26s} spikingjelly / spikeforge: step time {theirs['step_ms'] / ours['step_ms']:.2f}, memory {mem}",
          flush=True)


def run(models: list[str], method: str, batch: int, size: int, steps: int, as_json: bool, device: str = "cpu",
        compare_spikingjelly: bool = False) -> list[dict]:
    from spikeforge.models import list_models

    names = [name for pattern in models for name in list_models(pattern)]
    if not names:
        raise ValueError(f"bench models: no registered model matches {models}; see `spikeforge models`")
    dev = resolve_device(device)  # a clear error here, before any subprocess starts
    if not as_json:
        header(f"{method}, batch {batch}, free input dims {size}, {steps} timed steps, {device_fields(dev)['device_name']}",
               device=dev.type)
    rows = []
    for name in names:
        row = measure_in_subprocess(name, method, None, batch, size, steps, device=dev.type)
        rows.append(row)
        print_row(row, as_json)
        if compare_spikingjelly and name in SPIKINGJELLY_COUNTERPARTS:
            if method != "bptt":
                sj = {"impl": "spikingjelly", "method": method, "model": f"spikingjelly:{SPIKINGJELLY_COUNTERPARTS[name]}",
                      "T": row.get("T"), "batch": batch, **device_fields(dev),
                      "error": f"spikingjelly's model trains with BPTT only; compare with --method bptt (got {method!r})"}
            elif "error" in row:
                sj = {"impl": "spikingjelly", "method": method, "model": f"spikingjelly:{SPIKINGJELLY_COUNTERPARTS[name]}",
                      "T": row.get("T"), "batch": batch, **device_fields(dev),
                      "error": f"not run: the spikeforge row of {name} failed"}
            else:
                sj = _spikingjelly_in_subprocess(SPIKINGJELLY_COUNTERPARTS[name], row["T"], batch, size, steps,
                                                 row["num_classes"], dev.type)
            rows.append(sj)
            print_row(sj, as_json)
            if not as_json:
                _print_ratio(row, sj)
    if compare_spikingjelly and not any(n in SPIKINGJELLY_COUNTERPARTS for n in names):
        sj = {"impl": "spikingjelly", "method": method, "model": "spikingjelly", "T": None, "batch": batch,
              **device_fields(dev), "error": f"no SpikingJelly counterpart among {names}; it has one for "
                                             f"{', '.join(SPIKINGJELLY_COUNTERPARTS)}"}
        rows.append(sj)
        print_row(sj, as_json)
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="training-step time and memory of whole zoo models")
    p.add_argument("--model", nargs="+", default=["digits_snn"], help="names or patterns, e.g. 'yao_*'")
    p.add_argument("--method", default="bptt")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32, help="free input height/width")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--compare-spikingjelly", dest="compare_spikingjelly", action="store_true",
                   help="after each sew_resnet*, the same BPTT step of SpikingJelly's model of that name (where it imports)")
    p.add_argument("--json", action="store_true")
    add_device_argument(p)
    p.set_defaults(func=lambda a: (run(a.model, a.method, a.batch, a.size, a.steps, a.json, a.device,
                                       a.compare_spikingjelly), 0)[1])
