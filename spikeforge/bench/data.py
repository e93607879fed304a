"""``spikeforge bench data``: event decoding and frame integration speed.

Synthetic files of ``--events`` random events are written to a temporary folder in each format
(N-MNIST ``.bin``; AEDAT 3.1 in packets of 4096 polarity events; AEDAT 2.0) and decoded by
``read_nmnist`` / ``read_aedat31`` / ``read_aedat2``; reported as events decoded per second (median of
``--repeats``). Frames: ``events_to_frames`` of a 128×128 stream of ``--frame-events`` events into T
frames (by count and by time), reported as frames integrated per second.

When tonic (GPL-3.0; benchmark comparison only, never a dependency) is installed, its readers
(``read_mnist_file``; for AEDAT 3.1 and 2.0 the bodies of ``read_dvs_ibm`` and ``read_dvs_128``, whose
1.7 releases fail on a changed helper signature, see :func:`_tonic_aedat`) and its
``to_frame_numpy`` (``n_event_bins`` / ``n_time_bins``) run on the same files and events. tonic's
package ``__init__`` imports every data set (h5py, rosbag readers, ...); :func:`load_tonic` therefore
imports only its ``io`` and ``functional.to_frame`` modules, which need numpy alone.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import struct
import sys
import tempfile
import time
import types
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["add_parser", "run", "load_tonic", "write_nmnist", "write_aedat31", "write_aedat2", "synthetic_events"]


def load_tonic() -> types.SimpleNamespace | None:
    """tonic's ``io`` and ``functional.to_frame`` modules without running tonic's package ``__init__``
    (None when tonic is not installed or they fail to import)."""
    spec = importlib.util.find_spec("tonic") if "tonic" not in sys.modules else sys.modules["tonic"].__spec__
    if spec is None or not spec.submodule_search_locations:
        return None
    if "tonic" not in sys.modules:
        pkg = types.ModuleType("tonic")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        sys.modules["tonic"] = pkg
    try:
        io = importlib.import_module("tonic.io")
        to_frame = importlib.import_module("tonic.functional.to_frame")
    except Exception:  # noqa: BLE001 - an incompatible tonic is just absent for the benchmark
        return None
    try:
        from importlib.metadata import version

        ver = version("tonic")
    except Exception:  # noqa: BLE001
        ver = "?"
    return types.SimpleNamespace(io=io, to_frame=to_frame, version=ver,
                                 read_aedat=lambda path, v: _tonic_aedat(io, path, v))


def _tonic_aedat(io: Any, path: str, version: str) -> np.ndarray:
    """tonic's ``read_dvs_ibm`` (``version="3.1"``) / ``read_dvs_128`` (``"2.0"``) bodies: in tonic 1.7 both
    unpack two values from ``read_aedat_header_from_file``, which returns three, so they always raise;
    this calls the same two helpers and applies the same bit masks."""
    data_version, data_start, _ = io.read_aedat_header_from_file(path)
    ev = io.get_aer_events_from_file(path, data_version, data_start)
    addr, t = ev["address"], ev["timeStamp"]
    if version == "3.1":
        x, y, p = (addr >> 17) & 0x1FFF, (addr >> 2) & 0x1FFF, (addr >> 1) & 1
    else:
        x, y, p = (addr >> 8) & 0x7F, (addr >> 1) & 0x7F, addr & 1
    return io.make_structured_array(x, y, t, p)


# ------------------------------------------------------------------------------------------ writers
def synthetic_events(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """``n`` random events on a ``width``×``height`` sensor, times sorted (µs)."""
    from spikeforge.data.frames import make_events

    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 1 << 22, n))
    return make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


def write_nmnist(path: str, ev: np.ndarray) -> None:
    t = ev["t"].astype(np.int64)
    raw = np.empty((len(ev), 5), np.uint8)
    raw[:, 0], raw[:, 1] = ev["x"], ev["y"]
    raw[:, 2] = (ev["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    with open(path, "wb") as f:
        f.write(raw.tobytes())


def write_aedat31(path: str, ev: np.ndarray, packet: int = 4096) -> None:
    with open(path, "wb") as f:
        f.write(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n")
        for s in range(0, len(ev), packet):
            e = ev[s:s + packet]
            t = e["t"].astype(np.int64)
            rec = np.empty(len(e), dtype=[("data", "<u4"), ("ts", "<i4")])
            rec["data"] = (e["x"].astype(np.uint32) << 17) | (e["y"].astype(np.uint32) << 2) | \
                (e["p"].astype(np.uint32) << 1) | 1
            rec["ts"] = t & 0x7FFFFFFF
            f.write(struct.pack("<hhiiiiii", 1, 1, 8, 4, int(t[0] >> 31), len(e), len(e), len(e)))
            f.write(rec.tobytes())


def write_aedat2(path: str, ev: np.ndarray) -> None:
    """Addresses in SpikingJelly's convention (x = 127 − b, y = 127 − a, p = 1 − bit 0)."""
    rec = np.empty(len(ev), dtype=[("address", ">u4"), ("ts", ">u4")])
    a = 127 - ev["y"].astype(np.uint32)
    b = 127 - ev["x"].astype(np.uint32)
    rec["address"] = (b << 8) | (a << 1) | (1 - ev["p"].astype(np.uint32))
    rec["ts"] = ev["t"]
    with open(path, "wb") as f:
        f.write(b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n")
        f.write(rec.tobytes())


# ----------------------------------------------------------------------------------------- measuring
def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (file cache)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _row(**kw: Any) -> dict:
    return {**kw, "device": "cpu", "dtype": "float32", "torch": torch.__version__}


def run(n_events: int = 1_000_000, frame_events: int = 100_000, T: int = 16, repeats: int = 5,
        as_json: bool = False, use_tonic: bool = True) -> list[dict]:
    from spikeforge.data.aedat import read_aedat2, read_aedat31
    from spikeforge.data.frames import events_to_frames
    from spikeforge.data.nmnist_bin import read_nmnist

    tonic = load_tonic() if use_tonic else None
    rows: list[dict] = []

    def emit(row: dict) -> None:
        rows.append(row)
        if as_json:
            print(json.dumps(row), flush=True)
        else:
            unit = "frames/s" if "frames_per_s" in row else "events/s"
            rate = row["frames_per_s"] if "frames_per_s" in row else row["events_per_s"]
            print(f"{row['impl']:32s} {row['task']:22s} {row['events']:>9d} {rate:14.3e} {unit}", flush=True)

    if not as_json:
        print(f"event data, torch {torch.__version__}, numpy {np.__version__}, "
              f"tonic {tonic.version if tonic else 'not installed'}")
    with tempfile.TemporaryDirectory() as d:
        nm = os.path.join(d, "sample.bin")
        write_nmnist(nm, synthetic_events(n_events, 34, 34, seed=1))
        a31 = os.path.join(d, "gesture.aedat")
        write_aedat31(a31, synthetic_events(n_events, 128, 128, seed=2))
        a2 = os.path.join(d, "cifar.aedat")
        write_aedat2(a2, synthetic_events(n_events, 128, 128, seed=3))
        readers: list[tuple[str, str, Callable[[], Any]]] = [
            ("spikeforge", "decode nmnist_bin", lambda: read_nmnist(nm)),
            ("spikeforge", "decode aedat3.1", lambda: read_aedat31(a31)),
            ("spikeforge", "decode aedat2.0", lambda: read_aedat2(a2)),
        ]
        if tonic is not None:
            dt = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
            name = f"tonic-{tonic.version}"
            readers += [
                (name, "decode nmnist_bin", lambda: tonic.io.read_mnist_file(nm, dtype=dt)),
                (name, "decode aedat3.1", lambda: tonic.read_aedat(a31, "3.1")),
                (name, "decode aedat2.0", lambda: tonic.read_aedat(a2, "2.0")),
            ]
        for impl, task, fn in readers:
            s = _median_s(fn, repeats)
            emit(_row(impl=impl, task=task, events=n_events, seconds=s, events_per_s=n_events / s))

    ev = synthetic_events(frame_events, 128, 128, seed=4)
    frames: list[tuple[str, str, Callable[[], Any]]] = [
        ("spikeforge", f"frames count T={T}", lambda: events_to_frames(ev, T, (128, 128), by="count")),
        ("spikeforge", f"frames time T={T}", lambda: events_to_frames(ev, T, (128, 128), by="time")),
    ]
    if tonic is not None:
        name = f"tonic-{tonic.version}"
        frames += [
            (name, f"frames count T={T}", lambda: tonic.to_frame.to_frame_numpy(ev, (128, 128, 2), n_event_bins=T)),
            (name, f"frames time T={T}", lambda: tonic.to_frame.to_frame_numpy(ev, (128, 128, 2), n_time_bins=T)),
        ]
    for impl, task, fn in frames:
        s = _median_s(fn, repeats)
        emit(_row(impl=impl, task=task, events=frame_events, T=T, seconds=s, frames_per_s=T / s))
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="event decoding (events/s per format) and frame integration (frames/s)")
    p.add_argument("--events", type=int, default=1_000_000, help="events per synthetic file")
    p.add_argument("--frame-events", type=int, default=100_000, help="events integrated into frames")
    p.add_argument("--T", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-tonic", action="store_true", help="skip tonic even when installed")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=lambda a: (run(a.events, a.frame_events, a.T, a.repeats, a.json, not a.no_tonic), 0)[1])
