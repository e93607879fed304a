"""Fixed-seed train/validation splits (SPEC §9: PLIF's 85/15 split of the training set)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["train_val_split"]


def train_val_split(n: int, val_fraction: float = 0.15, seed: int = 0,
                    labels: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0 .. n-1`` into a training and a validation part, deterministically.

    A permutation from ``numpy.random.default_rng(seed)``; the validation part is its first
    ``round(n · val_fraction)`` entries. With ``labels``, the split is stratified: each class ``c`` (in
    ascending order) gives ``round(n_c · val_fraction)`` of its indices, from one permutation of that
    class drawn in turn from the same generator. The two parts are disjoint and cover ``0 .. n-1``.

    Args:
        n: number of samples (>= 2).
        val_fraction: share of the validation part, in (0, 1); 0.15 for PLIF.
        seed: the generator seed (same seed → same split on every machine and numpy ≥ 1.17).
        labels: ``[n]`` integer class labels for a stratified split, or None.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 arrays, both non-empty.

    Raises:
        ValueError: ``n`` < 2, ``val_fraction`` outside (0, 1), ``labels`` of the wrong length, or a split
            that would leave one part empty.
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"train_val_split: n must be >= 2, got {n}")
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"train_val_split: val_fraction must lie in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n)
        val = perm[: int(round(n * val_fraction))]
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"train_val_split: labels must have shape ({n},), got {labels.shape}")
        parts = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            parts.append(rng.permutation(idx)[: int(round(len(idx) * val_fraction))])
        val = np.concatenate(parts)
    if len(val) == 0 or len(val) == n:
        raise ValueError(f"train_val_split: val_fraction={val_fraction} of n={n} leaves an empty part")
    mask = np.zeros(n, dtype=bool)
    mask[val] = True
    return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)
