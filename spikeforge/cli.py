"""The ``spikeforge`` command line: ``train``, ``recipes``, ``models``, ``bench``, ``data``, and the commands that
read a run or a checkpoint (``eval``, ``plot``, ``analyze``, ``quantize``, ``energy``, ``export``:
:mod:`spikeforge.commands`).

Exit codes: 0 done, 1 the loss became NaN/inf (a checkpoint was saved) or a download failed on the
network (run it again to resume), 2 bad input (unknown names, missing files, bad options, a file that
fails its checksum), 3 the data set needs a manual download (the message says where and the layout),
130 interrupted by SIGINT (a checkpoint was saved).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from spikeforge.commands.subcommands import (
    add_eval_parser,
    add_plot_parser,
    add_threads,
    add_tool_parsers,
    set_threads,
)

__all__ = ["build_parser", "main"]


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a recipe (default: digits)",
                       description="Train from a recipe; several processes: torchrun --nproc-per-node N -m spikeforge train ...")
    p.add_argument("--recipe", help="recipe name (default: digits; see `spikeforge recipes`)")
    p.add_argument("--config", help="a YAML config file used instead of --recipe (e.g. a run's config.yaml)")
    g = p.add_argument_group("overrides (each maps to one config key; registry defaults < recipe < flags < --set)")
    g.add_argument("--data-dir", dest="data_dir", help="data.root: the data set's files")
    g.add_argument("--model", help="model.name")
    g.add_argument("--method", help="method.name: bptt, ssf or dsr")
    g.add_argument("--T", type=int, help="model.T: time steps")
    g.add_argument("--lr", type=float, help="optim.lr")
    g.add_argument("--epochs", type=int, help="train.epochs")
    g.add_argument("--batch-size", dest="batch_size", type=int, help="train.batch_size (global, all processes together)")
    g.add_argument("--seed", type=int, help="train.seed")
    g.add_argument("--device", help="train.device: cpu or cuda")
    g.add_argument("--output", help="train.output: run directory (config.yaml, metrics.csv, firing_rates.csv, last.pt, "
                                    "best.pt); default runs/<recipe>; an earlier run there is kept: this one goes to "
                                    "<dir>-1, -2, ... unless --overwrite")
    g.add_argument("--amp", choices=("bf16", "fp16"), help="train.amp: mixed precision (bf16 on CPU; fp16 or bf16 on GPU)")
    g.add_argument("--compile", nargs="?", const=True, default=None, metavar="MODE",
                   help="train.compile: torch.compile the model (a step has no graph break, ssf/dsr included); MODE one "
                        "of default, reduce-overhead (CUDA graphs), max-autotune, max-autotune-no-cudagraphs")
    g.add_argument("--sync-bn", dest="sync_bn", action="store_true", default=None,
                   help="train.sync_bn: BN statistics shared by all processes (torchrun; gloo or nccl)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, e.g. optim.lr=0.05")
    p.add_argument("--overwrite", action="store_true",
                   help="write into --output even if it holds an earlier run (that run's files are deleted)")
    p.add_argument("--resume", metavar="RUN_DIR|PATH",
                   help="continue a run (its directory, or a last.pt/best.pt) in the checkpoint's own directory, "
                        "with its saved config; flags change settings from there on and are listed; "
                        "another --model/--method is refused")
    add_threads(p, "train.threads: torch CPU threads of this process (default: the recipe's, else torch's; "
                   "1 is fastest for small models on a busy machine)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from spikeforge.train import config as C
    from spikeforge.train.engine import (
        NonFiniteLoss,
        StopRequested,
        load_checkpoint,
        train,
    )

    from spikeforge.train.optim import check_sections
    from spikeforge.train.rundir import checkpoint_path

    set_threads(args)
    resume = None
    if args.resume:
        if args.recipe or args.config:
            raise ValueError("--resume continues a run with its saved config; --recipe/--config start a new run: "
                             "give one or the other")
        resume = checkpoint_path(args.resume)
        cfg = load_checkpoint(resume)["config"]  # the run's own config; flags below may change it
        C.set_key(cfg, "train.output", str(resume.parent))  # continue the run the checkpoint belongs to
    elif args.recipe and args.config:
        raise ValueError(f"--recipe {args.recipe} and --config {args.config} both name a config; give one "
                         "(flags and --set change single keys of it)")
    elif args.config:
        cfg = C.load_config(args.config)
        if cfg["train"]["output"] is None:
            cfg["train"]["output"] = f"runs/{Path(args.config).stem}"
    else:
        name = args.recipe or "digits"
        cfg = C.load_recipe(name)
        if cfg["train"]["output"] is None:
            cfg["train"]["output"] = f"runs/{name}"
    C.apply_overrides(cfg, vars(args), args.set)
    check_sections(cfg)
    try:
        result = train(cfg, resume=resume, overwrite=args.overwrite)
    except StopRequested as err:
        if _is_main():
            print(f"spikeforge train: {err}", file=sys.stderr)
        return 130
    except NonFiniteLoss as err:
        if _is_main():
            print(f"spikeforge train: error: {err}", file=sys.stderr)
        return 1
    if _is_main():
        print(_summary(result))
    return 0


def _is_main() -> bool:
    """Whether this process is rank 0 (``torchrun`` sets ``RANK``; one process: always)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _summary(r: dict) -> str:
    text = (f"test accuracy: {100 * r['test_acc']:.2f} %  ({r['epochs']} epochs, {r['seconds']:.1f} s)\n"
            f"protocol A (max test accuracy): {100 * r['best_test_acc']:.2f} % at epoch {r['best_test_epoch']}")
    if r["protocol_b"] is not None:
        text += f"\nprotocol B (test at best validation epoch {r['best_val_epoch']}): {100 * r['protocol_b']:.2f} %"
    if r["output"] is not None:
        text += f"\nrun directory: {r['output']}"
    return text


def _add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list recipes with their paper, table, target and assumed keys; "
                                       "`spikeforge recipes NAME` prints one recipe's YAML")
    p.add_argument("name", nargs="?", metavar="NAME|PATTERN",
                   help="a recipe name (prints its YAML) or a part of names / a shell pattern (lists those)")
    p.set_defaults(func=_cmd_recipes)


def _pattern(text: str | None) -> str:
    """A shell pattern from a command-line word: ``sew`` -> ``*sew*``; ``sew*`` stays as it is."""
    if text is None:
        return "*"
    return text if any(c in text for c in "*?[") else f"*{text}*"


def _cmd_recipes(args: argparse.Namespace) -> int:
    import fnmatch

    from spikeforge.train import config as C

    if args.name in C.list_recipes():
        print(C.recipe_text(args.name), end="")
        return 0
    names = [n for n in C.list_recipes() if fnmatch.fnmatchcase(n, _pattern(args.name))]
    if not names:
        C.recipe_text(args.name)  # raises, suggesting close names
    for name in names:
        meta = C.load_recipe(name)["meta"]
        assumed = ", ".join(meta["assumed"]) if meta["assumed"] else "-"
        print(f"{name:32s} {meta['paper'] or '-'} | table {meta['table'] or '-'} | "
              f"target {meta['target'] or 'none (unverified)'} | (assumed) {assumed}")
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with parameter counts")
    p.add_argument("pattern", nargs="?", help="a part of the name (sew) or a shell pattern (sew_resnet*)")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from spikeforge.models import create_model, list_models

    names = list_models(_pattern(args.pattern))
    if not names:
        raise ValueError(f"no model name matches {args.pattern!r}; `spikeforge models` lists all {len(list_models())}")
    for name in names:
        model = create_model(name)
        n = sum(p.numel() for p in model.parameters())
        print(f"{name:28s} {n:>12,d} params  T={getattr(model, 'T', '-')}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data set utilities: download")
    dsub = p.add_subparsers(dest="data_command", required=True)
    d = dsub.add_parser("download", help="download a public data set from its official source (checked, resumable)")
    d.add_argument("name", metavar="NAME", help="data set name (mnist, fmnist, cifar10, cifar100, tiny_imagenet, "
                                                "nmnist, cifar10_dvs; dvs128_gesture and imagenet print where to get them)")
    d.add_argument("--data-dir", dest="data_dir", default="data", help="folder to place the set in (default: ./data); "
                                                                        "pass the same to `spikeforge train --data-dir`")
    d.add_argument("--retries", type=int, default=2, help="attempts after a failed one, each resuming (default 2)")
    d.set_defaults(func=_cmd_data_download)


def _cmd_data_download(args: argparse.Namespace) -> int:
    from spikeforge.data.download import DownloadError, ManualDownload, download_dataset, get_source

    try:
        root = download_dataset(args.name, args.data_dir, retries=args.retries)
    except ManualDownload as err:
        print(f"spikeforge data download: {err}", file=sys.stderr)
        return 3
    except DownloadError as err:
        print(f"spikeforge data download: error: {err}\nCheck the network connection (or HTTPS_PROXY) and run the "
              f"same command again (it resumes from the .part files), or place the files yourself under "
              f"{args.data_dir}: {get_source(args.name).layout}", file=sys.stderr)
        return 1
    if get_source(args.name).downloadable:
        print(f"{args.name} is ready in {root} (spikeforge train --data-dir {root})")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from spikeforge.bench import add_bench_parser

    add_bench_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikeforge", description="Train deep spiking neural networks on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, add_eval_parser, _add_recipes, add_plot_parser, _add_models, _add_data, _add_bench,
                add_tool_parsers):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from spikeforge.data.download import DownloadError

    try:
        args = build_parser().parse_args(argv)
        try:
            return args.func(args)
        except DownloadError as err:  # data.download: true in a recipe, or `data download`: the network failed
            print(f"spikeforge {args.command}: error: {err}", file=sys.stderr)
            return 1
        except (ValueError, FileNotFoundError) as err:
            print(f"spikeforge {args.command}: error: {err}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:  # before training installs its own handler (start-up), or a second Ctrl-C
        print("spikeforge: interrupted (Ctrl-C) before a checkpoint could be saved; nothing new was written",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spikeforge models | head`: the reader left; no traceback (Python's own advice)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
