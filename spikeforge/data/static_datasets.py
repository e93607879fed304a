"""Registered static image sets (SPEC §8.3, §9, §10): ``mnist``, ``fmnist``, ``cifar10``, ``cifar100``,
``tiny_imagenet``, ``imagenet``.

Every builder is ``(root, split="train"|"val"|"test", val_fraction=None, seed=0, augment=True,
normalize=True, stratify=False, generator=None)`` (ImageNet adds ``crop_size``/``resize_size``) and
returns a ``torch.utils.data.Dataset`` of ``(float32 [C, H, W], int64 label)``; pixel values are
``value / 255`` in [0, 1] before normalisation.

Splits: ``"test"`` is the official test files (Tiny-ImageNet and ImageNet: the val folder);
``"train"`` the training files; with ``val_fraction`` (PLIF: 0.15) :func:`~spikeforge.data.splits.train_val_split`
with ``seed`` carves ``"val"`` out of the training files and ``"train"`` keeps the rest. ``"val"`` without
``val_fraction`` raises.

Augmentation (``augment=True``, train split only; ``"val"`` and ``"test"`` never augment):

============  ==========================================================  ================================
set           train                                                       val / test
============  ==========================================================  ================================
MNIST         RandomCrop(28, padding=4) + RandomHorizontalFlip(0.5)       none
              (SPEC §7.2 PLIF: "flip + crop on MNIST"; pad 4 assumed, as
              CIFAR); ``augment="affine"``: the PLIF code's RandomAffine(
              degrees=30, translate=(0.15, 0.15), scale=(0.85, 1.11)),
              nearest, zero fill
F-MNIST       none (SPEC §7.2 and the PLIF code: none)                    none
CIFAR-10/100  RandomCrop(32, padding=4) + RandomHorizontalFlip(0.5)       none
Tiny-ImageNet RandomCrop(64, padding=4) + flip (assumed: SPEC gives none)  none (64×64 as stored)
ImageNet      RandomResizedCrop(224) + flip                               Resize(256) + CenterCrop(224)
============  ==========================================================  ================================

``augment`` is True, False or ``"affine"`` (MNIST only; any other set raises). Augmentation runs on the
float ``[C, H, W]`` image after ``ToFloat`` and before ``Normalize`` (zero padding / fill = black pixels).

Normalisation (``normalize=True``), per channel ``(x - mean) / std``:

- CIFAR-10 (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010): the values of kuangliu/pytorch-cifar
  that the DSR and TET reference code copy (the true pixel std is about (0.247, 0.243, 0.262)).
- CIFAR-100 (0.5071, 0.4867, 0.4408) / (0.2675, 0.2565, 0.2761): the usual CIFAR-100 statistics.
- ImageNet and Tiny-ImageNet (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225): the torchvision reference
  values used by the SEW ResNet code (Tiny-ImageNet reusing them is an assumption).
- MNIST 0.1307 / 0.3081; Fashion-MNIST 0.2860 / 0.3530 (own statistics). PLIF's code is believed to feed
  MNIST/F-MNIST unnormalised (first layer conv + BN); recipes may pass ``normalize=False``.

Random transforms draw from ``generator`` (a ``torch.Generator``; None = the global RNG, which the
DataLoader seeds per worker). A generator passed here is copied into every DataLoader worker, so
with ``num_workers > 0`` leave it None or the workers repeat each other's crops.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from spikeforge.data.cifar_pickle import load_cifar
from spikeforge.data.idx import load_mnist_idx
from spikeforge.data.image_folder import ImageFileDataset, imagenet_samples, tiny_imagenet_samples
from spikeforge.data.registry import DATASETS
from spikeforge.data.sources import where_to_get
from spikeforge.data.splits import train_val_split
from spikeforge.data.transforms import (
    CenterCrop, Compose, Normalize, RandomAffine, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, Resize,
    ToFloat,
)

__all__ = ["ArrayImageDataset", "MEAN_STD", "static_transform"]

#: per-channel (mean, std) of each set, on pixel values / 255
MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "fmnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "tiny_imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
SPLITS = ("train", "val", "test")
#: train crop size (zero padding 4, then a horizontal flip) of the sets augmented by crop + flip
_CROP = {"mnist": 28, "cifar10": 32, "cifar100": 32, "tiny_imagenet": 64}


class ArrayImageDataset(Dataset):
    """In-memory images: uint8 ``[N, C, H, W]`` and int64 ``[N]`` labels; item ``i`` is
    ``(transform(images[i]), labels[i])`` with ``transform`` applied to the uint8 ``[C, H, W]`` image."""

    def __init__(self, images: Tensor, labels: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if images.dim() != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"ArrayImageDataset: expected images [N, C, H, W] and labels [N], got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        self.images, self.labels, self.transform = images, labels, transform

    @property
    def targets(self) -> Tensor:
        return self.labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]

    def __repr__(self) -> str:
        return f"ArrayImageDataset({tuple(self.images.shape)}, transform={self.transform!r})"


def static_transform(name: str, train: bool, augment: bool | str = True, normalize: bool = True,
                     generator: torch.Generator | None = None, crop_size: int = 224, resize_size: int = 256,
                     layout: str = "CHW") -> Compose:
    """The per-item transform of set ``name`` (see the module docstring's tables): uint8 in ``layout`` →
    float32 ``[C, H, W]``. ``train`` selects the training augmentation (only when ``augment``);
    ``augment="affine"`` (MNIST only) picks the PLIF code's RandomAffine instead of crop + flip."""
    if name not in MEAN_STD:
        raise ValueError(f"static_transform: unknown set {name!r}; choose one of {', '.join(MEAN_STD)}")
    if augment not in (True, False, "affine"):
        raise ValueError(f"{name}: augment must be true, false or 'affine', got {augment!r}")
    if augment == "affine" and name != "mnist":
        raise ValueError(f"{name}: augment='affine' (the PLIF code's RandomAffine) is an MNIST option only; "
                         "use augment=true or false")
    ts: list[Callable[[Tensor], Tensor]] = [ToFloat(layout)]
    aug = train and bool(augment)
    if name == "imagenet":
        if aug:
            ts += [RandomResizedCrop(crop_size, generator=generator), RandomHorizontalFlip(0.5, generator=generator)]
        else:
            ts += [Resize(resize_size), CenterCrop(crop_size)]
    elif aug and augment == "affine":
        ts.append(RandomAffine(30, translate=(0.15, 0.15), scale=(0.85, 1.11), generator=generator))
    elif aug and name in _CROP:
        ts += [RandomCrop(_CROP[name], padding=4, generator=generator), RandomHorizontalFlip(0.5, generator=generator)]
    if normalize:
        ts.append(Normalize(*MEAN_STD[name]))
    return Compose(ts)


def _check(name: str, root: str | os.PathLike | None, split: str, val_fraction: float | None) -> None:
    if root is None:
        raise ValueError(f"{name} is read from files: {where_to_get(name)}")
    if split not in SPLITS:
        raise ValueError(f"{name}: split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "val" and val_fraction is None:
        raise ValueError(f"{name}: split='val' needs val_fraction "
                         f"(e.g. 0.15, PLIF's 85/15 split of the training files)")
    if val_fraction is not None and not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"{name}: val_fraction must lie in (0, 1), got {val_fraction}")


def _carve(dataset: Dataset, labels: Sequence[int] | np.ndarray, split: str, val_fraction: float | None,
           seed: int, stratify: bool) -> Dataset:
    """``dataset`` itself, or its train/val part of the fixed-seed split."""
    if split == "test" or val_fraction is None:
        return dataset
    tr, va = train_val_split(len(dataset), val_fraction, seed, labels=np.asarray(labels) if stratify else None)
    return Subset(dataset, (tr if split == "train" else va).tolist())


def _array_set(name: str, load: Callable[[str], tuple[np.ndarray, np.ndarray]], root, split, val_fraction, seed,
               augment, normalize, stratify, generator) -> Dataset:
    _check(name, root, split, val_fraction)
    images, labels = load("test" if split == "test" else "train")
    if images.ndim == 3:
        images = images[:, None]  # [N, 28, 28] -> [N, 1, 28, 28]
    images = np.ascontiguousarray(images)
    x = torch.from_numpy(images if images.flags.writeable else images.copy())  # IDX arrays view read-only bytes
    y = torch.from_numpy(labels)
    tf = static_transform(name, split == "train", augment, normalize, generator)
    return _carve(ArrayImageDataset(x, y, tf), labels, split, val_fraction, seed, stratify)


def _folder_set(name: str, find, root, split, val_fraction, seed, augment, normalize, stratify, generator,
                **tf_kw) -> Dataset:
    _check(name, root, split, val_fraction)
    samples, classes = find(root, "test" if split == "test" else "train")
    tf = static_transform(name, split == "train", augment, normalize, generator, layout="HWC", **tf_kw)
    ds = ImageFileDataset(samples, classes, tf)
    return _carve(ds, ds.targets, split, val_fraction, seed, stratify)


@DATASETS.register("mnist")
def _mnist(root=None, split="train", val_fraction=None, seed=0, augment=True, normalize=True, stratify=False,
           generator=None) -> Dataset:
    """MNIST (IDX, 28×28 grey, 10 classes): items ``(float32 [1, 28, 28], int64)``; 60 000 train / 10 000 test."""
    return _array_set("mnist", lambda s: load_mnist_idx(root, s, ("MNIST",)), root, split, val_fraction, seed,
                      augment, normalize, stratify, generator)


@DATASETS.register("fmnist")
def _fmnist(root=None, split="train", val_fraction=None, seed=0, augment=True, normalize=True, stratify=False,
            generator=None) -> Dataset:
    """Fashion-MNIST (IDX, same layout as MNIST): items ``(float32 [1, 28, 28], int64)``."""
    return _array_set("fmnist", lambda s: load_mnist_idx(root, s, ("FashionMNIST",)), root, split, val_fraction,
                      seed, augment, normalize, stratify, generator)


@DATASETS.register("cifar10")
def _cifar10(root=None, split="train", val_fraction=None, seed=0, augment=True, normalize=True, stratify=False,
             generator=None) -> Dataset:
    """CIFAR-10 (python pickles): items ``(float32 [3, 32, 32], int64 0..9)``; 50 000 train / 10 000 test."""
    return _array_set("cifar10", lambda s: load_cifar(root, "cifar10", s), root, split, val_fraction, seed,
                      augment, normalize, stratify, generator)


@DATASETS.register("cifar100")
def _cifar100(root=None, split="train", val_fraction=None, seed=0, augment=True, normalize=True, stratify=False,
              generator=None) -> Dataset:
    """CIFAR-100 (python pickles, fine labels): items ``(float32 [3, 32, 32], int64 0..99)``."""
    return _array_set("cifar100", lambda s: load_cifar(root, "cifar100", s), root, split, val_fraction, seed,
                      augment, normalize, stratify, generator)


@DATASETS.register("tiny_imagenet")
def _tiny_imagenet(root=None, split="train", val_fraction=None, seed=0, augment=True, normalize=True,
                   stratify=False, generator=None, class_order="sorted") -> Dataset:
    """Tiny-ImageNet (200 classes, 64×64 JPEG): items ``(float32 [3, 64, 64], int64)``; test = the val folder.

    ``class_order``: ``"sorted"`` wnids (default, ``ImageFolder``'s) or ``"wnids"`` (``wnids.txt`` line order).
    """
    def find(r, s):
        return tiny_imagenet_samples(r, s, class_order)
    return _folder_set("tiny_imagenet", find, root, split, val_fraction, seed, augment,
                       normalize, stratify, generator)


@DATASETS.register("imagenet")
def _imagenet(root=None, split="train", val_fraction=None, seed=0, augment=True, normalize=True, stratify=False,
              generator=None, crop_size=224, resize_size=256) -> Dataset:
    """ImageNet (ILSVRC-2012 folder tree): items ``(float32 [3, crop_size, crop_size], int64 0..999)``.

    Non-augmented items (val/test, or ``augment=False``) are ``Resize(resize_size)`` + ``CenterCrop(crop_size)``.
    """
    return _folder_set("imagenet", imagenet_samples, root, split, val_fraction, seed, augment, normalize,
                       stratify, generator, crop_size=crop_size, resize_size=resize_size)
