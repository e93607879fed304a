"""The one batch adapter: a data loader's batch as the model takes it (used by training and every command).

Data sets yield ``(x, label)`` with ``x`` one sample: ``[*input]`` (static images) or ``[T, *input]``
(frames); a loader stacks them to ``[B, *input]`` or ``[B, T, *input]``. Models take ``[T, B, *input]``
(or static ``[B, *input]``, repeated over their own ``T``; SPEC §10), so sequences go time first.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["input_dims", "model_batch", "model_input", "time_first"]


def input_dims(model: nn.Module, sample: Tensor) -> int:
    """How many dimensions one input step has: ``len(model.input_shape)`` when the model declares one, else
    ``sample.dim()`` (``sample``: one data-set sample without the batch dimension)."""
    shape = getattr(model, "input_shape", None)
    return len(shape) if shape is not None else sample.dim()


def time_first(x: Tensor, input_dims: int) -> Tensor:
    """A loader batch ``[B, *sample]`` → ``[T, B, ...]`` when samples are sequences (``x.dim() == input_dims + 2``);
    a static ``[B, *input]`` passes unchanged."""
    return x.transpose(0, 1) if x.dim() == input_dims + 2 else x


def model_input(model: nn.Module, x: Tensor) -> Tensor:
    """A batch ``x`` (``[B, *input]`` or ``[B, T, *input]``) as ``model`` takes it; the model's ``input_shape``
    (if any) tells a sequence from a static batch."""
    return time_first(x, input_dims(model, x[0]))


def model_batch(batch: Any, dims: int, device: torch.device | None = None,
                non_blocking: bool = False) -> tuple[Tensor, Tensor]:
    """``(x, y)`` of a loader batch on ``device`` (``None``: where it is), ``x`` time first (:func:`time_first`)."""
    x, y = batch
    if device is not None:
        x, y = x.to(device, non_blocking=non_blocking), y.to(device, non_blocking=non_blocking)
    return time_first(x, dims), y
