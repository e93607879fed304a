"""Mixup (Zhang et al., 2018) for any registered loss: mix the inputs, mix the losses.

``x' = λ·x + (1 − λ)·x[perm]``, ``λ ~ Beta(α, α)`` drawn once per batch from the run's generator;
the loss is ``λ·L(out, y) + (1 − λ)·L(out, y[perm])``, which for cross-entropy (with or without label
smoothing) equals the cross-entropy with the mixed soft targets.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["MixedBatch", "mixed_loss", "mixup"]


@dataclass(frozen=True)
class MixedBatch:
    """The mixed input ``x`` (same shape as the batch), targets ``y_a`` ``[B]`` and ``y_b`` ``[B]``, weight ``lam`` of ``y_a``."""

    x: Tensor
    y_a: Tensor
    y_b: Tensor
    lam: float


def mixup(x: Tensor, y: Tensor, alpha: float, rng: np.random.Generator, batch_dim: int = 0) -> MixedBatch:
    """Mix the batch ``x`` (samples along ``batch_dim``: 0 for ``[B, ...]``, 1 for ``[T, B, ...]``) with a
    permutation of itself; ``alpha`` > 0 is the Beta parameter."""
    if alpha <= 0:
        raise ValueError(f"train.mixup must be > 0 to mix (got {alpha})")
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(y.shape[0])).to(y.device)
    mixed = lam * x + (1.0 - lam) * x.index_select(batch_dim, perm)
    return MixedBatch(mixed, y, y[perm], lam)


def mixed_loss(loss_fn: Callable[[Any, Tensor], Tensor], out: Any, batch: MixedBatch) -> Tensor:
    """``lam·loss(out, y_a) + (1 − lam)·loss(out, y_b)``."""
    return batch.lam * loss_fn(out, batch.y_a) + (1.0 - batch.lam) * loss_fn(out, batch.y_b)
