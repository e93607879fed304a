"""Random temporal delete (SEW supplement A.2, code ``dvsgesture/train.py``; SPEC §6.5, oracle F10).

A training-time batch operation: draw ``T_train`` of the ``T`` steps without replacement, sort them (the
temporal order is kept) and keep ``x[idx]`` — one ``idx`` per batch, shared by all samples.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["random_temporal_delete", "rtd_indices"]


def rtd_indices(T: int, T_train: int, generator: torch.Generator | np.random.RandomState | None = None) -> Tensor:
    """Sorted indices of ``T_train`` distinct steps out of ``T``.

    With a ``torch.Generator`` (or ``None``: torch's global RNG) the draw is
    ``torch.randperm(T, generator)[:T_train]``; with a ``numpy.random.RandomState`` it is SEW's
    ``rng.choice(T, T_train, replace=False)`` (oracle F10: ``RandomState(0)``, T = 16, T_train = 12 →
    [1, 2, 4, 6, 7, 8, 9, 10, 11, 13, 14, 15]).
    """
    if isinstance(T_train, bool) or not isinstance(T_train, (int, np.integer)) or not 1 <= T_train <= T:
        raise ValueError(f"random_temporal_delete: T_train must be an integer in [1, T={T}], got {T_train!r}")
    if isinstance(generator, np.random.RandomState):
        idx = torch.from_numpy(generator.choice(T, int(T_train), replace=False).astype(np.int64))
    else:
        idx = torch.randperm(T, generator=generator)[: int(T_train)]
    return torch.sort(idx).values


def random_temporal_delete(x: Tensor, T_train: int, generator: torch.Generator | np.random.RandomState | None = None,
                           training: bool = True) -> Tensor:
    """Keep ``T_train`` random steps of the time-first batch ``x``, in temporal order.

    Args:
        x: ``[T, B, ...]`` a batch, time first.
        T_train: steps kept, 1 ≤ T_train ≤ T (SEW on DVS Gesture: 12 of 16).
        generator: the run's seeded ``torch.Generator`` (``None``: torch's global RNG), or a
            ``numpy.random.RandomState`` to reproduce SEW's draw exactly.
        training: ``False`` returns ``x`` itself (the test pass uses all T steps).

    Shape:
        ``[T, B, ...]`` → ``[T_train, B, ...]``.

    Raises:
        ValueError: ``x`` has no time dimension, or T_train is outside [1, T].

    Example:
        >>> x = torch.arange(16.).view(16, 1)
        >>> random_temporal_delete(x, 12, torch.Generator().manual_seed(0)).shape
        torch.Size([12, 1])
    """
    if x.dim() < 1:
        raise ValueError(f"random_temporal_delete: x must be [T, B, ...], got shape {tuple(x.shape)}")
    idx = rtd_indices(x.shape[0], T_train, generator)
    if not training:
        return x
    return x[idx.to(x.device)]
