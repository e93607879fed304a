"""Tiny but format-exact data sets on disk, one writer per registered data set (SPEC §8).

``write_fake_dataset(name, root)`` writes a few samples of data set ``name`` into the folder ``root`` in
the real on-disk format and returns the folder to pass as ``create_dataset(name, root=...)``. The
byte-level writers are those of the reader tests (``tests/data/test_*.py``), imported, not copied:

- ``mnist`` / ``fmnist``: IDX files (magic 2051 images / 2049 labels), 12 train and 5 test images 28×28;
- ``cifar10``: ``cifar-10-batches-py/data_batch_1..5`` + ``test_batch`` (4 images each); ``cifar100``:
  ``cifar-100-python/train`` (6) + ``test`` (3) with ``fine_labels``;
- ``tiny_imagenet``: ``tiny-imagenet-200`` with 3 wnids, 64×64 JPEGs, ``val_annotations.txt``;
- ``imagenet``: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``, 3 classes, 40×30 JPEGs;
- ``nmnist``: ``Train|Test/<digit>/<id>.bin`` (5 bytes per event), 34×34;
- ``dvs128_gesture``: AEDAT 3.1 trials with ``_labels.csv`` files and ``trials_to_train|test.txt``;
- ``cifar10_dvs``: ``<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0), 10 files per class (9 train, 1 test);
- ``digits``: embedded in scikit-learn, nothing to write (returns ``root`` unused).

Every event stream has at least 40 events, so any T ≤ 20 integrates into non-empty frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeforge.data.event_datasets import CIFAR10_CLASSES
from spikeforge.registry import Registry
from tests.data.test_aedat import gesture_file, polarity_packet, write_aedat2
from tests.data.test_cifar_pickle import write_batch, write_cifar10
from tests.data.test_event_datasets import rand_nmnist
from tests.data.test_idx import write_mnist
from tests.data.test_image_folder import make_imagenet, make_tiny

__all__ = ["FAKE_WRITERS", "write_fake_dataset"]

#: data set name -> ``writer(root: Path) -> Path`` (the root to read the set from)
FAKE_WRITERS: Registry[Path] = Registry("fake data set")

#: one DVS Gesture trial's labels: class (1..11), start and end in µs; the events span [1 000, 100 000)
GESTURE_LABELS = "class,startTime_usec,endTime_usec\n1,1000,30000\n5,30000,60000\n11,60000,99999\n"


def write_fake_dataset(name: str, root: str | Path) -> Path:
    """Write the fake data set ``name`` into ``root`` (created if missing); returns the root to read it from.

    Raises:
        ValueError: ``name`` has no writer (the message lists the ones that exist).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return FAKE_WRITERS.lookup(name)(root)


@FAKE_WRITERS.register("mnist")
@FAKE_WRITERS.register("fmnist")
def _idx(root: Path) -> Path:
    write_mnist(root, n_train=12, n_test=5)
    return root


@FAKE_WRITERS.register("cifar10")
def _cifar10(root: Path) -> Path:
    write_cifar10(root, n=4)
    return root


@FAKE_WRITERS.register("cifar100")
def _cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir()
    write_batch(folder / "train", 6, b"fine_labels", 100, seed=1)
    write_batch(folder / "test", 3, b"fine_labels", 100, seed=2)
    return root


@FAKE_WRITERS.register("tiny_imagenet")
def _tiny_imagenet(root: Path) -> Path:
    make_tiny(root, per_class=2, size=(64, 64))
    return root


@FAKE_WRITERS.register("imagenet")
def _imagenet(root: Path) -> Path:
    make_imagenet(root, size=(40, 30))
    return root


@FAKE_WRITERS.register("nmnist")
def _nmnist(root: Path) -> Path:
    for split, ids in (("Train", (1, 2)), ("Test", (3,))):
        for digit in range(10):
            for i in ids:
                rand_nmnist(root / split / str(digit) / f"{i}.bin", 40 + digit + i, seed=100 * digit + i)
    return root


@FAKE_WRITERS.register("dvs128_gesture")
def _dvs128_gesture(root: Path) -> Path:
    folder = root / "DvsGesture"
    folder.mkdir()
    rng = np.random.default_rng(5)
    train = ("user01_led", "user02_led", "user03_led", "user04_led")  # 4 per class: protocol B's 15 % keeps one
    for trial, n in ((train[0], 400), (train[1], 350), (train[2], 330), (train[3], 320), ("user24_led", 300)):
        t = np.sort(rng.integers(1_000, 100_000, n))
        x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
        packets = [polarity_packet(x[s:s + 64], y[s:s + 64], p[s:s + 64], t[s:s + 64]) for s in range(0, n, 64)]
        gesture_file(folder / f"{trial}.aedat", packets)
        (folder / f"{trial}_labels.csv").write_text(GESTURE_LABELS)
    (folder / "trials_to_train.txt").write_text("".join(f"{trial}.aedat\n" for trial in train))
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return root


@FAKE_WRITERS.register("cifar10_dvs")
def _cifar10_dvs(root: Path) -> Path:
    rng = np.random.default_rng(6)
    for cls in CIFAR10_CLASSES:
        (root / cls).mkdir()
        for i in range(10):  # per class the first 9 train, the last 1 test (train_fraction 0.9)
            n = 60 + i
            # addresses below 2^15: bit 15 (external event) clear, so every event is kept
            write_aedat2(root / cls / f"cifar10_{cls}_{i}.aedat", rng.integers(0, 1 << 15, n),
                         np.sort(rng.integers(0, 1 << 20, n)))
    return root


@FAKE_WRITERS.register("digits")
def _digits(root: Path) -> Path:
    return root  # scikit-learn's digits are embedded; the root is unused

