"""Event-camera data sets (SPEC §8.1, §8.2, §6.3): N-MNIST, DVS128 Gesture, CIFAR10-DVS.

Every sample is ``(frames, label)``: ``frames`` float32 ``[T, 2, H, W]`` from :func:`events_to_frames`
(T and ``by`` are options), ``label`` an int64 scalar. With ``cache_dir`` the integrated frames are
stored once per file and parameter set (:func:`cached_frames`); :meth:`EventFrames.prebuild` fills the
cache for a whole split with a progress bar.

Layouts (``root``):
- ``nmnist``: ``Train|Test/<digit>/<id>.bin``, 34×34.
- ``dvs128_gesture``: ``userNN_<lighting>.aedat`` + ``userNN_<lighting>_labels.csv`` (header row, then
  class 1..11, startTime_usec, endTime_usec) and ``trials_to_train.txt`` / ``trials_to_test.txt``
  (``root`` or ``root/DvsGesture``); one sample per labelled gesture: events with start ≤ t < end,
  label = class − 1; 128×128.
- ``cifar10_dvs``: ``<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0), classes alphabetical (airplane 0 …
  truck 9), sorted by the integer i; per class the first 90 % train, the last 10 % test (900/100 on the
  full set); 128×128, or 48×48 with ``tet=True`` (TET's pipeline, SPEC §6.3).
"""
from __future__ import annotations

import csv
import functools
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from spikeforge.data.aedat import read_aedat2, read_aedat31
from spikeforge.data.frames import cached_frames, events_to_frames, frame_key, prebuild
from spikeforge.data.nmnist_bin import read_nmnist
from spikeforge.data.registry import DATASETS
from spikeforge.data.rtd import random_temporal_delete  # noqa: F401  (re-exported by spikeforge.data)
from spikeforge.data.sources import where_to_get
from spikeforge.data.transforms import RandomCrop

__all__ = ["EventFrames", "EventSample", "nmnist_samples", "gesture_samples", "cifar10_dvs_samples",
           "tet_flip_roll", "tet_augment", "FrameRandomCrop", "CIFAR10_CLASSES", "GESTURE_CLASSES"]

SPLITS = ("train", "test")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
GESTURE_CLASSES = 11


@dataclass(frozen=True)
class EventSample:
    """One sample: a file, its label and, for DVS Gesture, the window start ≤ t < end (µs)."""
    path: str
    label: int
    window: tuple[int, int] | None = None
    labels_file: str | None = None


def _check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"{name}: split must be one of {', '.join(SPLITS)}, got {split!r}")


def _check_root(name: str, root: str | os.PathLike | None) -> str:
    if root is None:
        raise ValueError(f"{name} is read from files: {where_to_get(name)}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"{name}: root {root!r} is not a folder; {where_to_get(name)}")
    return root


def _int_key(name: str) -> tuple[int, str]:
    stem = os.path.splitext(name)[0]
    m = re.search(r"(\d+)$", stem)
    return (int(m.group(1)) if m else -1, name)


# ------------------------------------------------------------------------------------------- layouts
def nmnist_samples(root: str | os.PathLike, split: str) -> list[EventSample]:
    """``root/Train|Test/<digit>/<id>.bin`` → samples sorted by digit, then by the integer id."""
    _check_split("nmnist", split)
    root = _check_root("nmnist", root)
    top = os.path.join(root, "Train" if split == "train" else "Test")
    if not os.path.isdir(top):
        raise ValueError(f"nmnist: expected the folder {top!r}; {where_to_get('nmnist')}")
    missing = [d for d in map(str, range(10)) if not os.path.isdir(os.path.join(top, d))]
    if missing:
        raise ValueError(f"nmnist: {top!r} lacks the digit folder(s) {', '.join(missing)} "
                         "(layout Train|Test/<digit>/<id>.bin)")
    out = []
    for digit in range(10):
        folder = os.path.join(top, str(digit))
        names = sorted((n for n in os.listdir(folder) if n.endswith(".bin")), key=_int_key)
        out += [EventSample(os.path.join(folder, n), digit) for n in names]
    if not out:
        raise ValueError(f"nmnist: no .bin files under {top!r}")
    return out


def _gesture_dir(root: str) -> str:
    for d in (root, os.path.join(root, "DvsGesture")):
        if any(os.path.isfile(os.path.join(d, f"trials_to_{s}.txt")) for s in SPLITS):
            return d
    raise ValueError(f"dvs128_gesture: no trials_to_train.txt / trials_to_test.txt in {root!r} or its DvsGesture/; "
                     f"{where_to_get('dvs128_gesture')}")


def read_gesture_labels(csv_path: str) -> list[tuple[int, int, int]]:
    """``(class − 1, start, end)`` rows of a DVS Gesture labels CSV (header row first)."""
    rows = []
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{csv_path}: empty labels file (expected a header row, then "
                             "class,startTime_usec,endTime_usec)")
        for line_no, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise ValueError(f"{csv_path}: line {line_no} has {len(row)} fields, expected 3 (class,start,end)")
            try:
                cls, start, end = (int(v) for v in row[:3])
            except ValueError:
                raise ValueError(f"{csv_path}: line {line_no} is not three integers class,start,end: {row}") from None
            if not 1 <= cls <= GESTURE_CLASSES:
                raise ValueError(f"{csv_path}: line {line_no}: class {cls} outside 1..{GESTURE_CLASSES}")
            if end <= start:
                raise ValueError(f"{csv_path}: line {line_no}: endTime_usec {end} <= startTime_usec {start}")
            rows.append((cls - 1, start, end))
    return rows


def gesture_samples(root: str | os.PathLike, split: str) -> list[EventSample]:
    """One sample per labelled gesture of each trial listed in ``trials_to_<split>.txt``."""
    _check_split("dvs128_gesture", split)
    d = _gesture_dir(_check_root("dvs128_gesture", root))
    trials = os.path.join(d, f"trials_to_{split}.txt")
    if not os.path.isfile(trials):
        raise ValueError(f"dvs128_gesture: missing {trials!r}")
    with open(trials) as f:
        names = [ln.strip() for ln in f if ln.strip()]
    out = []
    for name in names:
        path = os.path.join(d, name)
        if not name.endswith(".aedat") or not os.path.isfile(path):
            raise ValueError(f"{trials}: lists {name!r}, which is not an .aedat file in {d!r}")
        labels = os.path.join(d, name[: -len(".aedat")] + "_labels.csv")
        if not os.path.isfile(labels):
            raise ValueError(f"dvs128_gesture: {path!r} has no labels file {labels!r}")
        out += [EventSample(path, c, (s, e), labels) for c, s, e in read_gesture_labels(labels)]
    if not out:
        raise ValueError(f"dvs128_gesture: {trials!r} yields no labelled gestures")
    return out


def cifar10_dvs_samples(root: str | os.PathLike, split: str, train_fraction: float = 0.9) -> list[EventSample]:
    """``root/<class>/cifar10_<class>_<i>.aedat``: per class, sorted by i, the first ``train_fraction``
    (rounded down; 900 of 1000) train and the rest test."""
    _check_split("cifar10_dvs", split)
    root = _check_root("cifar10_dvs", root)
    missing = [c for c in CIFAR10_CLASSES if not os.path.isdir(os.path.join(root, c))]
    if missing:
        raise ValueError(f"cifar10_dvs: {root!r} lacks the class folder(s) {', '.join(missing)}; "
                         f"{where_to_get('cifar10_dvs')}")
    out = []
    for label, cls in enumerate(CIFAR10_CLASSES):
        folder = os.path.join(root, cls)
        pat = re.compile(rf"^cifar10_{cls}_(\d+)\.aedat$")
        found = sorted((int(m.group(1)), n) for n in os.listdir(folder) if (m := pat.match(n)))
        if not found:
            raise ValueError(f"cifar10_dvs: no cifar10_{cls}_<i>.aedat files in {folder!r}")
        n_train = int(len(found) * train_fraction)
        part = found[:n_train] if split == "train" else found[n_train:]
        out += [EventSample(os.path.join(folder, n), label) for _, n in part]
    return out


# ---------------------------------------------------------------------------------- TET augmentation
def tet_flip_roll(frames: Tensor, flip: bool, dy: int, dx: int) -> Tensor:
    """TET's train augmentation with given draws: optional flip along W, then ``torch.roll`` by (dy, dx)
    over (H, W) with wrap-around. ``frames``: ``[T, C, H, W]`` (one draw shared by all frames)."""
    if flip:
        frames = frames.flip(-1)
    return torch.roll(frames, shifts=(int(dy), int(dx)), dims=(-2, -1))


def tet_augment(frames: Tensor, generator: torch.Generator | None = None, max_shift: int = 5) -> Tensor:
    """Draw TET's augmentation once per sample (hflip p = 0.5; dy, dx uniform in [−5, 5]) and apply it."""
    flip = bool(torch.rand((), generator=generator) < 0.5)
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return tet_flip_roll(frames, flip, dy, dx)


class FrameRandomCrop:
    """DSR's train crop of event frames ``[T, C, H, W]``: zero-pad ``padding`` on every side and crop back to
    ``(H, W)`` at ONE random offset shared by all T frames (:class:`RandomCrop` on the frames viewed as one
    ``[T·C, H, W]`` image: draws ``top``, then ``left``, from ``generator``)."""

    def __init__(self, padding: int, generator: torch.Generator | None = None) -> None:
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"FrameRandomCrop: padding must be an integer >= 0, got {padding!r}")
        self.padding, self.generator = int(padding), generator

    def __call__(self, frames: Tensor) -> Tensor:
        if not isinstance(frames, Tensor) or frames.dim() != 4:
            raise ValueError(f"FrameRandomCrop: expected frames [T, C, H, W], got {getattr(frames, 'shape', frames)}")
        T, C, H, W = frames.shape
        crop = RandomCrop((H, W), self.padding, self.generator)
        return crop(frames.reshape(T * C, H, W)).reshape(T, C, H, W)

    def __repr__(self) -> str:
        return f"FrameRandomCrop(padding={self.padding})"


# ------------------------------------------------------------------------------------------ data set
class EventFrames(Dataset):
    """Event files integrated into frames: ``(float32 [T, 2, H, W], int64 label)`` per sample.

    Args:
        samples: the files, labels and optional time windows.
        reader: ``path -> events`` (``read_nmnist``, ``read_aedat31``, ``read_aedat2``).
        size: sensor ``(H, W)``.
        T, by, remainder, normalize: passed to :func:`events_to_frames`.
        cache_dir: where integrated frames are cached (``None``: integrate on every access).
        resize: ``(h, w)`` bilinear resize of the frames (``F.interpolate``, antialiased like PIL's resize).
        transform: applied to the frames tensor last (e.g. :func:`tet_augment` for TET training).
    """

    def __init__(self, samples: list[EventSample], reader: Callable[[str], np.ndarray], size: tuple[int, int],
                 T: int, by: str = "count", remainder: str = "last", normalize: str | None = None,
                 cache_dir: str | os.PathLike | None = None, resize: tuple[int, int] | None = None,
                 transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be an integer >= 1, got {T!r}")
        for arg, value, choices in (("by", by, ("count", "time")), ("remainder", remainder, ("last", "drop")),
                                    ("normalize", normalize, (None, "frame_max"))):
            if value not in choices:
                raise ValueError(f"{arg} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        self.samples = list(samples)
        self.reader = reader
        self.size = tuple(size)
        self.T, self.by, self.remainder, self.normalize = T, by, remainder, normalize
        self.cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        self.resize = None if resize is None else tuple(resize)
        self.transform = transform
        self._last: tuple[str, np.ndarray] | None = None  # one decoded file (Gesture: many samples per file)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> list[int]:
        return [s.label for s in self.samples]

    def events(self, i: int) -> np.ndarray:
        """The events of sample ``i`` (its window of the file for DVS Gesture)."""
        s = self.samples[i]
        if self._last is not None and self._last[0] == s.path:
            ev = self._last[1]
        else:
            ev = self.reader(s.path)
            self._last = (s.path, ev)
        if s.window is None:
            return ev
        start, end = s.window
        if len(ev) == 0 or start > int(ev["t"][-1]) or end <= int(ev["t"][0]):
            span = "no events" if len(ev) == 0 else f"events span [{int(ev['t'][0])}, {int(ev['t'][-1])}] µs"
            raise ValueError(f"{s.labels_file}: label interval [{start}, {end}) µs lies outside the stream of "
                             f"{s.path} ({span})")
        t = ev["t"]
        return ev[(t >= start) & (t < end)]

    def _integrate(self, i: int) -> Tensor:
        ev = self.events(i)
        if len(ev) == 0:
            raise ValueError(f"{self.samples[i].path}: no events in sample {i} (empty stream)")
        return events_to_frames(ev, self.T, self.size, self.by, self.remainder, self.normalize)

    def frames(self, i: int) -> Tensor:
        """The (cached) integrated frames of sample ``i``, before resize and transform."""
        s = self.samples[i]
        if self.cache_dir is None:
            return self._integrate(i)
        key = frame_key(s.path, window=s.window, T=self.T, by=self.by, remainder=self.remainder,
                        normalize=self.normalize, size=self.size)
        return cached_frames(self.cache_dir, key, lambda: self._integrate(i))

    def prebuild(self) -> None:
        """Integrate and cache every sample (a tqdm bar when stderr is a TTY)."""
        prebuild(self)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = self.frames(i)
        if self.resize is not None and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False, antialias=True)
        if self.transform is not None:
            x = self.transform(x)
        return x, torch.tensor(self.samples[i].label, dtype=torch.int64)


# --------------------------------------------------------------------------------------- registered
@DATASETS.register("nmnist")
def _nmnist(root: str | None = None, split: str = "train", T: int = 10, by: str = "count",
            remainder: str = "last", normalize: str | None = None, cache_dir: str | None = None,
            **kw: Any) -> EventFrames:
    return EventFrames(nmnist_samples(root, split), read_nmnist, (34, 34), T, by, remainder, normalize,
                       cache_dir, **kw)


@DATASETS.register("dvs128_gesture")
def _dvs128_gesture(root: str | None = None, split: str = "train", T: int = 16, by: str = "count",
                    remainder: str = "last", normalize: str | None = None, cache_dir: str | None = None,
                    **kw: Any) -> EventFrames:
    return EventFrames(gesture_samples(root, split), read_aedat31, (128, 128), T, by, remainder, normalize,
                       cache_dir, **kw)


@DATASETS.register("cifar10_dvs")
def _cifar10_dvs(root: str | None = None, split: str = "train", T: int | None = None, by: str = "count",
                 remainder: str | None = None, normalize: str | None = None, cache_dir: str | None = None,
                 tet: bool = False, generator: torch.Generator | None = None,
                 train_fraction: float = 0.9, crop_padding: int | None = None, **kw: Any) -> EventFrames:
    """``tet=True``: TET's pipeline (SPEC §6.3): 10 frames by count, remainder dropped, each frame divided
    by its max, resized 128 → 48, and for ``split="train"`` hflip + roll drawn per sample.

    ``crop_padding`` (not with ``tet`` nor ``transform``): DSR's RandomCrop(48, padding=4) for ``split="train"``,
    i.e. :class:`FrameRandomCrop` on the (resized) frames ``[T, 2, H, W]``, one offset per sample."""
    if crop_padding is not None:
        if tet:
            raise ValueError("cifar10_dvs: crop_padding does not combine with tet=True (TET has its own flip + roll)")
        if "transform" in kw:
            raise ValueError("cifar10_dvs: pass crop_padding or transform, not both (which one applies is ambiguous)")
        crop = FrameRandomCrop(crop_padding, generator)  # validates the padding on every split
        if split == "train":
            kw["transform"] = crop
    samples = cifar10_dvs_samples(root, split, train_fraction)
    if tet:
        fixed = {"T": (T, 10), "by": (by, "count"), "remainder": (remainder, "drop"),
                 "normalize": (normalize, "frame_max")}
        for k, (given, want) in fixed.items():
            if given is not None and given != want and not (k == "by" and given == "count"):
                raise ValueError(f"cifar10_dvs(tet=True) fixes {k}={want!r}, got {given!r}")
        kw.setdefault("resize", (48, 48))
        if split == "train":
            kw.setdefault("transform", functools.partial(tet_augment, generator=generator))
        return EventFrames(samples, read_aedat2, (128, 128), 10, "count", "drop", "frame_max", cache_dir, **kw)
    return EventFrames(samples, read_aedat2, (128, 128), 10 if T is None else T, by,
                       "last" if remainder is None else remainder, normalize, cache_dir, **kw)
