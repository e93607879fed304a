"""Datasets (SPEC §8): one module per format, one registry (``create_dataset``, ``list_datasets``)."""
from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from spikeforge.data.registry import DATASETS

from spikeforge.data import digits as _digits  # noqa: E402,F401  (registers "digits")

__all__ = ["DATASETS", "create_dataset", "list_datasets"]


def create_dataset(name: str, root: str | None = None, split: str = "train", **kwargs: Any) -> Dataset:
    """The dataset registered as ``name``, read from ``root`` (unused by embedded sets), one ``split``."""
    return DATASETS.get(name, root=root, split=split, **kwargs)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)
