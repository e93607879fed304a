"""Events → frames (SPEC §8.2) and a disk cache for the integrated frames.

An event stream is a numpy structured array of :data:`EVENT_DTYPE` (``t`` int64 µs, ``x``, ``y`` int16,
``p`` int8 in {0, 1}) in file order, as the readers ``read_nmnist``, ``read_aedat31`` and ``read_aedat2``
return it. :func:`events_to_frames` integrates it into ``T`` frames of per-(polarity, pixel) counts;
:func:`cached_frames` stores such frames once per source file and parameter set as a compressed ``.npz``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor

__all__ = ["EVENT_DTYPE", "make_events", "events_to_frames", "frame_key", "cached_frames", "prebuild"]

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])
"""The structured dtype every reader returns: time (µs), column, row, polarity (1 = ON)."""

BY = ("count", "time")
REMAINDER = ("last", "drop")
NORMALIZE = (None, "frame_max")


def make_events(t: Any, x: Any, y: Any, p: Any) -> np.ndarray:
    """An :data:`EVENT_DTYPE` array from four equally long 1-d arrays (cast, not checked for range)."""
    out = np.empty(len(t), dtype=EVENT_DTYPE)
    out["t"], out["x"], out["y"], out["p"] = t, x, y, p
    return out


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")


def frame_index(events: np.ndarray, T: int, by: str = "count", remainder: str = "last") -> np.ndarray:
    """The frame (0..T-1) each event falls into, or -1 for an event ``remainder="drop"`` discards.

    By count: frame j holds indices [⌊N/T⌋·j, ⌊N/T⌋·(j+1)); by time, with Δ = ⌊(t_last − t_0)/T⌋,
    frame j holds t_0 + jΔ ≤ t < t_0 + (j+1)Δ. What lies past the T-th frame goes to the last frame
    (``"last"``) or is dropped (``"drop"``). When ⌊N/T⌋ or Δ is 0, frames 0..T-2 are empty.
    """
    n = len(events)
    if by == "count":
        pos = np.arange(n, dtype=np.int64)
        step = n // T
    else:
        t = events["t"].astype(np.int64, copy=False)
        t0 = int(t[0])
        pos = t - t0
        step = (int(t[-1]) - t0) // T
        if (pos < 0).any():
            raise ValueError("events_to_frames(by='time'): timestamps must not fall before the first event's "
                             f"(t_0={t0} µs, min t={int(t.min())} µs)")
    if step <= 0:
        idx = np.full(n, T - 1, dtype=np.int64)
        if remainder == "drop":
            idx[:] = -1
        return idx
    idx = pos // step
    over = idx >= T
    if remainder == "drop":
        idx[over] = -1
    else:
        idx[over] = T - 1
    return idx


def events_to_frames(events: np.ndarray, T: int, size: tuple[int, int] | None = None, by: str = "count",
                     remainder: str = "last", normalize: str | None = None) -> Tensor:
    """Integrate an event stream into ``T`` frames of per-(polarity, pixel) counts (SPEC §8.2).

    Frame j of the count split covers event indices [⌊N/T⌋·j, ⌊N/T⌋·(j+1)) (oracle D4: N = 10,
    T = 3 → [0, 3), [3, 6), [6, 10)); the time split cuts [t_0, t_last] into T spans of
    Δ = ⌊(t_last − t_0)/T⌋ µs. Repeated (p, y, x) accumulate (``np.bincount``).

    Args:
        events: structured array with fields ``t`` (µs), ``x``, ``y``, ``p`` (0/1), in time order.
        T: number of frames, ≥ 1.
        size: ``(H, W)`` of the sensor; ``None`` takes (max y + 1, max x + 1).
        by: ``"count"`` (equal event counts) or ``"time"`` (equal durations).
        remainder: ``"last"`` (default: the events past T·⌊N/T⌋, or past t_0 + TΔ, join the last frame)
            or ``"drop"`` (discard them, as TET and tonic 1.7 do).
        normalize: ``None`` (counts) or ``"frame_max"`` (each frame divided by its own maximum; an
            all-zero frame stays zero).

    Shape:
        Returns ``[T, 2, H, W]`` float32: channel = polarity (p = 0 → channel 0), rows y, columns x.

    Raises:
        ValueError: T < 1, an empty stream, events outside ``size`` or with p ∉ {0, 1}, an unknown
            ``by``/``remainder``/``normalize``.

    Example:
        >>> ev = make_events([0, 1, 2], [0, 1, 1], [0, 0, 0], [1, 0, 0])
        >>> events_to_frames(ev, T=1, size=(1, 2))[0, 0].tolist()
        [[0.0, 2.0]]
    """
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"events_to_frames: T must be an integer >= 1, got {T!r}")
    T = int(T)
    _check_choice("events_to_frames: by", by, BY)
    _check_choice("events_to_frames: remainder", remainder, REMAINDER)
    _check_choice("events_to_frames: normalize", normalize, NORMALIZE)
    if not isinstance(events, np.ndarray) or events.dtype.names is None or \
            not {"t", "x", "y", "p"} <= set(events.dtype.names):
        raise ValueError("events_to_frames: events must be a structured array with fields t, x, y, p")
    n = len(events)
    if n == 0:
        raise ValueError("events_to_frames: the event stream is empty (no events to integrate)")
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = events["p"].astype(np.int64)
    if size is None:
        size = (int(y.max()) + 1, int(x.max()) + 1)
    H, W = int(size[0]), int(size[1])
    if H < 1 or W < 1:
        raise ValueError(f"events_to_frames: size must be (H, W) with H, W >= 1, got {tuple(size)}")
    bad = (x < 0) | (x >= W) | (y < 0) | (y >= H)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"events_to_frames: {int(bad.sum())} event(s) outside size (H, W) = ({H}, {W}); "
                         f"first at index {i}: x={int(x[i])}, y={int(y[i])}")
    if ((p != 0) & (p != 1)).any():
        raise ValueError(f"events_to_frames: polarity p must be 0 or 1, got values {np.unique(p).tolist()}")
    idx = frame_index(events, T, by, remainder)
    keep = idx >= 0
    flat = ((idx[keep] * 2 + p[keep]) * H + y[keep]) * W + x[keep]
    counts = np.bincount(flat, minlength=T * 2 * H * W).astype(np.float32).reshape(T, 2, H, W)
    if normalize == "frame_max":
        m = counts.reshape(T, -1).max(axis=1)
        np.divide(counts, m[:, None, None, None], out=counts, where=m[:, None, None, None] > 0)
    return torch.from_numpy(counts)


# ---------------------------------------------------------------------------------------------- cache
def frame_key(path: str | os.PathLike, **params: Any) -> dict:
    """Cache-key parameters for frames made from one source file: its absolute path, size and mtime
    (so an edited or replaced file is re-integrated) plus the integration ``params`` (T, by, ...)."""
    st = os.stat(path)
    key = {"source": os.path.abspath(os.fspath(path)), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    key.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()})
    return key


def _key_text(key_params: dict) -> str:
    return json.dumps(key_params, sort_keys=True, default=str)


def cached_frames(cache_dir: str | os.PathLike | None, key_params: dict,
                  compute_fn: Callable[[], Tensor | np.ndarray]) -> Tensor:
    """Frames from ``cache_dir`` if present and intact, else ``compute_fn()`` saved there first.

    The file is ``<sha1 of the parameters>.npz`` (compressed, holding the frames and the parameters as
    JSON); it is written under a temporary name and moved in place with ``os.replace``, so an interrupted
    run never leaves a half-written cache entry. A cache file that cannot be read, or whose stored
    parameters differ, is rebuilt. ``cache_dir=None`` just calls ``compute_fn``.

    Returns:
        float32 tensor, as ``compute_fn`` made it.
    """
    if cache_dir is None:
        out = compute_fn()
        return out if isinstance(out, Tensor) else torch.from_numpy(np.ascontiguousarray(out))
    text = _key_text(key_params)
    name = hashlib.sha1(text.encode()).hexdigest() + ".npz"
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, name)
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == text:
                    return torch.from_numpy(np.array(z["frames"]))
        except Exception:  # noqa: BLE001 - truncated/corrupt zip (BadZipFile, zlib.error, EOFError, ...): rebuild
            pass
    out = compute_fn()
    arr = out.numpy() if isinstance(out, Tensor) else np.asarray(out)
    fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, frames=arr, key=np.array(text))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out if isinstance(out, Tensor) else torch.from_numpy(np.ascontiguousarray(arr))


def prebuild(dataset: Any, indices: Iterable[int] | None = None, desc: str | None = None) -> None:
    """Integrate (and so cache) every sample of ``dataset`` once, with a tqdm bar when stderr is a TTY."""
    from tqdm import tqdm

    idx = list(range(len(dataset))) if indices is None else list(indices)
    for i in tqdm(idx, desc=desc or f"caching {type(dataset).__name__}", disable=not sys.stderr.isatty()):
        dataset.frames(i)
