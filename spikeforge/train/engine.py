"""The training loop: one process, CPU or one GPU (the engine issue adds DDP, AMP and resume).

``train(cfg)`` builds data, model, loss, optimizer and schedule from a resolved config
(:mod:`spikeforge.train.config`), trains for ``train.epochs``, evaluates on the test split after each
epoch, and — when ``train.output`` is set — writes ``config.yaml``, ``metrics.csv`` and an atomically
replaced ``last.pt`` checkpoint every epoch (model, optimizer, schedule, epoch, RNG states, the loader's
shuffle generator, the metrics so far, the resolved config and the code version), from which
``resume`` continues exactly.
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from spikeforge import __version__
from spikeforge.data import create_dataset
from spikeforge.losses import get_loss
from spikeforge.models import create_model
from spikeforge.train.optim import build_optimizer, build_schedule

__all__ = ["train", "evaluate", "train_one_epoch", "load_checkpoint"]


def _progress(iterable, desc: str, enabled: bool):
    return tqdm(iterable, desc=desc, leave=False, disable=not (enabled and sys.stderr.isatty()))


def train_one_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device, desc: str = "train") -> dict[str, float]:
    """One pass over ``loader``; returns mean loss and accuracy. A non-finite loss raises."""
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in _progress(loader, desc, True):
        x, y = x.to(device), y.to(device)
        out = model.forward_output(x)
        loss = loss_fn(out, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss is {loss.item()} at sample {total}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += y.numel()
        loss_sum += loss.item() * y.numel()
        correct += (out.logits.argmax(1) == y).sum().item()
    return {"loss": loss_sum / total, "acc": correct / total}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, device: torch.device) -> dict[str, float]:
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in _progress(loader, "eval", True):
        x, y = x.to(device), y.to(device)
        out = model.forward_output(x)
        loss_sum += loss_fn(out, y).item() * y.numel()
        correct += (out.logits.argmax(1) == y).sum().item()
        total += y.numel()
    return {"loss": loss_sum / total, "acc": correct / total}


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train`; a missing or unreadable file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated or foreign file
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {type(err).__name__}: {err}") from None
    missing = {"model", "optimizer", "schedule", "epoch", "config", "rng", "history"} - set(ckpt)
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks {sorted(missing)}; it was not written by spikeforge train")
    return ckpt


def train(cfg: dict[str, Any], log=print, resume: str | Path | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says; returns ``{"test_acc", "best_test_acc", "epochs", "seconds"}``.

    ``resume``: a ``last.pt`` to continue from (model, optimizer, schedule, epoch, RNG states and the
    loader's shuffle generator are restored, so the run ends with the weights of an uninterrupted one).
    ``stop_after``: end after this many epochs of the schedule (the checkpoint lets a later call go on).
    """
    tcfg = cfg["train"]
    torch.manual_seed(int(tcfg["seed"]))
    device = torch.device(tcfg["device"])
    data_kw = dict(cfg["data"])
    data_name, root = data_kw.pop("name"), data_kw.pop("root")
    train_set = create_dataset(data_name, root, "train", **data_kw)
    test_set = create_dataset(data_name, root, "test", **data_kw)
    model_kw = dict(cfg["model"])
    model = create_model(model_kw.pop("name"), method=cfg["method"]["name"], **model_kw).to(device)
    loss_kw = dict(cfg["loss"])
    loss_fn = get_loss(loss_kw.pop("name"), **loss_kw)
    optimizer = build_optimizer(model.parameters(), cfg["optim"])
    epochs = int(tcfg["epochs"])
    schedule = build_schedule(optimizer, cfg["schedule"], epochs)
    g = torch.Generator().manual_seed(int(tcfg["seed"]))
    bs, workers = int(tcfg["batch_size"]), int(tcfg["workers"])
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True, generator=g, num_workers=workers)
    test_loader = DataLoader(test_set, batch_size=max(bs, 256), shuffle=False, num_workers=workers)

    out_dir = Path(tcfg["output"]) if tcfg["output"] else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    start, best, history, first_epoch = time.perf_counter(), -math.inf, [], 0
    if resume is not None:
        ckpt = load_checkpoint(resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        g.set_state(ckpt["rng"]["loader"])
        history, first_epoch = list(ckpt["history"]), int(ckpt["epoch"])
        best = max((row["test_acc"] for row in history), default=-math.inf)
        log(f"resumed from {resume} at epoch {first_epoch}")
    last_epoch = epochs if stop_after is None else min(epochs, first_epoch + int(stop_after))
    for epoch in range(first_epoch, last_epoch):
        tr = train_one_epoch(model, train_loader, loss_fn, optimizer, device, desc=f"epoch {epoch + 1}/{epochs}")
        schedule.step()
        te = evaluate(model, test_loader, loss_fn, device)
        best = max(best, te["acc"])
        row = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_acc": tr["acc"], "test_loss": te["loss"],
               "test_acc": te["acc"], "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        history.append(row)
        log(f"epoch {epoch + 1:3d}/{epochs}  train loss {tr['loss']:.4f} acc {100 * tr['acc']:.2f} %  "
            f"test loss {te['loss']:.4f} acc {100 * te['acc']:.2f} %")
        if out_dir is not None:
            with open(out_dir / "metrics.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
                writer.writerows(history)
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "schedule": schedule.state_dict(), "epoch": epoch + 1, "config": cfg, "history": history,
                          "rng": {"torch": torch.get_rng_state(), "loader": g.get_state()},
                          "version": __version__}, out_dir / "last.pt")
    if not history:
        raise ValueError(f"nothing to train: the run is already at epoch {first_epoch} of {epochs}")
    return {"test_acc": history[-1]["test_acc"], "best_test_acc": best, "epochs": len(history),
            "seconds": time.perf_counter() - start, "model": model}
