"""One training epoch over the parts of a run (built by :mod:`.engine`).

Batches become model input through :mod:`.batches` (sequences time first, ``[T, B, ...]``); evaluation
passes are :func:`spikeforge.train.evaluate.evaluate`.
"""
from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from spikeforge.data import random_temporal_delete
from spikeforge.train.batches import model_batch
from spikeforge.train.distributed import Dist, all_reduce_sum
from spikeforge.train.evaluate import StepSums, progress_bar
from spikeforge.train.mixup import mixed_loss, mixup
from spikeforge.train.optim import LRSchedule
from spikeforge.train.precision import autocast
from spikeforge.train.sampler import ShardedBatchSampler

__all__ = ["NonFiniteLoss", "Parts", "Progress", "StopFlag", "StopRequested", "train_epoch"]


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or inf; the step was not applied."""


class StopRequested(Exception):
    """SIGINT arrived; the current step finished."""


@dataclass
class Parts:
    """Everything a run steps: ``model`` (bare, for state and evaluation), ``net`` (what training calls:
    the model's ``forward_output``, wrapped by DDP/compile), data, loss, optimizer, schedule, scaler and
    the run's own generators (random temporal delete: torch; mixup: numpy), identical on every rank."""

    cfg: dict[str, Any]
    dist: Dist
    model: nn.Module
    net: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler
    loaders: dict[str, DataLoader]
    sampler: ShardedBatchSampler
    rtd_gen: torch.Generator
    mix_rng: np.random.Generator
    input_dims: int


@dataclass
class Progress:
    """Where the run is: ``epoch`` epochs done, ``step`` batches of the next epoch done, ``global_step`` in all;
    ``sums`` = [loss·samples, correct, samples] of the epoch so far (summed over ranks at checkpoints), with
    the steps since the last read kept on the device in ``pending`` (read by :meth:`settle`, so a step never
    waits on the host for its metrics); ``history`` one row per finished epoch; ``rates`` per-layer firing
    rates per evaluated epoch."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    history: list[dict[str, Any]] = field(default_factory=list)
    rates: list[dict[str, Any]] = field(default_factory=list)
    pending: StepSums = field(default_factory=lambda: StepSums())

    def settle(self) -> list[float]:
        """Fold ``pending`` into ``sums`` (one host read) and return ``sums``."""
        self.sums = [a + b for a, b in zip(self.sums, self.pending.read())]
        return self.sums


class StopFlag:
    """Catches SIGINT while installed (``with StopFlag() as stop``): the loop finishes its step, saves and stops.
    A second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> StopFlag:  # noqa: PYI034 (not subclassed)
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave SIGINT alone
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class ForwardOutput(nn.Module):
    """``forward(x) = model.forward_output(x)``, so DDP and ``torch.compile`` see the call training makes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Any:
        return self.model.forward_output(x)


def train_epoch(p: Parts, prog: Progress, stop: StopFlag, on_step: Callable[[], None]) -> dict[str, float]:
    """Train epoch ``prog.epoch`` from its batch ``prog.step``; returns the epoch's mean loss and accuracy.

    ``on_step`` runs after each step (periodic checkpoints). Raises :class:`NonFiniteLoss` before applying a
    step whose loss (on any rank) is not finite, :class:`StopRequested` after a step during which SIGINT came.
    The finiteness check is the step's one host read (so a NaN step is never applied); the metrics stay on
    the device (:class:`StepSums`) until the epoch ends or a checkpoint reads them.
    """
    t = p.cfg["train"]
    p.net.train()
    p.sampler.set_epoch(prog.epoch, prog.step)
    epochs = int(t["epochs"])
    for batch in progress_bar(p.loaders["train"], f"epoch {prog.epoch + 1}/{epochs}", p.dist.main):
        p.schedule.apply(prog.epoch, prog.global_step)
        x, y = model_batch(batch, p.input_dims, p.dist.device, non_blocking=True)
        if t["rtd_T"]:
            if x.dim() != p.input_dims + 2:
                raise ValueError("train.rtd_T needs sequence input [T, B, ...]; this data set gives static samples")
            x = random_temporal_delete(x, int(t["rtd_T"]), p.rtd_gen)
        mixed = mixup(x, y, float(t["mixup"]), p.mix_rng, batch_dim=x.dim() - p.input_dims - 1) if t["mixup"] else None
        with autocast(t["amp"], p.dist.device):
            out = p.net(mixed.x if mixed else x)
            loss = mixed_loss(p.loss_fn, out, mixed) if mixed else p.loss_fn(out, y)
        bad, stopping = all_reduce_sum([float(not torch.isfinite(loss.detach()).item()), float(stop.requested)], p.dist)
        if bad:
            raise NonFiniteLoss(f"loss is {loss.item()} at epoch {prog.epoch + 1}, batch {prog.step + 1} "
                                f"(global step {prog.global_step + 1}); the step was not applied")
        p.optimizer.zero_grad(set_to_none=True)
        p.scaler.scale(loss).backward()
        if t["clip_grad"]:
            p.scaler.unscale_(p.optimizer)
            torch.nn.utils.clip_grad_norm_(p.model.parameters(), float(t["clip_grad"]))
        p.scaler.step(p.optimizer)
        p.scaler.update()
        prog.pending.add(loss, out.logits if hasattr(out, "logits") else out, y)
        prog.step += 1
        prog.global_step += 1
        on_step()
        if stopping:
            raise StopRequested()
    loss_sum, correct, total = all_reduce_sum(prog.settle(), p.dist)
    return {"loss": loss_sum / max(total, 1), "acc": correct / max(total, 1)}
