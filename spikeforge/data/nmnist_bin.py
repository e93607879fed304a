"""N-MNIST ``.bin`` event files (Orchard et al. 2015; SPEC §8.1).

Each event is 5 bytes: B0 = x, B1 = y, B2 bit 7 = polarity (1 = ON), timestamp (µs, 23 bits) =
(B2 & 0x7F) << 16 | B3 << 8 | B4. Sensor 34×34. Decoded with one ``np.frombuffer`` and bit masks.
"""
from __future__ import annotations

import os

import numpy as np

from spikeforge.data.frames import EVENT_DTYPE

__all__ = ["read_nmnist", "decode_nmnist"]

NMNIST_SIZE = (34, 34)


def decode_nmnist(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an N-MNIST ``.bin`` file (see :func:`read_nmnist`); ``name`` labels errors."""
    if len(data) % 5:
        raise ValueError(f"{name}: N-MNIST file size {len(data)} bytes is not a multiple of 5 "
                         f"(truncated or not an N-MNIST .bin; {len(data) % 5} trailing byte(s))")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5)
    b2 = raw[:, 2]
    out = np.empty(len(raw), dtype=EVENT_DTYPE)
    out["t"] = ((b2 & 0x7F).astype(np.int64) << 16) | (raw[:, 3].astype(np.int64) << 8) | raw[:, 4]
    out["x"], out["y"], out["p"] = raw[:, 0], raw[:, 1], b2 >> 7
    return out


def read_nmnist(path: str | os.PathLike) -> np.ndarray:
    """Read an N-MNIST ``.bin`` file.

    Oracle D1: bytes ``05 11 80 03 e8 21 00 7f ff ff 00 21 81 23 45`` → (x, y, p, t) = (5, 17, 1, 1000),
    (33, 0, 0, 8388607), (0, 33, 1, 74565).

    Args:
        path: the ``.bin`` file.

    Returns:
        structured array (``t`` int64 µs, ``x``, ``y`` int16, ``p`` int8 0/1), one row per event, in file order.

    Raises:
        ValueError: the size is not a multiple of 5 bytes (names the file).
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        data = f.read()
    return decode_nmnist(data, os.fspath(path))
