"""The one evaluation loop: mean loss and accuracy of a model over a loader (training's validation and test
passes, ``spikeforge eval`` / ``analyze`` / ``quantize``).

Metrics are summed on the device (:class:`StepSums`) and read once at the end; with several processes
each rank evaluates its shard and the sums are added over ranks.
"""
from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from spikeforge.train.batches import input_dims as _input_dims
from spikeforge.train.batches import model_batch
from spikeforge.train.distributed import Dist, all_reduce_sum
from spikeforge.train.precision import autocast

__all__ = ["StepSums", "evaluate", "progress_bar"]


def progress_bar(iterable: Any, desc: str, main: bool) -> Any:
    """A tqdm bar on rank 0 when stderr is a terminal; the bare iterable otherwise."""
    return tqdm(iterable, desc=desc, leave=False, disable=not (main and sys.stderr.isatty()))


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


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module | None = None, dist: Dist | None = None,
             input_dims: int | None = None, amp: str | None = None, desc: str = "eval") -> dict[str, Any]:
    """Mean loss and accuracy of ``model`` (put in eval mode) over ``loader`` (this rank's shard; summed over ranks).

    Args:
        model: a spikeforge model (``forward_output(x)`` gives a ``ModelOutput``) or any module returning logits.
        loader: yields ``(x, y)``: ``x`` ``[B, *input]`` or ``[B, T, *input]``, ``y`` ``[B]`` class indices.
        loss_fn: called as ``loss_fn(out, y)``; ``None``: no loss (``"loss"`` is then ``None``).
        dist: this process's place (device, ranks); default one process on CPU.
        input_dims: dimensions of one input step (:func:`spikeforge.train.batches.input_dims`); default from the
            model and the first batch.
        amp: ``"bf16"``/``"fp16"`` mixed precision or ``None``.
        desc: names the pass in the progress bar and in errors.

    Returns:
        ``{"loss": mean loss or None, "acc": accuracy in [0, 1], "samples": samples seen (all ranks)}``.

    Raises:
        ValueError: the loader is empty.
    """
    dist = dist if dist is not None else Dist()
    model.eval()
    sums = StepSums()
    for batch in progress_bar(loader, desc, dist.main):
        dims = input_dims if input_dims is not None else _input_dims(model, batch[0][0])
        x, y = model_batch(batch, dims, dist.device)
        with autocast(amp, dist.device):
            out = model.forward_output(x) if hasattr(model, "forward_output") else model(x)
            logits = out.logits if hasattr(out, "logits") else out
            loss = loss_fn(out, y) if loss_fn is not None else logits.new_zeros(())
        sums.add(loss, logits, y)
    loss_sum, correct, total = all_reduce_sum(sums.read(), dist)
    if total == 0:
        raise ValueError(f"{desc}: the data set is empty")
    return {"loss": loss_sum / total if loss_fn is not None else None, "acc": correct / total, "samples": int(total)}
