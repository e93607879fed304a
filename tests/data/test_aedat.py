"""AEDAT 3.1 and 2.0 readers (SPEC §8.1, oracles D2, D3; real jAER header; corruption)."""
import struct
from pathlib import Path

import numpy as np
import pytest

from spikeforge.data.aedat import read_aedat2, read_aedat31
from spikeforge.data.frames import EVENT_DTYPE, make_events

#: a real jAER AEDAT 2.0 header (DAVIS346, no events), kept in the repository so that these tests run anywhere
HEADER2 = Path(__file__).with_name("samples") / "aedat2_header_davis346.aedat"
HEADER31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01\r\n#!END-HEADER\r\n"


# ------------------------------------------------------------------------------------------ writers
def polarity_data(x, y, p, valid=1):
    return (np.asarray(x, np.uint32) << 17) | (np.asarray(y, np.uint32) << 2) | \
        (np.asarray(p, np.uint32) << 1) | np.asarray(valid, np.uint32)


def packet(etype, records, size=8, overflow=0, capacity=None, number=None, valid=None, tsoff=4):
    """One AEDAT 3.1 packet: 28-byte LE header + ``records`` (bytes of capacity × size)."""
    n = len(records) // size if size > 0 else 2
    cap = n if capacity is None else capacity
    num = n if number is None else number
    val = num if valid is None else valid
    return struct.pack("<hhiiiiii", etype, 1, size, tsoff, overflow, cap, num, val) + records


def polarity_packet(x, y, p, ts, valid=1, overflow=0, **kw):
    rec = np.empty(len(ts), dtype=[("d", "<u4"), ("t", "<i4")])
    rec["d"] = polarity_data(x, y, p, valid)
    rec["t"] = ts
    return packet(1, rec.tobytes(), overflow=overflow, **kw)


def gesture_file(path, groups, header=HEADER31):
    """Write an AEDAT 3.1 file from a list of packet byte strings."""
    path.write_bytes(header + b"".join(groups))
    return path


def sample_aedat31(tmp_path, name="s.aedat"):
    """Three polarity packets (one with tsOverflow 1, one with an invalid event), one special packet
    (type 0, 8-byte events) and one IMU-like packet (type 2, 60-byte events); the expected events."""
    pk = [
        polarity_packet([1, 2, 127], [3, 4, 0], [1, 0, 1], [10, 20, 30]),
        packet(0, np.arange(4, dtype="<u4").tobytes()),
        polarity_packet([5, 6], [7, 8], [0, 1], [40, 50], valid=[1, 0]),
        packet(2, bytes(range(60)) * 2, size=60, tsoff=56),
        polarity_packet([100], [37], [1], [123456], overflow=1),
    ]
    exp = make_events([10, 20, 30, 40, 123456 | (1 << 31)], [1, 2, 127, 5, 100], [3, 4, 0, 7, 37], [1, 0, 1, 0, 1])
    return gesture_file(tmp_path / name, pk), exp


def write_aedat2(path, address, ts, header=b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n"):
    rec = np.empty(len(ts), dtype=[("a", ">u4"), ("t", ">u4")])
    rec["a"], rec["t"] = address, ts
    path.write_bytes(header + rec.tobytes())
    return path


# --------------------------------------------------------------------------------------- AEDAT 3.1
def test_D2_polarity_event(tmp_path):
    """SPEC §8.1 D2: data 0x00C80097 = (x 100, y 37, p 1, valid), bytes 97 00 c8 00 40 e2 01 00."""
    assert int(polarity_data(100, 37, 1)) == 0x00C80097
    rec = bytes.fromhex("9700c80040e20100")
    for over, t in ((0, 123456), (1, 2147607104)):
        f = gesture_file(tmp_path / f"d2_{over}.aedat", [packet(1, rec, overflow=over)])
        ev = read_aedat31(f)
        assert ev.dtype == EVENT_DTYPE
        assert ev.tolist() == [(t, 100, 37, 1)]


def test_aedat31_packets(tmp_path):
    f, exp = sample_aedat31(tmp_path)
    np.testing.assert_array_equal(read_aedat31(f), exp)


def test_aedat31_only_number_events_read(tmp_path):
    """capacity > number: the spare slots are skipped."""
    rec = np.zeros(3, dtype=[("d", "<u4"), ("t", "<i4")])
    rec["d"] = polarity_data([1, 2, 3], [1, 2, 3], [1, 1, 1])
    rec["t"] = [5, 6, 7]
    f = gesture_file(tmp_path / "cap.aedat", [packet(1, rec.tobytes(), number=2), polarity_packet([9], [9], [0], [8])])
    assert read_aedat31(f)["t"].tolist() == [5, 6, 8]


def test_aedat31_header_only(tmp_path):
    assert len(read_aedat31(gesture_file(tmp_path / "h.aedat", []))) == 0


@pytest.mark.parametrize("body, match", [
    (b"#!AER-DAT2.0\r\n#!END-HEADER\r\n", "AER-DAT3.1"),
    (b"#!AER-DAT3.1\r\n#no end\r\n", "END-HEADER"),
    (b"#!AER-DAT3.1\r\n#!END-HEA", "not terminated"),
    (HEADER31 + b"\x01\x00\x08\x00", "truncated packet header"),
])
def test_aedat31_bad_header(tmp_path, body, match):
    f = tmp_path / "bad.aedat"
    f.write_bytes(body)
    with pytest.raises(ValueError, match=match) as e:
        read_aedat31(f)
    assert "bad.aedat" in str(e.value)


@pytest.mark.parametrize("kw, match", [
    ({"capacity": 1 << 30}, "exceeds"),
    ({"capacity": -5}, "inconsistent"),
    ({"number": 7}, "inconsistent"),
    ({"valid": 9}, "inconsistent"),
    ({"size": 0}, "inconsistent"),
    ({"size": 4}, "tsOffset"),
    ({"overflow": -1}, "tsOverflow"),
])
def test_aedat31_absurd_packet(tmp_path, kw, match):
    rec = np.zeros(2, dtype=[("d", "<u4"), ("t", "<i4")]).tobytes()
    f = gesture_file(tmp_path / "absurd.aedat", [packet(1, rec, **kw)])
    with pytest.raises(ValueError, match=match) as e:
        read_aedat31(f)
    assert "absurd.aedat" in str(e.value)


def test_aedat31_truncated_payload(tmp_path):
    f, _ = sample_aedat31(tmp_path)
    data = f.read_bytes()
    f.write_bytes(data[:-3])
    with pytest.raises(ValueError, match="exceeds"):
        read_aedat31(f)


def test_aedat31_random_corruptions(tmp_path):
    """100 random truncations and 100 random byte-flip sets: a consistent decode (a prefix for
    truncations) or a ValueError naming the file — never IndexError/struct.error."""
    src, exp = sample_aedat31(tmp_path, "src.aedat")
    data = src.read_bytes()
    f = tmp_path / "corrupt.aedat"
    rng = np.random.default_rng(0)
    for _ in range(100):
        cut = int(rng.integers(0, len(data)))
        f.write_bytes(data[:cut])
        try:
            ev = read_aedat31(f)
        except ValueError as e:
            assert "corrupt.aedat" in str(e)
        else:
            np.testing.assert_array_equal(ev, exp[: len(ev)])
    ok = 0
    for _ in range(100):
        buf = bytearray(data)
        for i in rng.integers(0, len(buf), 3):
            buf[i] ^= 1 << int(rng.integers(0, 8))
        f.write_bytes(bytes(buf))
        try:
            ev = read_aedat31(f)
        except ValueError as e:
            assert "corrupt.aedat" in str(e)
        else:
            ok += 1
            assert ev.dtype == EVENT_DTYPE and len(ev) <= len(data) // 8
            assert (ev["x"] >= 0).all() and (ev["y"] >= 0).all() and (ev["t"] >= 0).all()
            assert set(np.unique(ev["p"]).tolist()) <= {0, 1}
    assert ok > 0


def test_aedat31_matches_tonic(tmp_path):
    """tonic's DVS Gesture reader (read_dvs_ibm's body) on a file it handles: polarity packets only,
    all events valid, tsOverflow 0."""
    from spikeforge.bench.data import load_tonic

    tonic = load_tonic()
    if tonic is None:
        pytest.skip("tonic not installed")
    rng = np.random.default_rng(3)
    groups, n = [], 0
    for k in range(4):
        m = int(rng.integers(1, 50))
        groups.append(polarity_packet(rng.integers(0, 128, m), rng.integers(0, 128, m), rng.integers(0, 2, m),
                                      np.sort(rng.integers(0, 1 << 30, m))))
        n += m
    f = gesture_file(tmp_path / "tonic.aedat", groups)
    ref = tonic.read_aedat(str(f), "3.1")
    ev = read_aedat31(f)
    assert len(ev) == len(ref) == n
    for k in "xytp":
        np.testing.assert_array_equal(ev[k], ref[k])


# --------------------------------------------------------------------------------------- AEDAT 2.0
def test_D3_address_conventions(tmp_path):
    """SPEC §8.1 D3: address 0x00001415, ts 5000 (bytes 00 00 14 15 00 00 13 88)."""
    f = tmp_path / "d3.aedat"
    f.write_bytes(b"#!AER-DAT2.0\r\n" + bytes.fromhex("0000141500001388"))
    ev = read_aedat2(f)  # the chosen (SpikingJelly) convention
    assert ev.dtype == EVENT_DTYPE
    assert ev.tolist() == [(5000, 107, 117, 0)]
    assert read_aedat2(f, convention="tonic").tolist() == [(5000, 20, 10, 1)]


def test_real_jaer_header_no_events():
    ev = read_aedat2(HEADER2)
    assert ev.dtype == EVENT_DTYPE and len(ev) == 0


def test_real_jaer_header_with_events(tmp_path):
    f = write_aedat2(tmp_path / "h.aedat", [0x1415, 0x0000], [5000, 6000], header=HEADER2.read_bytes())
    assert read_aedat2(f).tolist() == [(5000, 107, 117, 0), (6000, 127, 127, 1)]


def test_aedat2_external_event_dropped(tmp_path):
    addr = [0x0000, 0x8000 | 0x1415, 0x7FFF, 0x0101]
    f = write_aedat2(tmp_path / "ext.aedat", addr, [1, 2, 3, 4])
    ev = read_aedat2(f)
    # 0x7FFF: a = 127, b = 127, bit0 = 1; 0x0101: a = 0, b = 1, bit0 = 1
    np.testing.assert_array_equal(ev, make_events([1, 3, 4], [127, 0, 126], [127, 0, 127], [1, 0, 0]))
    np.testing.assert_array_equal(read_aedat2(f, convention="tonic"),
                                  make_events([1, 3, 4], [0, 127, 1], [0, 127, 0], [0, 1, 1]))


def test_aedat2_bad_files(tmp_path):
    f = tmp_path / "bad2.aedat"
    f.write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(ValueError, match=r"bad2\.aedat.*AER-DAT2"):
        read_aedat2(f)
    write_aedat2(f, [1, 2], [3, 4])
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"bad2\.aedat.*multiple of 8"):
        read_aedat2(f)
    with pytest.raises(ValueError, match="convention"):
        read_aedat2(f, convention="jaer")


def test_aedat2_random_corruptions(tmp_path):
    rng = np.random.default_rng(2)
    n = 200
    addr = rng.integers(0, 1 << 15, n)
    src = write_aedat2(tmp_path / "src.aedat", addr, np.sort(rng.integers(0, 1 << 31, n)))
    data = src.read_bytes()
    exp = read_aedat2(src)
    assert len(exp) == n
    head = len(data) - 8 * n
    f = tmp_path / "c2.aedat"
    for _ in range(100):
        cut = int(rng.integers(0, len(data)))
        f.write_bytes(data[:cut])
        try:
            ev = read_aedat2(f)
        except ValueError as e:
            assert "c2.aedat" in str(e)
        else:
            assert cut >= head and (cut - head) % 8 == 0
            np.testing.assert_array_equal(ev, exp[: (cut - head) // 8])
    for _ in range(100):
        buf = bytearray(data)
        for i in rng.integers(head, len(buf), 3):
            buf[i] ^= 1 << int(rng.integers(0, 8))
        f.write_bytes(bytes(buf))
        ev = read_aedat2(f)
        assert len(ev) <= n and ev["x"].max() <= 127 and ev["y"].max() <= 127 and ev["x"].min() >= 0


def test_aedat2_matches_tonic(tmp_path):
    from spikeforge.bench.data import load_tonic

    tonic = load_tonic()
    if tonic is None:
        pytest.skip("tonic not installed")
    rng = np.random.default_rng(4)
    f = write_aedat2(tmp_path / "t2.aedat", rng.integers(0, 1 << 15, 300), np.sort(rng.integers(0, 1 << 31, 300)))
    ref = tonic.read_aedat(str(f), "2.0")
    ev = read_aedat2(f, convention="tonic")
    for k in "xytp":
        np.testing.assert_array_equal(ev[k], ref[k])
    sj = read_aedat2(f)
    np.testing.assert_array_equal(sj["x"], 127 - ref["x"])
    np.testing.assert_array_equal(sj["y"], 127 - ref["y"])
    np.testing.assert_array_equal(sj["p"], 1 - ref["p"])
