"""Events → frames (SPEC §8.2, oracle D4) and the frame cache."""
import os

import numpy as np
import pytest
import torch

from spikeforge.data.frames import cached_frames, events_to_frames, frame_index, frame_key, make_events


def stream(n, H=4, W=5, seed=0, t=None):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10_000, n)) if t is None else t
    return make_events(t, rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n))


def naive(ev, T, H, W, frame_of):
    out = np.zeros((T, 2, H, W), np.float32)
    for i, e in enumerate(ev):
        j = frame_of(i, e)
        if j is not None:
            out[j, e["p"], e["y"], e["x"]] += 1
    return out


def test_D4_count_split():
    """SPEC §8.2 D4: N = 10, T = 3 → [0, 3), [3, 6), [6, 10); "drop" discards index 9."""
    ev = stream(10)
    assert frame_index(ev, 3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert frame_index(ev, 3, remainder="drop").tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, -1]
    f = events_to_frames(ev, 3, (4, 5))
    assert f.dtype == torch.float32 and f.shape == (3, 2, 4, 5)
    assert f.sum(dim=(1, 2, 3)).tolist() == [3, 3, 4]
    np.testing.assert_array_equal(f.numpy(), naive(ev, 3, 4, 5, lambda i, e: min(i // 3, 2)))
    d = events_to_frames(ev, 3, (4, 5), remainder="drop")
    assert d.sum(dim=(1, 2, 3)).tolist() == [3, 3, 3]


def test_time_split():
    t = np.array([100, 101, 103, 104, 106, 107, 109, 110, 112])  # span 12, T = 4 → Δ = 3
    ev = stream(len(t), t=t)
    assert frame_index(ev, 4, by="time").tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    f = events_to_frames(ev, 4, (4, 5), by="time")
    np.testing.assert_array_equal(f.numpy(), naive(ev, 4, 4, 5, lambda i, e: min((e["t"] - 100) // 3, 3)))
    t2 = np.array([0, 1, 2, 3, 4, 5, 6])  # span 6, T = 4 → Δ = 1: t ≥ 4 is past the 4th frame
    assert frame_index(stream(7, t=t2), 4, by="time", remainder="drop").tolist() == [0, 1, 2, 3, -1, -1, -1]


def test_accumulate_repeats_and_layout():
    ev = make_events([0, 1, 2, 3, 4], [1, 1, 1, 4, 0], [2, 2, 2, 0, 3], [1, 1, 0, 1, 0])
    f = events_to_frames(ev, 1, (4, 5))
    assert f[0, 1, 2, 1] == 2 and f[0, 0, 2, 1] == 1 and f[0, 1, 0, 4] == 1 and f[0, 0, 3, 0] == 1
    assert f.sum() == 5


def test_frame_max_normalize():
    ev = make_events([0, 1, 2, 3], [0, 0, 1, 2], [0, 0, 0, 0], [1, 1, 0, 1])
    f = events_to_frames(ev, 3, (1, 3), normalize="frame_max")  # frames: [0], [1], [2, 3]
    assert f[0].max() == 1 and f[0, 1, 0, 0] == 1
    np.testing.assert_allclose(f[2].numpy(), [[[0, 1, 0]], [[0, 0, 1]]])
    f2 = events_to_frames(make_events([0, 1], [0, 0], [0, 0], [1, 1]), 3, (1, 1), normalize="frame_max")
    assert f2[:2].sum() == 0 and f2[2].max() == 1  # N < T: zero frames stay zero


def test_validation():
    ev = stream(10)
    with pytest.raises(ValueError, match="empty"):
        events_to_frames(ev[:0], 3, (4, 5))
    for T in (0, -1, 2.5):
        with pytest.raises(ValueError, match="T must be"):
            events_to_frames(ev, T, (4, 5))
    with pytest.raises(ValueError, match="outside size"):
        events_to_frames(ev, 3, (4, 4))
    with pytest.raises(ValueError, match="'count', 'time'"):
        events_to_frames(ev, 3, (4, 5), by="bins")
    with pytest.raises(ValueError, match="'last', 'drop'"):
        events_to_frames(ev, 3, (4, 5), remainder="keep")
    with pytest.raises(ValueError, match="None, 'frame_max'"):
        events_to_frames(ev, 3, (4, 5), normalize="sum")
    bad = ev.copy()
    bad["p"][0] = 2
    with pytest.raises(ValueError, match="polarity"):
        events_to_frames(bad, 3, (4, 5))


@pytest.mark.parametrize("by, key", [("count", "n_event_bins"), ("time", "n_time_bins")])
def test_drop_matches_tonic(by, key):
    from spikeforge.bench.data import load_tonic

    tonic = load_tonic()
    if tonic is None:
        pytest.skip("tonic not installed")
    for n, T in ((1000, 7), (333, 10), (50, 3)):
        ev = stream(n, H=6, W=9, seed=n)
        ref = tonic.to_frame.to_frame_numpy(ev, (9, 6, 2), **{key: T})
        np.testing.assert_array_equal(events_to_frames(ev, T, (6, 9), by=by, remainder="drop").numpy(), ref)


# ---------------------------------------------------------------------------------------------- cache
def test_cache_roundtrip_and_rebuild(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"12345")
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(8, dtype=torch.float32).view(2, 1, 2, 2)

    key = frame_key(src, T=2, by="count", remainder="last", normalize=None, size=(2, 2))
    cache = tmp_path / "cache"
    a = cached_frames(cache, key, compute)
    b = cached_frames(cache, key, compute)
    assert len(calls) == 1 and torch.equal(a, b)
    files = os.listdir(cache)
    assert len(files) == 1 and files[0].endswith(".npz")  # no temp file left behind
    (cache / files[0]).write_bytes(b"PK\x03\x04 garbage")  # corrupt cache entry → rebuilt
    c = cached_frames(cache, key, compute)
    assert len(calls) == 2 and torch.equal(a, c)
    assert len(calls) == 2 and torch.equal(cached_frames(cache, key, compute), a)
    good = (cache / files[0]).read_bytes()
    rng = np.random.default_rng(0)
    for k in range(20):  # truncated or bit-flipped cache files are rebuilt, never returned wrong
        buf = bytearray(good[: int(rng.integers(1, len(good)))] if k % 2 else good)
        if k % 2 == 0:
            i = int(rng.integers(30, len(buf)))
            buf[i] ^= 0xFF
        (cache / files[0]).write_bytes(bytes(buf))
        assert torch.equal(cached_frames(cache, key, compute), a)
    n_calls = len(calls)
    other = dict(key, T=3)
    cached_frames(cache, other, compute)
    assert len(calls) == n_calls + 1 and len(os.listdir(cache)) == 2
    before = frame_key(src, T=2)
    os.utime(src, ns=(1, 1))  # a touched source file gets a new key
    after = frame_key(src, T=2)
    assert after["mtime_ns"] == 1 and after != before


def test_cache_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_frames(tmp_path, {"a": 1}, boom)
    assert os.listdir(tmp_path) == []

    def bad_replace(a, b):
        raise KeyboardInterrupt  # killed between writing the temp file and moving it in place

    monkeypatch.setattr(os, "replace", bad_replace)
    with pytest.raises(KeyboardInterrupt):
        cached_frames(tmp_path, {"a": 1}, lambda: np.ones((1, 2, 1, 1), np.float32))
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    assert cached_frames(None, {"a": 1}, lambda: np.ones((1, 2, 1, 1), np.float32)).shape == (1, 2, 1, 1)
