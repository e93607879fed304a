"""The training engine: ``train(cfg)`` runs a resolved config (:mod:`.config`) on one process or many.

One process: ``spikeforge train ...``; several: ``torchrun --nproc-per-node N -m spikeforge train ...``
(DDP, each rank a strided shard of every global batch, metrics summed over ranks, rank 0 writes).
With ``train.output`` set the run directory gets ``config.yaml``, ``metrics.csv``,
``firing_rates.csv``, TensorBoard scalars (``tb/``), ``last.pt`` (every epoch and every
``train.checkpoint_every`` steps, atomically) and ``best.pt``; ``resume`` continues from a ``last.pt``
exactly (CPU, ``train.workers: 0``). SIGINT finishes the step, saves and raises :class:`StopRequested`;
a non-finite loss saves and raises :class:`NonFiniteLoss` naming the step.

Accuracy protocols of the PLIF paper (SPEC §7.2): A = the maximum test accuracy over the evaluated
epochs; B (``train.val_fraction > 0``) = the test accuracy at the epoch of the best validation accuracy.
"""
from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from spikeforge import __version__
from spikeforge.train.batches import input_dims
from spikeforge.train.builders import build_datasets, build_loss, build_model, prepare_data
from spikeforge.train.checkpoint import (
    atomic_save,
    load_checkpoint,
    rng_states,
    set_rng_states,
)
from spikeforge.train.distributed import (
    Dist,
    all_gather_objects,
    all_reduce_sum,
    convert_sync_bn,
    setup,
    teardown,
    wrap_ddp,
)
from spikeforge.train.evaluate import evaluate
from spikeforge.train.loop import (
    ForwardOutput,
    NonFiniteLoss,
    Parts,
    Progress,
    StopFlag,
    StopRequested,
    train_epoch,
)
from spikeforge.train.optim import build_optimizer, build_schedule
from spikeforge.train.precision import grad_scaler
from spikeforge.train.records import METRICS_CSV, RATES_CSV, Scalars, write_csv
from spikeforge.train.rundir import prepare_run_dir, resume_changes
from spikeforge.train.sampler import ShardedBatchSampler

__all__ = ["NonFiniteLoss", "StopRequested", "load_checkpoint", "protocols", "train"]


def _eval_loader(dataset: Any, batch_size: int, d: Dist, workers: int) -> DataLoader:
    sampler = ShardedBatchSampler(len(dataset), batch_size * d.world, d.world, d.rank, shuffle=False, drop_last=False)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers)


def configure_backends(deterministic: bool, device: torch.device) -> None:
    """``train.deterministic``: deterministic algorithms (warn where none exists), cuDNN autotuning off and
    cuBLAS's fixed workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless set; CUDA reads it when cuBLAS
    starts). Otherwise on CUDA: cuDNN autotuning on (``cudnn.benchmark``; shapes are fixed within a run)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _download(cfg: dict[str, Any], d: Dist) -> None:
    """``data.download``: rank 0 fetches the set while the others wait; its error is raised on every rank."""
    err: str | None = None
    try:
        prepare_data(cfg, main=d.main)
    except (OSError, ValueError) as e:
        if not d.active:
            raise
        err = f"{type(e).__name__}: {e}"
    errors = [e for e in all_gather_objects(err, d) if e]
    if errors:
        raise ValueError(f"data.download failed on rank 0: {errors[0]}")


def build_parts(cfg: dict[str, Any], d: Dist) -> Parts:
    """Build data, model (sync-BN, DDP, compile), loss, optimizer, schedule and scaler for this rank."""
    t = cfg["train"]
    seed = int(t["seed"])
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    configure_backends(bool(t["deterministic"]), d.device)
    _download(cfg, d)
    sets = build_datasets(cfg)
    model = build_model(cfg)
    if t["sync_bn"]:
        model = convert_sync_bn(model, d)
    model = model.to(d.device)
    dims = input_dims(model, sets["train"][0][0])
    bs, workers = int(t["batch_size"]), int(t["workers"])
    sampler = ShardedBatchSampler(len(sets["train"]), bs, d.world, d.rank, shuffle=True, drop_last=True, seed=seed)
    loaders = {"train": DataLoader(sets["train"], batch_sampler=sampler, num_workers=workers,
                                   pin_memory=d.device.type == "cuda")}
    for split in ("val", "test"):
        if split in sets:
            loaders[split] = _eval_loader(sets[split], max(bs // d.world, 256), d, workers)
    optimizer = build_optimizer([q for q in model.parameters() if q.requires_grad], cfg["optim"])
    schedule = build_schedule(optimizer, cfg["schedule"], int(t["epochs"]), len(sampler), seed=seed)
    net = wrap_ddp(ForwardOutput(model), d)
    if t["compile"]:  # true or a mode; "reduce-overhead" replays the step's graphs as CUDA graphs
        net = torch.compile(net, mode=None if t["compile"] is True else t["compile"])
    torch.manual_seed(seed + d.rank)  # dropout and augmentation differ between ranks, reproducibly
    np.random.seed(seed + d.rank)
    random.seed(seed + d.rank)
    return Parts(cfg, d, model, net, build_loss(cfg), optimizer, schedule, grad_scaler(t["amp"], d.device), loaders,
                 sampler, torch.Generator().manual_seed(seed), np.random.default_rng(seed), dims)


def protocols(history: list[dict[str, Any]]) -> dict[str, Any]:
    """PLIF accuracy protocols from the epoch rows: ``A`` max test accuracy (and its epoch), ``B`` the test
    accuracy at the first epoch of maximal validation accuracy (None without a validation split)."""
    tested = [r for r in history if r.get("test_acc") is not None]
    out: dict[str, Any] = {"A": None, "A_epoch": None, "B": None, "B_epoch": None}
    if tested:
        best = max(tested, key=lambda r: r["test_acc"])
        out["A"], out["A_epoch"] = best["test_acc"], best["epoch"]
    validated = [r for r in tested if r.get("val_acc") is not None]
    if validated:
        best = max(validated, key=lambda r: r["val_acc"])
        out["B"], out["B_epoch"] = best["test_acc"], best["epoch"]
    return out


class _Saver:
    """Writes the run directory (rank 0); every rank calls it so collective parts stay in step."""

    def __init__(self, p: Parts, out: Path | None) -> None:
        self.p, self.out = p, out
        self.scalars = Scalars(out) if out is not None and p.dist.main else Scalars(None)

    def checkpoint(self, prog: Progress, name: str = "last.pt") -> Path | None:
        """Save the state after ``prog`` (mid-epoch sums summed over ranks; every rank's RNG states)."""
        p = self.p
        sums = all_reduce_sum(prog.settle(), p.dist) if prog.step else [0.0, 0.0, 0.0]
        rngs = all_gather_objects(rng_states(), p.dist)
        if self.out is None or not p.dist.main:
            return None
        state = {"model": p.model.state_dict(), "optimizer": p.optimizer.state_dict(),
                 "schedule": p.schedule.state_dict(), "scaler": p.scaler.state_dict(),
                 "epoch": prog.epoch, "step": prog.step, "global_step": prog.global_step, "sums": sums,
                 "history": prog.history, "rates": prog.rates, "config": p.cfg, "world": p.dist.world,
                 "rng": {"ranks": rngs, "rtd": p.rtd_gen.get_state(), "mixup": p.mix_rng.bit_generator.state},
                 "version": {"spikeforge": __version__, "torch": torch.__version__}}
        return atomic_save(state, self.out / name)

    def epoch_files(self, prog: Progress) -> None:
        if self.out is None or not self.p.dist.main:
            return
        write_csv(self.out / METRICS_CSV, prog.history)
        if prog.rates:
            write_csv(self.out / RATES_CSV, prog.rates)
        row = prog.history[-1]
        self.scalars.add(row, int(row["epoch"]))
        if prog.rates and prog.rates[-1]["epoch"] == row["epoch"]:
            self.scalars.add(prog.rates[-1], int(row["epoch"]), prefix="firing_rate/")


def _restore(p: Parts, ckpt: dict[str, Any]) -> Progress:
    p.model.load_state_dict(ckpt["model"])
    p.optimizer.load_state_dict(ckpt["optimizer"])  # its lrs are reset by the schedule (from cfg) at every step
    if ckpt.get("scaler"):
        p.scaler.load_state_dict(ckpt["scaler"])
    ranks = ckpt["rng"]["ranks"]
    set_rng_states(ranks[p.dist.rank] if len(ranks) == p.dist.world else ranks[0])
    p.rtd_gen.set_state(ckpt["rng"]["rtd"])
    p.mix_rng.bit_generator.state = ckpt["rng"]["mixup"]
    sums = list(ckpt["sums"]) if p.dist.main else [0.0, 0.0, 0.0]
    return Progress(int(ckpt["epoch"]), int(ckpt["step"]), int(ckpt["global_step"]), sums,
                    list(ckpt["history"]), list(ckpt.get("rates", [])))


def _evaluate_epoch(p: Parts, prog: Progress, tr: dict[str, float], started: float) -> dict[str, Any]:
    """Validation, test (with per-layer firing rates) and the epoch's row."""
    from spikeforge.tools.monitor import Monitor

    t, d = p.cfg["train"], p.dist
    row: dict[str, Any] = {"epoch": prog.epoch + 1, "lr": p.optimizer.param_groups[0]["lr"],
                           "train_loss": tr["loss"], "train_acc": tr["acc"]}
    last = prog.epoch + 1 == int(t["epochs"])
    if (prog.epoch + 1) % max(1, int(t["eval_every"])) == 0 or last:
        if "val" in p.loaders:
            va = evaluate(p.model, p.loaders["val"], p.loss_fn, d, p.input_dims, t["amp"], "val")
            row.update(val_loss=va["loss"], val_acc=va["acc"])
        with Monitor(p.model) as mon:
            te = evaluate(p.model, p.loaders["test"], p.loss_fn, d, p.input_dims, t["amp"], "test")
        row.update(test_loss=te["loss"], test_acc=te["acc"])
        rates = mon.rates()
        mean = all_reduce_sum(list(rates.values()), d)
        prog.rates.append({"epoch": prog.epoch + 1, **{k: v / d.world for k, v in zip(rates, mean)}})
    row["seconds"] = time.perf_counter() - started
    return row


def _fmt(row: dict[str, Any], seconds: float) -> str:
    parts = [f"epoch {int(row['epoch']):3d}", f"lr {row['lr']:.3g}",
             f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f} %"]
    for split in ("val", "test"):
        if row.get(f"{split}_acc") is not None:
            parts.append(f"{split} loss {row[f'{split}_loss']:.4f} acc {100 * row[f'{split}_acc']:.2f} %")
    return "  ".join([*parts, f"{seconds:.2f} s"])


def _header(p: Parts, out: Path | None) -> str:
    """One line saying what runs: model, parameters, method, device, T, threads, epochs, run directory."""
    cfg, t = p.cfg, p.cfg["train"]
    n = sum(q.numel() for q in p.model.parameters())
    T = cfg["model"].get("T", getattr(p.model, "T", None))
    return (f"model {cfg['model']['name']} ({n:,} parameters), method {cfg['method']['name']}, device {p.dist.device}"
            f"{f' x {p.dist.world} processes' if p.dist.active else ''}, T={T if T is not None else '-'}, "
            f"{torch.get_num_threads()} threads, {t['epochs']} epochs of {len(p.sampler)} batches of {t['batch_size']}, "
            f"run directory {out if out is not None else '(none: nothing saved)'}")


def train(cfg: dict[str, Any], log: Callable[[str], None] = print, resume: str | Path | None = None,
          stop_after: int | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train as ``cfg`` says; returns the summary ``{"test_acc", "best_test_acc" (protocol A), "protocol_b",
    "best_val_epoch", "epochs", "seconds", "model", "output"}``.

    Args:
        cfg: a resolved config (:func:`spikeforge.train.config.resolve`).
        log: where rank 0's progress lines go.
        resume: a ``last.pt`` of this run to continue from (its position, states and RNGs).
        stop_after: end after this many more epochs (the checkpoint lets a later call go on).
        overwrite: write into ``train.output`` even if an earlier run is there (its files deleted); by
            default such a run goes to a fresh ``NAME-1`` beside it (:mod:`spikeforge.train.rundir`).

    Raises:
        NonFiniteLoss: a NaN/inf loss (a checkpoint of the state before that step is saved first).
        StopRequested: SIGINT (a checkpoint is saved first).
        ValueError: bad config values, unknown names, missing data files.
    """
    if cfg["train"].get("threads"):
        torch.set_num_threads(int(cfg["train"]["threads"]))  # train.threads: this process's torch CPU threads
    d = setup(str(cfg["train"]["device"]), cfg["train"].get("dist_backend"))
    finished = False
    try:
        result = _train(cfg, d, log if d.main else (lambda *_: None), resume, stop_after, overwrite)
        finished = True
        return result
    finally:
        teardown(d, finished)


def _train(cfg: dict[str, Any], d: Dist, log: Callable[[str], None], resume: str | Path | None,
           stop_after: int | None, overwrite: bool) -> dict[str, Any]:
    t = cfg["train"]
    ckpt = load_checkpoint(resume) if resume is not None else None
    changes = resume_changes(ckpt["config"], cfg) if ckpt is not None else []
    p = build_parts(cfg, d)
    out = Path(t["output"]) if t["output"] else None
    if out is not None and d.main:
        out = prepare_run_dir(out, overwrite, resume, log)
        t["output"] = str(out)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log(_header(p, out))
    prog = Progress()
    if ckpt is not None:
        try:
            prog = _restore(p, ckpt)
        except RuntimeError as err:  # load_state_dict: the model's shapes or layers differ from the checkpoint's
            raise ValueError(f"--resume: {resume} does not fit this model ({str(err).splitlines()[0]}); "
                             "resume with the run's own model settings") from None
        log(f"resumed from {resume} at epoch {prog.epoch + 1}, batch {prog.step}; "
            + ("settings changed by the flags (they apply from here on): " + ", ".join(changes) if changes
               else "all settings as saved"))
    saver, epochs = _Saver(p, out), int(t["epochs"])
    every = int(t["checkpoint_every"] or 0)
    last_epoch = epochs if stop_after is None else min(epochs, prog.epoch + int(stop_after))
    if prog.epoch >= last_epoch:
        raise ValueError(f"nothing to train: the run is already at epoch {prog.epoch} of {epochs}")
    started = time.perf_counter()

    def on_step() -> None:
        if every and prog.global_step % every == 0:
            saver.checkpoint(prog)

    best_key = "val_acc" if "val" in p.loaders else "test_acc"
    best = max((r[best_key] for r in prog.history if r.get(best_key) is not None), default=-math.inf)
    with StopFlag() as stop:
        while prog.epoch < last_epoch:
            epoch_started = time.perf_counter()
            try:
                tr = train_epoch(p, prog, stop, on_step)
            except NonFiniteLoss as err:
                path = saver.checkpoint(prog)
                raise NonFiniteLoss(f"{err}; {'saved ' + str(path) if path else 'no train.output: nothing saved'}; "
                                    "lower the learning rate or set train.clip_grad") from None
            except StopRequested:
                path = saver.checkpoint(prog)
                raise StopRequested(f"interrupted at epoch {prog.epoch + 1}, batch {prog.step}; "
                                    + (f"resume with --resume {path}" if path else "no train.output: nothing saved"))
            row = _evaluate_epoch(p, prog, tr, started)
            prog.history.append(row)
            prog.epoch, prog.step, prog.sums = prog.epoch + 1, 0, [0.0, 0.0, 0.0]
            log(_fmt(row, time.perf_counter() - epoch_started))
            saver.epoch_files(prog)
            saver.checkpoint(prog)
            if row.get(best_key) is not None and row[best_key] > best:
                best = row[best_key]
                saver.checkpoint(prog, "best.pt")
    saver.scalars.close()
    acc = protocols(prog.history)
    tested = [r["test_acc"] for r in prog.history if r.get("test_acc") is not None]
    return {"test_acc": tested[-1] if tested else None, "best_test_acc": acc["A"], "best_test_epoch": acc["A_epoch"],
            "protocol_b": acc["B"], "best_val_epoch": acc["B_epoch"], "epochs": len(prog.history),
            "seconds": time.perf_counter() - started, "model": p.model, "output": out}
