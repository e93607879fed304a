"""Tiny-ImageNet and ImageNet from their folder trees (SPEC §8.3), decoded lazily with Pillow.

Layouts:

- **Tiny-ImageNet** (``tiny-imagenet-200``, 64×64): ``wnids.txt`` (200 wnids, one a line),
  ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` with ``val/val_annotations.txt`` (tab-separated:
  file name, wnid, then the bounding box x0, y0, x1, y1, ignored). The official test set has no labels,
  so ``split="test"`` reads ``val`` (what the papers report as test accuracy).
- **ImageNet** (ILSVRC-2012 as torchvision's ``ImageFolder`` reads it): ``train/<wnid>/*.JPEG`` and
  ``val/<wnid>/*.JPEG``; ``split="test"`` reads ``val``.

Class index = position of the wnid in the **sorted** wnids (for both sets). For Tiny-ImageNet this is
what ``ImageFolder`` on the train folder gives, i.e. what the usual reference code (which re-files the
val images by class and uses ``ImageFolder``) trains with; the order of ``wnids.txt`` itself is not
sorted (``class_order="wnids"`` selects it, as some hand-written loaders do). ``root`` may be the set's folder or its parent
(``tiny-imagenet-200`` / ``imagenet`` / ``ILSVRC2012`` beneath it).

Items are ``(uint8 [H, W, 3] RGB tensor, int64 label)`` — Pillow's layout; the transform (for
example ``ToFloat()`` then crops) turns them into float ``[3, h, w]``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["IMAGE_EXTENSIONS", "ImageFileDataset", "decode_image", "imagenet_samples", "tiny_imagenet_samples"]

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def decode_image(path: str | os.PathLike) -> Tensor:
    """Decode one image file to RGB with Pillow.

    Returns:
        uint8 ``[H, W, 3]`` (rows y, columns x, channels R, G, B); greyscale/CMYK/palette files converted to RGB.

    Raises:
        ValueError: naming the file when it is missing, not an image, truncated or otherwise undecodable.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except Exception as e:  # FileNotFoundError, UnidentifiedImageError, truncated data (OSError), SyntaxError, ...
        raise ValueError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from None
    return torch.from_numpy(arr.copy())


class ImageFileDataset(Dataset):
    """A list of ``(path, label)`` decoded on access.

    Args:
        samples: ``[(path, class index), ...]``.
        classes: class names (wnids); ``classes[label]`` names a sample's class.
        transform: applied to the decoded uint8 ``[H, W, 3]`` tensor (None: returned as is).

    Shape:
        item: ``(transform(uint8 [H, W, 3]), int64 scalar label)``.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str],
                 transform: Callable[[Tensor], Tensor] | None = None) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.transform = transform

    @property
    def targets(self) -> list[int]:
        return [s[1] for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        path, label = self.samples[i]
        x = decode_image(path)
        if self.transform is not None:
            x = self.transform(x)
        return x, torch.tensor(label, dtype=torch.int64)

    def __repr__(self) -> str:
        return f"ImageFileDataset({len(self)} images, {len(self.classes)} classes, transform={self.transform!r})"


def _images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it
                      if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)


def _resolve_root(root: str | os.PathLike, names: Sequence[str], marker: str) -> Path:
    root = Path(root)
    for d in (root, *(root / n for n in names)):
        if (d / marker).exists():
            return d
    looked = ", ".join(str(d / marker) for d in (root, *(root / n for n in names)))
    raise FileNotFoundError(f"{marker} not found under {root}; looked for: {looked}")


def tiny_imagenet_samples(root: str | os.PathLike, split: str = "train",
                          class_order: str = "sorted") -> tuple[list[tuple[str, int]], list[str]]:
    """``(samples, classes)`` of Tiny-ImageNet ``split`` (``"train"``, or ``"val"``/``"test"`` = the val folder).

    ``class_order="sorted"`` (default; ``ImageFolder``'s) or ``"wnids"`` (the line order of ``wnids.txt``,
    which some hand-written loaders use) fixes the class indices.

    Raises:
        FileNotFoundError: ``wnids.txt`` not found under ``root`` or ``root/tiny-imagenet-200``.
        ValueError: naming the path: wnids.txt empty or with duplicates; a wnid's train folder missing;
            ``val/images`` or ``val/val_annotations.txt`` missing; an annotation line with < 2 fields, a
            duplicate file, an unknown wnid or a missing image; a val image without annotation; no images.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"tiny_imagenet: split must be one of train, val, test, got {split!r}")
    if class_order not in ("sorted", "wnids"):
        raise ValueError(f"tiny_imagenet: class_order must be 'sorted' or 'wnids', got {class_order!r}")
    base = _resolve_root(root, ("tiny-imagenet-200",), "wnids.txt")
    wnids_path = base / "wnids.txt"
    wnids = [w.strip() for w in wnids_path.read_text(encoding="utf-8", errors="replace").splitlines() if w.strip()]
    if not wnids:
        raise ValueError(f"{wnids_path}: no wnids")
    if len(set(wnids)) != len(wnids):
        raise ValueError(f"{wnids_path}: duplicate wnids")
    classes = sorted(wnids) if class_order == "sorted" else wnids
    index = {w: i for i, w in enumerate(classes)}
    samples: list[tuple[str, int]] = []
    if split == "train":
        for w in classes:
            folder = base / "train" / w / "images"
            if not folder.is_dir():
                raise ValueError(f"{folder}: missing train folder for wnid {w} (listed in {wnids_path})")
            samples += [(str(p), index[w]) for p in _images_in(folder)]
    else:
        folder, ann = base / "val" / "images", base / "val" / "val_annotations.txt"
        if not folder.is_dir():
            raise ValueError(f"{folder}: missing Tiny-ImageNet val image folder")
        if not ann.is_file():
            raise ValueError(f"{ann}: missing Tiny-ImageNet val annotation file")
        present = {p.name: p for p in _images_in(folder)}
        seen: set[str] = set()
        for n, line in enumerate(ann.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise ValueError(f"{ann}:{n}: expected tab-separated 'file<TAB>wnid[<TAB>bbox]', got {line!r}")
            name, w = fields[0].strip(), fields[1].strip()
            if w not in index:
                raise ValueError(f"{ann}:{n}: wnid {w!r} is not in {wnids_path}")
            if name in seen:
                raise ValueError(f"{ann}:{n}: {name} annotated twice")
            if name not in present:
                raise ValueError(f"{ann}:{n}: image {folder / name} does not exist")
            seen.add(name)
            samples.append((str(present[name]), index[w]))
        unlabelled = sorted(set(present) - seen)
        if unlabelled:
            raise ValueError(f"{ann}: no annotation for {len(unlabelled)} image(s) in {folder}, e.g. {unlabelled[0]}")
        samples.sort()
    if not samples:
        raise ValueError(f"{base}: no images found for split {split!r}")
    return samples, classes


def imagenet_samples(root: str | os.PathLike, split: str = "train") -> tuple[list[tuple[str, int]], list[str]]:
    """``(samples, classes)`` of ImageNet ``split`` (``"train"``, or ``"val"``/``"test"`` = ``val/<wnid>/``).

    Classes are the sorted sub-folders of ``train/`` (as ``ImageFolder``), so the val split's labels agree.

    Raises:
        FileNotFoundError: ``train/`` not found under ``root`` (or ``root/imagenet``, ``root/ILSVRC2012``).
        ValueError: naming the path: ``train/`` without class folders; ``val/`` missing; a val folder
            whose wnid has no train folder; no images.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"imagenet: split must be one of train, val, test, got {split!r}")
    base = _resolve_root(root, ("imagenet", "ILSVRC2012"), "train")
    train_dir = base / "train"
    with os.scandir(train_dir) as it:
        classes = sorted(e.name for e in it if e.is_dir())
    if not classes:
        raise ValueError(f"{train_dir}: no class folders (expected train/<wnid>/*.JPEG)")
    index = {w: i for i, w in enumerate(classes)}
    folder = train_dir if split == "train" else base / "val"
    if not folder.is_dir():
        raise ValueError(f"{folder}: missing ImageNet val folder (expected val/<wnid>/*.JPEG)")
    samples: list[tuple[str, int]] = []
    with os.scandir(folder) as it:
        sub = sorted(e.name for e in it if e.is_dir())
    for w in sub:
        if w not in index:
            raise ValueError(f"{folder / w}: wnid {w!r} has no folder in {train_dir}")
        samples += [(str(p), index[w]) for p in _images_in(folder / w)]
    if not samples:
        raise ValueError(f"{folder}: no images (expected {folder.name}/<wnid>/*.JPEG)")
    return samples, classes
