"""N-MNIST .bin reader (SPEC §8.1, oracle D1; real sample; corruption)."""
from pathlib import Path

import numpy as np
import pytest

from spikeforge.data.frames import EVENT_DTYPE, make_events
from spikeforge.data.nmnist_bin import read_nmnist

#: a real N-MNIST training sample (4325 events), kept in the repository so that these tests run anywhere
SAMPLE = Path(__file__).with_name("samples") / "nmnist_sample.bin"
D1 = bytes.fromhex("051180 03e8 21 00 7fffff 00 21 81 2345".replace(" ", ""))


def write_nmnist(path, x, y, p, t):
    """Encode events the way the N-MNIST files are laid out (5 bytes each)."""
    t = np.asarray(t, np.int64)
    raw = np.stack([np.asarray(x), np.asarray(y), (np.asarray(p) << 7) | ((t >> 16) & 0x7F),
                    (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    path.write_bytes(raw.tobytes())
    return path


def test_D1_nmnist_bytes(tmp_path):
    """SPEC §8.1 D1: exact (x, y, p, t) of three hand-written events."""
    f = tmp_path / "d1.bin"
    f.write_bytes(D1)
    ev = read_nmnist(f)
    assert ev.dtype == EVENT_DTYPE
    assert ev["x"].tolist() == [5, 33, 0]
    assert ev["y"].tolist() == [17, 0, 33]
    assert ev["p"].tolist() == [1, 0, 1]
    assert ev["t"].tolist() == [1000, 8388607, 74565]


def test_real_sample():
    ev = read_nmnist(SAMPLE)
    assert len(ev) == 4325
    assert ev["x"].min() >= 0 and ev["x"].max() <= 33 and ev["y"].min() >= 0 and ev["y"].max() <= 33
    assert ev["t"][0] == 654 and ev["t"][-1] == 311175 and ev["t"].min() == 654 and ev["t"].max() == 311175
    assert (np.diff(ev["t"]) >= 0).all()
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}


def test_roundtrip_random(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    x, y, p = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, 1 << 23, n))
    ev = read_nmnist(write_nmnist(tmp_path / "r.bin", x, y, p, t))
    np.testing.assert_array_equal(ev, make_events(t, x, y, p))


def test_empty_file_has_no_events(tmp_path):
    f = tmp_path / "empty.bin"
    f.write_bytes(b"")
    assert len(read_nmnist(f)) == 0


def test_truncated_record_names_file(tmp_path):
    f = tmp_path / "trunc.bin"
    f.write_bytes(D1[:-2])
    with pytest.raises(ValueError, match=r"trunc\.bin.*multiple of 5"):
        read_nmnist(f)


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(OSError):
        read_nmnist(tmp_path / "nope.bin")


def test_random_corruptions(tmp_path):
    """100 truncations and 100 byte flips: a consistent decode or a ValueError naming the file."""
    data = SAMPLE.read_bytes()
    full = read_nmnist(SAMPLE)
    rng = np.random.default_rng(1)
    f = tmp_path / "bad.bin"
    for _ in range(100):
        cut = int(rng.integers(0, len(data)))
        f.write_bytes(data[:cut])
        try:
            ev = read_nmnist(f)
        except ValueError as e:
            assert "bad.bin" in str(e) and cut % 5
        else:
            assert cut % 5 == 0 and len(ev) == cut // 5
            np.testing.assert_array_equal(ev, full[: cut // 5])
    for _ in range(100):
        buf = bytearray(data)
        for i in rng.integers(0, len(buf), 5):
            buf[i] ^= int(rng.integers(1, 256))
        f.write_bytes(bytes(buf))
        ev = read_nmnist(f)  # every 5-byte record decodes; flips change values, never the count
        assert len(ev) == len(data) // 5 and ev["x"].max() <= 255 and ev["t"].max() < 1 << 23
        assert set(np.unique(ev["p"]).tolist()) <= {0, 1}


def test_matches_tonic_reader():
    from spikeforge.bench.data import load_tonic

    tonic = load_tonic()
    if tonic is None:
        pytest.skip("tonic not installed")
    ref = tonic.io.read_mnist_file(SAMPLE, dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    ev = read_nmnist(SAMPLE)
    for k in "xytp":
        np.testing.assert_array_equal(ev[k], ref[k])
