"""One training epoch and one evaluation pass over the parts of a run (built by :mod:`.engine`).

Batches come from the data loader as ``[B, ...]`` (static images) or ``[B, T, ...]`` (frames);
:func:`time_first` puts sequences time first, ``[T, B, ...]``, as models take them.
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from spikeforge.data import random_temporal_delete
from spikeforge.train.distributed import Dist, all_reduce_sum
from spikeforge.train.mixup import mixed_loss, mixup
from spikeforge.train.optim import LRSchedule
from spikeforge.train.precision import autocast
from spikeforge.train.sampler import ShardedBatchSampler

__all__ = ["NonFiniteLoss", "Parts", "Progress", "StopFlag", "StopRequested", "evaluate", "time_first", "train_epoch"]


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


class StepSums:
    """[loss·B, correct predictions, B] summed over steps on the device, float64: adding a step never waits
    on the host; :meth:`read` does, once."""

    def __init__(self) -> None:
        self.total: Tensor | None = None

    def add(self, loss: Tensor, logits: Tensor, y: Tensor) -> None:
        step = torch.stack([loss.detach().double() * y.shape[0], (logits.argmax(1) == y).sum().double(),
                            torch.full((), y.shape[0], dtype=torch.float64, device=y.device)])
        self.total = step if self.total is None else self.total.add_(step)

    def read(self) -> list[float]:
        """The sums so far as Python floats (a host read), then start again from zero."""
        out = [0.0, 0.0, 0.0] if self.total is None else self.total.tolist()
        self.total = None
        return out


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


def time_first(x: Tensor, input_dims: int) -> Tensor:
    """A loader batch ``[B, *sample]`` → ``[T, B, ...]`` when samples are sequences (``x.dim() == input_dims + 2``)."""
    return x.transpose(0, 1) if x.dim() == input_dims + 2 else x


def _bar(iterable: Any, desc: str, main: bool) -> Any:
    return tqdm(iterable, desc=desc, leave=False, disable=not (main and sys.stderr.isatty()))


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
    for x, y in _bar(p.loaders["train"], f"epoch {prog.epoch + 1}/{epochs}", p.dist.main):
        p.schedule.apply(prog.epoch, prog.global_step)
        x, y = time_first(x.to(p.dist.device, non_blocking=True), p.input_dims), y.to(p.dist.device)
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


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, dist: Dist, input_dims: int,
             amp: str | None = None, desc: str = "eval") -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (this rank's shard; summed over ranks)."""
    model.eval()
    sums = StepSums()
    for x, y in _bar(loader, desc, dist.main):
        x, y = time_first(x.to(dist.device), input_dims), y.to(dist.device)
        with autocast(amp, dist.device):
            out = model.forward_output(x)
            loss = loss_fn(out, y)
        sums.add(loss, out.logits, y)
    loss_sum, correct, total = all_reduce_sum(sums.read(), dist)
    if total == 0:
        raise ValueError(f"{desc}: the data set is empty")
    return {"loss": loss_sum / total, "acc": correct / total}
