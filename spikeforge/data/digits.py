"""scikit-learn's digits (8×8 grey images, 1797 samples, 10 classes): the embedded default (SPEC §9).

Split: stratified 80/20 with a fixed seed (``split_seed=0``: 1437 train / 360 test); pixels 0..16
scaled by ``scale`` (default 1/16, so inputs lie in [0, 1]). Samples are ``([64] float32, int64 label)``;
the model repeats the static image over its T steps.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from spikeforge.data.registry import DATASETS

__all__ = ["load_digits_split"]

SPLITS = ("train", "test")


def load_digits_split(split: str, split_seed: int = 0, test_fraction: float = 0.2, scale: float = 1 / 16) -> TensorDataset:
    """One split of the digits as a ``TensorDataset`` of ``x [N, 64]`` float32 and ``y [N]`` int64."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in SPLITS:
        raise ValueError(f"digits: split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must lie in (0, 1), got {test_fraction}")
    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=test_fraction, stratify=data.target, random_state=split_seed
    )
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    return TensorDataset(torch.from_numpy((x * scale).astype(np.float32)), torch.from_numpy(y.astype(np.int64)))


@DATASETS.register("digits")
def _digits(root: str | None = None, split: str = "train", split_seed: int = 0, scale: float = 1 / 16,
            test_fraction: float = 0.2) -> TensorDataset:
    return load_digits_split(split, split_seed=split_seed, test_fraction=test_fraction, scale=scale)
