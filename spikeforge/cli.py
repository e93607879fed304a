"""The ``spikeforge`` command line: ``train``, ``recipes``, ``models``, ``bench``."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main"]


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a recipe (default: digits)")
    p.add_argument("--recipe", default="digits", help="recipe name (see `spikeforge recipes`)")
    p.add_argument("--config", help="a YAML config file used instead of --recipe")
    g = p.add_argument_group("overrides (each maps to one config key)")
    g.add_argument("--data-dir", dest="data_dir")
    g.add_argument("--model")
    g.add_argument("--method")
    g.add_argument("--T", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", dest="batch_size", type=int)
    g.add_argument("--seed", type=int)
    g.add_argument("--device")
    g.add_argument("--output", help="run directory: config.yaml, metrics.csv, last.pt")
    p.add_argument("--resume", metavar="PATH", help="continue a run from its last.pt (exactly, on CPU)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key, e.g. optim.lr=0.05")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from spikeforge.train import config as C
    from spikeforge.train.engine import train

    if args.resume:
        from spikeforge.train.engine import load_checkpoint

        cfg = load_checkpoint(args.resume)["config"]  # the run's own config; flags below may extend it
    else:
        cfg = C.load_config(args.config) if args.config else C.load_recipe(args.recipe)
    for flag, key in C.FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            C.set_key(cfg, key, value, source=f"--{flag.replace('_', '-')}")
    for item in args.set:
        C.set_key(cfg, *C.parse_assignment(item), source="--set")
    result = train(cfg, resume=args.resume)
    print(f"test accuracy: {100 * result['test_acc']:.2f} %  (best {100 * result['best_test_acc']:.2f} %, "
          f"{result['epochs']} epochs, {result['seconds']:.1f} s)")
    return 0


def _add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list recipes with their paper and target")
    p.set_defaults(func=_cmd_recipes)


def _cmd_recipes(args: argparse.Namespace) -> int:
    from spikeforge.train import config as C

    for name in C.list_recipes():
        meta = C.load_recipe(name)["meta"]
        print(f"{name:32s} {meta['paper'] or '-'} | table {meta['table'] or '-'} | target {meta['target'] or 'none (unverified)'}")
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with parameter counts")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from spikeforge.models import create_model, list_models

    for name in list_models(args.pattern):
        model = create_model(name)
        n = sum(p.numel() for p in model.parameters())
        print(f"{name:28s} {n:>12,d} params  T={getattr(model, 'T', '-')}")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    from spikeforge.bench import add_bench_parser

    add_bench_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikeforge", description="Train deep spiking neural networks on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_recipes, _add_models, _add_bench):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"spikeforge {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
