"""CLI subcommands of the tools: ``analyze``, ``quantize``, ``energy``, ``export`` (wired in by ``spikeforge.cli``).

Every command loads a checkpoint written by ``spikeforge train`` and builds its model from the
checkpoint's own resolved config, or from ``--recipe NAME`` when given (then the checkpoint must hold
that recipe's model); ``--data-dir`` sets ``data.root``. Bad input raises ``ValueError`` naming it;
the main CLI prints it and exits with 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["add_tool_parsers", "load_trained"]


def load_trained(checkpoint: str, recipe: str | None = None, data_dir: str | None = None) -> tuple[dict[str, Any], nn.Module]:
    """``(config, model in eval mode with the checkpoint's weights)``.

    Raises:
        ValueError: an unreadable checkpoint, an unknown recipe, or weights that do not fit the model
            the config builds (a checkpoint from another model), naming both.
    """
    from spikeforge.train.builders import build_model
    from spikeforge.train.config import load_recipe
    from spikeforge.train.engine import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    cfg = load_recipe(recipe) if recipe else ckpt["config"]
    if data_dir is not None:
        cfg["data"]["root"] = data_dir
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        saved = ckpt["config"]["model"]["name"]
        lines = str(err).splitlines()
        detail = (lines[1] if len(lines) > 1 else lines[0]).strip()
        detail = detail if len(detail) <= 240 else detail[:240] + " ..."
        raise ValueError(f"checkpoint {checkpoint!r} holds a {saved!r} model, which does not fit the "
                         f"{cfg['model']['name']!r} model of {'recipe ' + repr(recipe) if recipe else 'its config'}: "
                         f"{detail}") from None
    return cfg, model.eval()


def _test_set(cfg: dict[str, Any], max_samples: int | None) -> Dataset:
    from spikeforge.train.builders import build_datasets

    test = build_datasets(cfg)["test"]
    return test if max_samples is None else Subset(test, range(min(len(test), max_samples)))


def _accuracy(model: nn.Module, data: Dataset, batch_size: int = 256) -> float:
    from spikeforge.tools.analyze import batch_time_first

    correct = total = 0
    with torch.no_grad():
        for x, y in DataLoader(data, batch_size=batch_size):
            correct += int((model(batch_time_first(model, x)).argmax(1) == y).sum())
            total += int(y.numel())
    return correct / max(total, 1)


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--checkpoint", required=True, help="a last.pt / best.pt written by spikeforge train")
    p.add_argument("--recipe", help="build the model from this recipe instead of the checkpoint's config")
    if data:
        p.add_argument("--data-dir", dest="data_dir", help="data.root: the data set's files")
        p.add_argument("--max-samples", dest="max_samples", type=_positive(int), default=512,
                       help="use the first N test samples (default 512)")


# ---------------------------------------------------------------------------------------------- analyze
def _cmd_analyze(args: argparse.Namespace) -> int:
    from spikeforge.tools.analyze import analyze

    cfg, model = load_trained(args.checkpoint, args.recipe, args.data_dir)
    summary = analyze(model, _test_set(cfg, None), args.out, samples=tuple(args.samples),
                      max_samples=args.max_samples, neurons=args.neurons)
    print((Path(args.out) / "summary.txt").read_text(), end="")
    print(f"wrote {', '.join(summary['figures'])}, summary.json, summary.txt to {args.out}")
    return 0


# --------------------------------------------------------------------------------------------- quantize
def _cmd_quantize(args: argparse.Namespace) -> int:
    from spikeforge.tools.quantize import check_bits, quantize_weights
    from spikeforge.train.engine import load_checkpoint

    check_bits(args.bits)
    cfg, model = load_trained(args.checkpoint, args.recipe, args.data_dir)
    data = _test_set(cfg, args.max_samples)
    before = _accuracy(model, data)
    after = _accuracy(quantize_weights(model, args.bits), data)
    print(f"test accuracy on {len(data)} samples: 32-bit {100 * before:.2f} %, {args.bits}-bit {100 * after:.2f} %")
    if args.out:
        ckpt = load_checkpoint(args.checkpoint)
        ckpt.update(model=model.state_dict(), quantized_bits=args.bits)
        torch.save(ckpt, args.out)
        print(f"wrote {args.out}")
    return 0


# ----------------------------------------------------------------------------------------------- energy
def _cmd_energy(args: argparse.Namespace) -> int:
    from spikeforge.tools.analyze import batch_time_first
    from spikeforge.tools.energy import count_energy

    cfg, model = load_trained(args.checkpoint, args.recipe, args.data_dir)
    data = _test_set(cfg, args.max_samples)
    x = next(iter(DataLoader(data, batch_size=len(data))))[0]
    report = count_energy(model, batch_time_first(model, x), e_ac_pj=args.e_ac, e_mac_pj=args.e_mac)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"per sample, mean over {len(data)} test samples; {args.e_ac} pJ/AC, {args.e_mac} pJ/MAC (45 nm, Horowitz 2014)")
    print(f"{'layer':32s} {'input':5s} {'SOPs':>12s} {'MACs':>12s} {'SNN nJ':>9s} {'ANN MACs':>12s} {'ANN nJ':>9s}")
    for r in report.layers:
        print(f"{r.name:32s} {r.kind:5s} {r.sops:12.0f} {r.macs:12.0f} {r.energy_pj / 1e3:9.3f} {r.ann_macs:12.0f} "
              f"{r.ann_energy_pj / 1e3:9.3f}")
    t = report.to_dict()["total"]
    print(f"{'total':32s} {'':5s} {t['sops']:12.0f} {t['macs']:12.0f} {t['energy_pj'] / 1e3:9.3f} {t['ann_macs']:12.0f} "
          f"{t['ann_energy_pj'] / 1e3:9.3f}   SNN/ANN {report.to_dict()['snn_over_ann']:.3f}")
    return 0


# ----------------------------------------------------------------------------------------------- export
def _cmd_export(args: argparse.Namespace) -> int:
    from spikeforge.tools.nir import export_nir

    _, model = load_trained(args.checkpoint, args.recipe)
    shape = tuple(args.input_shape) if args.input_shape else None
    graph = export_nir(model, args.out, dt=args.dt, input_shape=shape)
    print(f"wrote {args.out}: {len(graph.nodes)} NIR nodes, {len(graph.edges)} edges, dt = {args.dt}")
    return 0


def add_tool_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``analyze``, ``quantize``, ``energy`` and ``export`` subcommands (each sets ``func``)."""
    p = sub.add_parser("analyze", help="firing-rate figures (PNG) and a JSON summary of a trained model")
    _common(p)
    p.add_argument("--out", required=True, help="directory for the PNGs, summary.json and summary.txt")
    p.add_argument("--samples", type=int, nargs="+", default=[0], help="test-set indices drawn one by one (default 0)")
    p.add_argument("--neurons", type=_positive(int), default=32, help="raster neurons per layer (default 32)")
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("quantize", help="post-training b-bit weights; test accuracy before and after")
    _common(p)
    p.add_argument("--bits", type=int, required=True, help="weight bits b in 2..16 (symmetric, per layer)")
    p.add_argument("--out", help="write the quantized checkpoint here")
    p.set_defaults(func=_cmd_quantize)

    p = sub.add_parser("energy", help="synaptic operations and energy per layer, SNN vs ANN")
    _common(p)
    p.add_argument("--e-ac", dest="e_ac", type=float, default=0.9, help="pJ per accumulate (default 0.9, 45 nm)")
    p.add_argument("--e-mac", dest="e_mac", type=float, default=4.6, help="pJ per multiply-accumulate (default 4.6)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=_cmd_energy)

    p = sub.add_parser("export", help="write the model in an interchange format (NIR)")
    _common(p, data=False)
    p.add_argument("--format", choices=("nir",), default="nir", help="nir: Neuromorphic Intermediate Representation")
    p.add_argument("--out", required=True, help="the file to write, e.g. model.nir")
    p.add_argument("--dt", type=_positive(float), default=1.0, help="time step that discretises NIR's neurons (default 1)")
    p.add_argument("--input-shape", dest="input_shape", type=int, nargs="+", help="one sample's shape, if the model's is open")
    p.set_defaults(func=_cmd_export)
