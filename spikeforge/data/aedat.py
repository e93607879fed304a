"""AEDAT event files: 3.1 (DVS128 Gesture) and 2.0 (CIFAR10-DVS), SPEC §8.1.

**AEDAT 3.1.** ASCII header lines starting with ``#`` (first ``#!AER-DAT3.1``, last ``#!END-HEADER\\r\\n``),
then packets: a 28-byte little-endian header (int16 eventType, int16 eventSource, int32 eventSize,
int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid)
followed by capacity × eventSize bytes. Polarity events (type 1, 8 bytes: uint32 data, int32 timestamp):
data bit 0 = valid, bit 1 = polarity, bits 2–16 = y, bits 17–31 = x; full time = ts | (tsOverflow << 31).
Packets of other types are skipped; only the first ``eventNumber`` events of a packet are read and only
valid ones kept. Oracle D2: data 0x00C80097, ts 123456 → (x, y, p) = (100, 37, 1), t = 123456
(2147607104 with tsOverflow = 1).

**AEDAT 2.0.** ``#`` header lines (first ``#!AER-DAT2.0``), then big-endian (uint32 address, uint32
timestamp µs) pairs. Address bit 0 = polarity bit, bits 1–7 = field a, bits 8–14 = field b, bit 15 =
external event (dropped). See :func:`read_aedat2` for the x/y convention.

Only the packet walk of AEDAT 3.1 is a Python loop (one iteration per packet, thousands of events
each); events are decoded with ``np.frombuffer`` and bit masks.
"""
from __future__ import annotations

import os
import struct

import numpy as np

from spikeforge.data.frames import EVENT_DTYPE, make_events

__all__ = ["read_aedat31", "read_aedat2", "decode_aedat31", "decode_aedat2", "parse_header"]

POLARITY_EVENT = 1
_PACKET = struct.Struct("<hhiiiiii")
_POLARITY_DTYPE = np.dtype([("data", "<u4"), ("ts", "<i4")])
_AEDAT2_DTYPE = np.dtype([("address", ">u4"), ("ts", ">u4")])
CONVENTIONS = ("spikingjelly", "tonic")


def parse_header(data: bytes, magic: bytes, name: str, end_line: bytes | None = None) -> tuple[list[bytes], int]:
    """The ``#`` header lines of an AEDAT file and the offset where the binary body starts.

    The first line must start with ``magic``; with ``end_line`` the header must end with that line
    (AEDAT 3.1's ``#!END-HEADER``), otherwise it ends at the first line not starting with ``#``.
    """
    if not data.startswith(magic):
        got = data[:len(magic)]
        raise ValueError(f"{name}: not an {magic[2:].decode()} file (expected the first header line to start "
                         f"with {magic.decode()!r}, got {got!r})")
    lines: list[bytes] = []
    pos = 0
    while pos < len(data) and data[pos:pos + 1] == b"#":
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ValueError(f"{name}: header line at byte {pos} is not terminated by a newline (truncated header)")
        line = data[pos:nl + 1]
        lines.append(line)
        pos = nl + 1
        if end_line is not None and line.rstrip(b"\r\n") == end_line:
            return lines, pos
    if end_line is not None:
        raise ValueError(f"{name}: header has no {end_line.decode()!r} line (truncated or corrupt header)")
    return lines, pos


def _read(path: str | os.PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# -------------------------------------------------------------------------------------------- AEDAT 3.1
def decode_aedat31(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an AEDAT 3.1 file (see :func:`read_aedat31`); ``name`` labels errors."""
    _, pos = parse_header(data, b"#!AER-DAT3.1", name, end_line=b"#!END-HEADER")
    chunks: list[np.ndarray] = []
    overflows: list[int] = []
    counts: list[int] = []
    end = len(data)
    k = 0
    while pos < end:
        if end - pos < _PACKET.size:
            raise ValueError(f"{name}: truncated packet header at byte {pos} (packet {k}: {end - pos} of "
                             f"{_PACKET.size} bytes)")
        etype, _src, esize, tsoff, tsover, cap, number, valid = _PACKET.unpack_from(data, pos)
        where = f"{name}: packet {k} at byte {pos}"
        pos += _PACKET.size
        if esize <= 0 or cap < 0 or number < 0 or valid < 0 or number > cap or valid > number:
            raise ValueError(f"{where}: inconsistent header (eventSize={esize}, capacity={cap}, "
                             f"number={number}, valid={valid}; need eventSize > 0 and "
                             "0 <= valid <= number <= capacity)")
        if not 0 <= tsoff <= esize - 4:
            raise ValueError(f"{where}: tsOffset={tsoff} does not fit an event of {esize} bytes")
        if tsover < 0:
            raise ValueError(f"{where}: negative tsOverflow={tsover}")
        payload = cap * esize
        if payload > end - pos:
            raise ValueError(f"{where}: payload of capacity {cap} × eventSize {esize} = {payload} bytes exceeds "
                             f"the {end - pos} bytes left (truncated file or corrupt packet header)")
        if etype == POLARITY_EVENT:
            if esize != 8 or tsoff != 4:
                raise ValueError(f"{where}: polarity packet with eventSize={esize}, tsOffset={tsoff} "
                                 "(expected 8 and 4)")
            if number:
                chunks.append(np.frombuffer(data, dtype=_POLARITY_DTYPE, count=number, offset=pos))
                overflows.append(tsover)
                counts.append(number)
        pos += payload
        k += 1
    if not chunks:
        return make_events(*(np.empty(0, np.int64),) * 4)
    ev = np.concatenate(chunks)
    d = ev["data"]
    ts = ev["ts"]
    if (ts < 0).any():
        i = int(np.flatnonzero(ts < 0)[0])
        raise ValueError(f"{name}: negative polarity-event timestamp {int(ts[i])} (polarity event {i}; corrupt data)")
    t = ts.astype(np.int64)
    if any(overflows):
        t |= np.repeat(np.asarray(overflows, dtype=np.int64), counts) << 31
    keep = (d & 1).astype(bool)
    if not keep.all():
        d, t = d[keep], t[keep]
    out = np.empty(len(d), dtype=EVENT_DTYPE)
    out["t"] = t
    out["x"] = ((d >> 17) & 0x7FFF).astype(np.int16)
    out["y"] = ((d >> 2) & 0x7FFF).astype(np.int16)
    out["p"] = ((d >> 1) & 1).astype(np.int8)
    return out


def read_aedat31(path: str | os.PathLike) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file (DVS128 Gesture), skipping other event types.

    Args:
        path: the ``.aedat`` file.

    Returns:
        structured array (``t`` int64 µs, ``x``, ``y`` int16, ``p`` int8 0/1) of the valid polarity
        events (data bit 0 set), in file order.

    Raises:
        ValueError: wrong magic, unterminated header, a truncated packet or a packet header whose sizes
            are inconsistent with each other or with the bytes left (names the file, packet and byte).
        OSError: the file cannot be read.
    """
    return decode_aedat31(_read(path), os.fspath(path))


# -------------------------------------------------------------------------------------------- AEDAT 2.0
def decode_aedat2(data: bytes, name: str = "<bytes>", convention: str = "spikingjelly") -> np.ndarray:
    """Decode the bytes of an AEDAT 2.0 file (see :func:`read_aedat2`); ``name`` labels errors."""
    if convention not in CONVENTIONS:
        raise ValueError(f"read_aedat2: convention must be one of {', '.join(map(repr, CONVENTIONS))}, "
                         f"got {convention!r}")
    _, pos = parse_header(data, b"#!AER-DAT2", name)
    body = len(data) - pos
    if body % 8:
        raise ValueError(f"{name}: event data of {body} bytes (from byte {pos}) is not a multiple of 8 "
                         f"(truncated file; {body % 8} trailing byte(s))")
    ev = np.frombuffer(data, dtype=_AEDAT2_DTYPE, offset=pos)
    addr = ev["address"].astype(np.uint32)  # native byte order once; masks below stay in uint32
    ts = ev["ts"]
    external = (addr & 0x8000) != 0
    if external.any():
        addr, ts = addr[~external], ts[~external]
    out = np.empty(len(addr), dtype=EVENT_DTYPE)
    out["t"] = ts
    a = ((addr >> 1) & 0x7F).astype(np.int16)
    b = ((addr >> 8) & 0x7F).astype(np.int16)
    bit0 = (addr & 1).astype(np.int8)
    if convention == "spikingjelly":
        out["x"], out["y"], out["p"] = 127 - b, 127 - a, 1 - bit0
    else:
        out["x"], out["y"], out["p"] = b, a, bit0
    return out


def read_aedat2(path: str | os.PathLike, convention: str = "spikingjelly") -> np.ndarray:
    """Read the events of an AEDAT 2.0 file (CIFAR10-DVS, jAER DVS128 addresses).

    Convention (x/y and polarity). The default, ``"spikingjelly"``, maps x = 127 − b, y = 127 − a,
    p = 1 − bit 0. We chose it because (1) the CIFAR10-DVS results the recipes reproduce (SEW's
    Wide-7B-Net, the PLIF net) were trained on SpikingJelly's integration of these files, so our frames
    equal theirs pixel for pixel and polarity channel for channel; and (2) jAER's DVS128 extractor
    (``e.type = (byte) (1 - addr & 1)``, type 1 = ON) reads bit 0 = 0 as an ON event, so p = 1 − bit 0
    keeps "p = 1 is ON" as in N-MNIST (B2 bit 7) and AEDAT 3.1 (data bit 1): channel 1 of every event
    data set is the ON channel. (jAER itself displays x = 127 − a, y = b with y upwards; neither library
    reproduces that orientation, which does not matter for training from scratch.) ``"tonic"`` gives tonic's
    ``read_dvs_128`` mapping (x = b, y = a, p = bit 0): the same image rotated by 180° (x ↦ 127 − x,
    y ↦ 127 − y) with the polarity channels swapped. Oracle D3: address 0x00001415, ts 5000 → (x, y, p) =
    (107, 117, 0) here, (20, 10, 1) under ``"tonic"``.

    Args:
        path: the ``.aedat`` file.
        convention: ``"spikingjelly"`` (default) or ``"tonic"``.

    Returns:
        structured array (``t`` int64 µs, ``x``, ``y`` int16, ``p`` int8 0/1), external events (address
        bit 15) dropped, in file order.

    Raises:
        ValueError: wrong magic, unterminated header line, body not a multiple of 8 bytes (names the file).
        OSError: the file cannot be read.
    """
    return decode_aedat2(_read(path), os.fspath(path), convention)
