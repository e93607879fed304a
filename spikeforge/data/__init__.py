"""Datasets (SPEC §8): one module per format, one registry (``create_dataset``, ``list_datasets``).

Importing this package registers every dataset: ``digits`` (embedded), ``mnist``, ``fmnist``,
``cifar10``, ``cifar100``, ``tiny_imagenet``, ``imagenet`` (static images) and ``nmnist``,
``dvs128_gesture``, ``cifar10_dvs`` (event streams integrated into frames).

Stands beside the model stack on the core alone (``registry``): it never imports neurons, layers, methods,
models or training.
"""
from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from spikeforge.data import digits as _digits  # noqa: F401  (registers digits)
from spikeforge.data import event_datasets as _events  # noqa: F401  (registers nmnist, dvs128_gesture, cifar10_dvs)
from spikeforge.data import static_datasets as _static  # noqa: F401  (registers mnist, fmnist, cifar10, cifar100, tiny_imagenet, imagenet)
from spikeforge.data.aedat import read_aedat2, read_aedat31
from spikeforge.data.frames import events_to_frames
from spikeforge.data.nmnist_bin import read_nmnist
from spikeforge.data.registry import DATASETS
from spikeforge.data.rtd import random_temporal_delete
from spikeforge.data.sources import SOURCES, where_to_get

__all__ = [
    "DATASETS", "SOURCES", "create_dataset", "list_datasets",
    "read_nmnist", "read_aedat31", "read_aedat2", "events_to_frames", "random_temporal_delete",
]


def create_dataset(name: str, root: str | None = None, split: str = "train", **kwargs: Any) -> Dataset:
    """The dataset registered as ``name``, read from ``root`` (unused by embedded sets), one ``split``.

    Raises:
        ValueError: an unknown name or an option the set does not take (naming the valid ones); no ``root``
            for a set read from files. FileNotFoundError: its files are missing. These two say what
            ``--data-dir`` must hold and where the data set comes from (:mod:`.sources`).
    """
    if root is None and name in SOURCES:
        raise ValueError(f"data {name!r} is read from files: {where_to_get(name)}")
    try:
        return DATASETS.build(name, root=root, split=split, **kwargs)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; {where_to_get(name)}") if name in SOURCES else err from None


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.names(pattern)
