"""The subcommands that read a run or a checkpoint: ``eval``, ``plot``, ``analyze``, ``quantize``, ``energy``,
``export`` (wired in by ``spikeforge.cli``).

Every command loads a checkpoint written by ``spikeforge train`` (:mod:`.checkpoint`) and builds its model
from the checkpoint's own resolved config, or, for the tools' commands, from ``--recipe NAME`` when given
(then the checkpoint must hold that recipe's model); ``--data-dir`` sets ``data.root``. Bad input raises
``ValueError`` naming it; the main CLI prints it and exits with 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from spikeforge.commands.checkpoint import evaluate_checkpoint, load_test_set, load_trained
from spikeforge.train.batches import model_input
from spikeforge.train.checkpoint import load_checkpoint
from spikeforge.train.evaluate import evaluate

__all__ = ["add_eval_parser", "add_plot_parser", "add_threads", "add_tool_parsers", "set_threads"]


def add_threads(p: argparse.ArgumentParser,
                text: str = "torch CPU threads of this process (default: torch's; 1 is fastest for small models)") -> None:
    """The ``--threads N`` flag (read by :func:`set_threads`)."""
    p.add_argument("--threads", type=int, metavar="N", help=text)


def set_threads(args: argparse.Namespace) -> None:
    """``--threads``: ``torch.set_num_threads``; raises ``ValueError`` below 1."""
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)


def _accuracy(model: nn.Module, data: Dataset, batch_size: int = 256) -> float:
    return evaluate(model, DataLoader(data, batch_size=batch_size), desc="test")["acc"]


# -------------------------------------------------------------------------------------------------- eval
def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    """``spikeforge eval``: a checkpoint's accuracy and loss on a split of its data set."""
    p = sub.add_parser("eval", help="evaluate a checkpoint on its data set's test split")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a run directory (its best.pt, else last.pt) or a last.pt/best.pt of `spikeforge train`")
    p.add_argument("--data-dir", dest="data_dir", help="the data set's files (default: the run's data.root)")
    p.add_argument("--split", default="test", help="test (default), val or train")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    add_threads(p)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from spikeforge.train.rundir import checkpoint_path

    set_threads(args)
    path = checkpoint_path(args.checkpoint, prefer=("best.pt", "last.pt"), flag="--checkpoint")
    res = evaluate_checkpoint(path, args.data_dir, args.split, args.device, args.batch_size)
    print(f"{args.split} accuracy: {100 * res['acc']:.2f} %  loss {res['loss']:.4f}")
    return 0


# -------------------------------------------------------------------------------------------------- plot
def add_plot_parser(sub: argparse._SubParsersAction) -> None:
    """``spikeforge plot RUN_DIR``: the run's curves, firing rates and a spike raster as PNGs."""
    p = sub.add_parser("plot", help="PNG plots of a run directory: loss/accuracy curves, firing rates, spike raster")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--sample", type=int, default=0, help="test sample of the raster (default 0)")
    p.add_argument("--neurons", type=int, default=32, help="neurons per layer in the raster (default 32)")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from spikeforge.commands.plot import plot_run

    for path in plot_run(args.run_dir, args.sample, args.neurons):
        print(path)
    return 0


# ------------------------------------------------------------------------------ analyze, quantize, energy, export


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


def _cmd_analyze(args: argparse.Namespace) -> int:
    from spikeforge.commands.analyze import analyze

    cfg, model = load_trained(args.checkpoint, args.recipe, args.data_dir)
    summary = analyze(model, load_test_set(cfg, None), args.out, samples=tuple(args.samples),
                      max_samples=args.max_samples, neurons=args.neurons)
    print((Path(args.out) / "summary.txt").read_text(), end="")
    print(f"wrote {', '.join(summary['figures'])}, summary.json, summary.txt to {args.out}")
    return 0


# --------------------------------------------------------------------------------------------- quantize
def _cmd_quantize(args: argparse.Namespace) -> int:
    from spikeforge.tools.quantize import check_bits, quantize_weights

    check_bits(args.bits)
    cfg, model = load_trained(args.checkpoint, args.recipe, args.data_dir)
    data = load_test_set(cfg, args.max_samples)
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
    from spikeforge.tools.energy import count_energy

    cfg, model = load_trained(args.checkpoint, args.recipe, args.data_dir)
    data = load_test_set(cfg, args.max_samples)
    x = next(iter(DataLoader(data, batch_size=len(data))))[0]
    report = count_energy(model, model_input(model, x), e_ac_pj=args.e_ac, e_mac_pj=args.e_mac)
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
