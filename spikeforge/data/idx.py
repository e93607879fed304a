"""MNIST / Fashion-MNIST IDX files (SPEC §8.3), plain or gzipped.

Format (big-endian): bytes 0–1 are zero, byte 2 the element type (``0x08`` = uint8, the only type
MNIST uses), byte 3 the number of dimensions ``d``; then ``d`` uint32 sizes, then the elements in
row-major order. The MNIST magics, read as one big-endian uint32, are 2051 (``0x00000803``,
images ``[N, 28, 28]``) and 2049 (``0x00000801``, labels ``[N]``).

Files are looked for under ``root`` as ``<name>`` or ``<name>.gz``, also in the ``MNIST/raw/`` or
``FashionMNIST/raw/`` sub-folder torchvision writes, and in ``raw/``.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_FILES", "find_idx_file", "load_mnist_idx", "read_idx"]

#: (images, labels) file names per split; identical for MNIST and Fashion-MNIST.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MAGIC_IMAGES = 2051
MAGIC_LABELS = 2049
_TYPE_UINT8 = 0x08


def _read_bytes(path: Path) -> bytes:
    """All bytes of ``path``, gunzipped when the name ends in ``.gz``; a bad gzip stream → ValueError."""
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile, CRC errors, truncated streams
            raise ValueError(f"{path}: corrupt gzip stream ({type(e).__name__}: {e})") from None
    with open(path, "rb") as f:
        return f.read()


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read one IDX file of uint8 elements.

    Args:
        path: the file; a ``.gz`` suffix means gzip-compressed.
        magic: the expected magic number (2051 images, 2049 labels); ``None`` accepts any uint8 IDX.

    Returns:
        a read-only uint8 array with the file's dimensions (``[N, 28, 28]`` for MNIST images,
        ``[N]`` for labels), a zero-copy view of the file's bytes.

    Raises:
        ValueError: naming the file and the defect: too short for its header, wrong magic, an element
            type other than uint8, or sizes inconsistent with the file length (truncated / trailing bytes).
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: IDX file too short for its 4-byte magic ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise ValueError(f"{path}: wrong IDX magic {found} (0x{found:08x}), expected {magic} (0x{magic:08x})")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (first two bytes must be zero, got 0x{data[0]:02x}{data[1]:02x})")
    if data[2] != _TYPE_UINT8:
        raise ValueError(f"{path}: unsupported IDX element type 0x{data[2]:02x} (only 0x08 = uint8 is read)")
    ndim = data[3]
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=object))
    if len(data) != expected:
        defect = "truncated" if len(data) < expected else "trailing bytes"
        raise ValueError(
            f"{path}: {defect}: dimensions {dims} need {expected} bytes (header {header}), file has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_idx_file(root: str | os.PathLike, name: str, subfolders: tuple[str, ...] = ("MNIST", "FashionMNIST")) -> Path:
    """The path of IDX file ``name`` (or ``name.gz``) under ``root``.

    Looks in ``root``, ``root/raw`` and ``root/<sub>/raw`` for each ``sub`` in ``subfolders``, plain file first.

    Raises:
        FileNotFoundError: naming the file and every place looked at.
    """
    root = Path(root)
    dirs = [root, root / "raw", *(root / s / "raw" for s in subfolders)]
    tried = []
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
            tried.append(str(candidate))
    raise FileNotFoundError(f"IDX file {name}[.gz] not found under {root}; looked for: {', '.join(tried)}")


def load_mnist_idx(root: str | os.PathLike, split: str = "train",
                   subfolders: tuple[str, ...] = ("MNIST", "FashionMNIST"),
                   num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One split of MNIST or Fashion-MNIST from its IDX files.

    Args:
        root: the data folder (see the module docstring for where files are looked for).
        split: ``"train"`` (``train-*``) or ``"test"`` (``t10k-*``).
        subfolders: torchvision-style sub-folders also searched (``<sub>/raw``).
        num_classes: labels must lie in ``0 .. num_classes - 1``.

    Returns:
        ``(images, labels)``: uint8 ``[N, 28, 28]`` (0 = black background for MNIST) and int64 ``[N]``.

    Raises:
        ValueError: a defective file (see :func:`read_idx`), images not ``[N, 28, 28]``, labels not
            ``[N]``, counts that differ between the two files, or a label out of range; always naming the file.
        FileNotFoundError: a missing file, naming where it was looked for.
    """
    if split not in IDX_FILES:
        raise ValueError(f"IDX: split must be one of {', '.join(IDX_FILES)}, got {split!r}")
    img_name, lbl_name = IDX_FILES[split]
    img_path = find_idx_file(root, img_name, subfolders)
    lbl_path = find_idx_file(root, lbl_name, subfolders)
    images = read_idx(img_path, MAGIC_IMAGES)
    labels = read_idx(lbl_path, MAGIC_LABELS)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected images [N, 28, 28], got dimensions {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{lbl_path}: expected labels [N], got dimensions {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{img_path} holds {images.shape[0]} images but {lbl_path} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise ValueError(f"{lbl_path}: label {int(labels[bad])} at index {bad} is outside 0..{num_classes - 1}")
    return images, labels.astype(np.int64)
