"""CIFAR-10 / CIFAR-100 "python version" pickle batches (SPEC §8.3).

CIFAR-10: ``cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` (train, 10 000 each) and
``test_batch``; CIFAR-100: ``cifar-100-python/train`` (50 000) and ``test`` (10 000). Each file is a
pickled dict (written by Python 2, read with ``encoding="bytes"``, so keys are ``bytes``) holding
``b'data'``, a uint8 array ``[N, 3072]`` — per row 1024 red, then 1024 green, then 1024 blue values,
each plane row-major 32×32 — and ``b'labels'`` (CIFAR-10, 0..9) or ``b'fine_labels'`` (CIFAR-100, 0..99).

Layout returned: **channels first**, uint8 ``[N, 3, 32, 32]`` (a zero-copy reshape of the rows),
labels int64 ``[N]``.

Files are unpickled with a restricted unpickler that only resolves the numpy globals an ndarray
needs, so a crafted file cannot run code; anything else, and every corrupt pickle, raises ValueError
naming the file.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

__all__ = ["CIFAR_LAYOUTS", "find_cifar_dir", "load_cifar", "read_cifar_batch"]

#: name -> (folder, train files, test files, label key, number of classes)
CIFAR_LAYOUTS = {
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), b"labels", 10),
    "cifar100": ("cifar-100-python", ("train",), ("test",), b"fine_labels", 100),
}

_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only the globals needed to rebuild numpy arrays (``numpy.core`` read as ``numpy._core``)."""

    def find_class(self, module: str, name: str):
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy._core") and not hasattr(np, "_core"):  # numpy < 2
            module = "numpy.core" + module[len("numpy._core"):]
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike, label_key: bytes = b"labels",
                     num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle batch.

    Args:
        path: the batch file (``data_batch_1``, ``test_batch``, ``train``, ``test``).
        label_key: ``b'labels'`` (CIFAR-10) or ``b'fine_labels'`` (CIFAR-100).
        num_classes: labels must lie in ``0 .. num_classes - 1``.

    Returns:
        ``(images, labels)``: uint8 ``[N, 3, 32, 32]`` (RGB planes, rows y, columns x) and int64 ``[N]``.

    Raises:
        ValueError: naming the file: not a pickle / truncated / disallowed content, not a dict, a key
            missing, data not uint8 ``[N, 3072]``, labels not N integers, or a label out of range.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # UnpicklingError, EOFError, ValueError, TypeError, IndexError, MemoryError, ...
        raise ValueError(f"{path}: corrupt CIFAR pickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    for key in (b"data", label_key):
        if key not in obj:
            keys = ", ".join(repr(k) for k in list(obj)[:8])
            raise ValueError(f"{path}: key {key!r} missing (keys: {keys})")
    data = obj[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array [N, 3072], got {desc}")
    try:
        labels = np.asarray(obj[label_key])
    except Exception as e:
        raise ValueError(f"{path}: {label_key!r} is not a list of integers ({e})") from None
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.shape[0] != data.shape[0]:
        raise ValueError(
            f"{path}: {label_key!r} must be {data.shape[0]} integers, got {labels.dtype} array of shape {labels.shape}"
        )
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{path}: label {int(labels[i])} at index {i} is outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def find_cifar_dir(root: str | os.PathLike, name: str = "cifar10") -> Path:
    """The folder holding the batches of ``name``: ``root`` itself or ``root/<cifar-10-batches-py|cifar-100-python>``.

    Raises:
        ValueError: ``name`` unknown.
        FileNotFoundError: neither place holds the expected files; the message lists them.
    """
    if name not in CIFAR_LAYOUTS:
        raise ValueError(f"CIFAR: name must be one of {', '.join(CIFAR_LAYOUTS)}, got {name!r}")
    folder, train, test, _, _ = CIFAR_LAYOUTS[name]
    root = Path(root)
    for d in (root / folder, root):
        if all((d / f).is_file() for f in train + test):
            return d
    missing = [f for f in train + test if not (root / folder / f).is_file()]
    raise FileNotFoundError(
        f"{name}: batches not found under {root} or {root / folder}; expected {', '.join(train + test)} "
        f"(missing in {root / folder}: {', '.join(missing)})"
    )


def load_cifar(root: str | os.PathLike, name: str = "cifar10", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One split of CIFAR-10 (``name="cifar10"``) or CIFAR-100 (``"cifar100"``, fine labels).

    Returns:
        ``(images, labels)``: uint8 ``[N, 3, 32, 32]`` and int64 ``[N]`` (train: 50 000, test: 10 000),
        train batches concatenated in order ``data_batch_1 … 5``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"{name}: split must be one of train, test, got {split!r}")
    d = find_cifar_dir(root, name)
    _, train, test, key, k = CIFAR_LAYOUTS[name]
    parts = [read_cifar_batch(d / f, key, k) for f in (train if split == "train" else test)]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
