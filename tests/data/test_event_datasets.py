"""Event data sets: N-MNIST, DVS128 Gesture, CIFAR10-DVS layouts, TET pipeline, cache (SPEC §8, §6.3)."""
import numpy as np
import pytest
import torch

import spikeforge.data.event_datasets as evd
from spikeforge.data import create_dataset, list_datasets
from spikeforge.data.aedat import read_aedat2, read_aedat31
from spikeforge.data.frames import events_to_frames
from spikeforge.data.nmnist_bin import read_nmnist
from spikeforge.data.registry import DATASETS
from tests.data.test_aedat import gesture_file, polarity_packet, write_aedat2
from tests.data.test_nmnist_bin import write_nmnist


def rand_nmnist(path, n, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_nmnist(path, rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                        np.sort(rng.integers(0, 300_000, n)))


@pytest.fixture
def nmnist_root(tmp_path):
    for split, ids in (("Train", (10, 2)), ("Test", (7,))):
        for d in range(10):
            for i in ids:
                rand_nmnist(tmp_path / split / str(d) / f"{i}.bin", 40 + d + i, seed=d * 100 + i)
    return tmp_path


@pytest.fixture
def gesture_root(tmp_path):
    root = tmp_path / "DvsGesture"
    root.mkdir()
    rng = np.random.default_rng(5)
    for user, n in (("user01_led", 400), ("user02_natural", 300), ("user24_led", 200)):
        t = np.sort(rng.integers(1_000, 100_000, n))
        x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
        packets = [polarity_packet(x[s:s + 64], y[s:s + 64], p[s:s + 64], t[s:s + 64]) for s in range(0, n, 64)]
        gesture_file(root / f"{user}.aedat", packets)
        (root / f"{user}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n1,1000,30000\n5,30000,60000\n11,60000,99999\n")
    (root / "trials_to_train.txt").write_text("user01_led.aedat\nuser02_natural.aedat\n\n")
    (root / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return tmp_path


@pytest.fixture
def cifar_root(tmp_path):
    rng = np.random.default_rng(6)
    for c in evd.CIFAR10_CLASSES:
        (tmp_path / c).mkdir()
        for i in range(10):  # 0..9 → 9 train, 1 test; i = 9 is the test file
            n = 60 + i
            write_aedat2(tmp_path / c / f"cifar10_{c}_{i}.aedat", rng.integers(0, 1 << 15, n),
                         np.sort(rng.integers(0, 1 << 20, n)))
        (tmp_path / c / "notes.txt").write_text("ignored")
    return tmp_path


def test_registered():
    assert {"nmnist", "dvs128_gesture", "cifar10_dvs"} <= set(DATASETS.names())
    assert {"nmnist", "dvs128_gesture", "cifar10_dvs"} <= set(list_datasets())
    with pytest.raises(ValueError, match="'nmnist' is read from files: pass its folder with --data-dir DIR"):
        create_dataset("nmnist", root=None)


# -------------------------------------------------------------------------------------------- N-MNIST
def test_nmnist(nmnist_root):
    ds = create_dataset("nmnist", root=str(nmnist_root), split="train", T=4)
    assert len(ds) == 20 and ds.targets == [d for d in range(10) for _ in range(2)]
    assert ds.samples[0].path.endswith("0/2.bin") and ds.samples[1].path.endswith("0/10.bin")  # integer order
    x, y = ds[3]
    assert x.dtype == torch.float32 and x.shape == (4, 2, 34, 34) and y.dtype == torch.int64 and int(y) == 1
    ev = read_nmnist(ds.samples[3].path)
    assert torch.equal(x, events_to_frames(ev, 4, (34, 34)))
    xt, _ = create_dataset("nmnist", root=str(nmnist_root), split="test", T=3, by="time")[0]
    assert xt.shape == (3, 2, 34, 34)
    assert len(create_dataset("nmnist", root=str(nmnist_root), split="test")) == 10


def test_nmnist_layout_errors(nmnist_root, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="Train"):
        create_dataset("nmnist", root=str(empty))
    import shutil

    shutil.rmtree(nmnist_root / "Test" / "3")
    with pytest.raises(ValueError, match="digit folder"):
        create_dataset("nmnist", root=str(nmnist_root), split="test")
    with pytest.raises(ValueError, match="split"):
        create_dataset("nmnist", root=str(nmnist_root), split="val")
    with pytest.raises(ValueError, match="by"):
        create_dataset("nmnist", root=str(nmnist_root), by="bins")


def test_nmnist_empty_stream(nmnist_root):
    (nmnist_root / "Train" / "0" / "2.bin").write_bytes(b"")
    ds = create_dataset("nmnist", root=str(nmnist_root))
    with pytest.raises(ValueError, match="empty"):
        ds[0]


def test_cache(nmnist_root, tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.mktemp("cache")
    ds = create_dataset("nmnist", root=str(nmnist_root), T=5, cache_dir=str(cache))
    ds.prebuild()
    assert len(list(cache.iterdir())) == 20
    calls = []
    ds.reader = lambda p: calls.append(p) or read_nmnist(p)
    x, _ = ds[7]
    assert calls == [] and torch.equal(x, events_to_frames(read_nmnist(ds.samples[7].path), 5, (34, 34)))


# --------------------------------------------------------------------------------------- DVS Gesture
def test_gesture(gesture_root):
    ds = create_dataset("dvs128_gesture", root=str(gesture_root), split="train", T=3)
    assert len(ds) == 6 and ds.targets == [0, 4, 10, 0, 4, 10]
    for i, (lo, hi) in enumerate([(1000, 30000), (30000, 60000), (60000, 99999)]):
        x, y = ds[i]
        ev = read_aedat31(ds.samples[i].path)
        sel = ev[(ev["t"] >= lo) & (ev["t"] < hi)]
        assert x.shape == (3, 2, 128, 128) and x.sum() == len(sel)
        assert torch.equal(x, events_to_frames(sel, 3, (128, 128)))
    test = create_dataset("dvs128_gesture", root=str(gesture_root / "DvsGesture"), split="test")
    assert len(test) == 3 and test[0][0].shape == (16, 2, 128, 128)


def test_gesture_bad_labels(gesture_root):
    d = gesture_root / "DvsGesture"
    (d / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,500000,600000\n")
    ds = create_dataset("dvs128_gesture", root=str(gesture_root), split="test")
    with pytest.raises(ValueError, match=r"user24_led_labels\.csv.*outside the stream"):
        ds[0]
    (d / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,5000,5000\n")
    with pytest.raises(ValueError, match=r"user24_led_labels\.csv.*endTime_usec"):
        create_dataset("dvs128_gesture", root=str(gesture_root), split="test")
    (d / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,5000,6000\n")
    with pytest.raises(ValueError, match=r"user24_led_labels\.csv.*class 12"):
        create_dataset("dvs128_gesture", root=str(gesture_root), split="test")
    (d / "trials_to_test.txt").write_text("user99_led.aedat\n")
    with pytest.raises(ValueError, match="user99_led"):
        create_dataset("dvs128_gesture", root=str(gesture_root), split="test")
    with pytest.raises(ValueError, match="trials_to_train"):
        create_dataset("dvs128_gesture", root=str(d / ".."/ ".."), split="test")


# --------------------------------------------------------------------------------------- CIFAR10-DVS
def test_cifar10_dvs(cifar_root):
    tr = create_dataset("cifar10_dvs", root=str(cifar_root), split="train", T=4)
    te = create_dataset("cifar10_dvs", root=str(cifar_root), split="test", T=4)
    assert len(tr) == 90 and len(te) == 10
    assert te.targets == list(range(10)) and all(s.path.endswith(f"_9.aedat") for s in te.samples)
    assert tr.samples[0].path.endswith("airplane/cifar10_airplane_0.aedat") and tr.targets[-1] == 9
    x, y = te[9]
    assert te.samples[9].path.endswith("truck/cifar10_truck_9.aedat") and int(y) == 9
    assert torch.equal(x, events_to_frames(read_aedat2(te.samples[9].path), 4, (128, 128)))


def test_cifar10_dvs_integer_sort(cifar_root):
    (cifar_root / "cat" / "cifar10_cat_9.aedat").rename(cifar_root / "cat" / "cifar10_cat_100.aedat")
    te = create_dataset("cifar10_dvs", root=str(cifar_root), split="test")
    assert te.samples[3].path.endswith("cifar10_cat_100.aedat")  # 100 sorts after 8, not after 1


def test_cifar10_dvs_layout_errors(cifar_root):
    import shutil

    shutil.rmtree(cifar_root / "frog")
    with pytest.raises(ValueError, match="frog"):
        create_dataset("cifar10_dvs", root=str(cifar_root))


def test_cifar10_dvs_tet(cifar_root):
    te = create_dataset("cifar10_dvs", root=str(cifar_root), split="test", tet=True)
    x, _ = te[0]
    assert x.shape == (10, 2, 48, 48) and x.dtype == torch.float32
    ev = read_aedat2(te.samples[0].path)
    f = events_to_frames(ev, 10, (128, 128), remainder="drop", normalize="frame_max")
    assert f.sum() > 0 and f.amax(dim=(1, 2, 3)).max() == 1
    ref = torch.nn.functional.interpolate(f, size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(x, ref) and torch.equal(te[0][0], x)  # test split: resize only, deterministic
    g = torch.Generator().manual_seed(0)
    tr = create_dataset("cifar10_dvs", root=str(cifar_root), split="train", tet=True, generator=g)
    plain = torch.nn.functional.interpolate(
        events_to_frames(read_aedat2(tr.samples[0].path), 10, (128, 128), remainder="drop", normalize="frame_max"),
        size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
    frame0 = plain[:1]  # match draws on one frame (cheap), then check the whole sample
    variants = {(f, dy, dx): evd.tet_flip_roll(frame0, f, dy, dx) for f in (False, True)
                for dy in range(-5, 6) for dx in range(-5, 6)}
    seen = set()
    for _ in range(6):
        a = tr[0][0]
        assert a.shape == (10, 2, 48, 48)
        k = next(k for k, v in variants.items() if torch.equal(v, a[:1]))  # some flip + roll of the frames
        assert torch.equal(a, evd.tet_flip_roll(plain, *k))
        seen.add(k)
    assert len(seen) > 1  # drawn anew per access
    with pytest.raises(ValueError, match="fixes T"):
        create_dataset("cifar10_dvs", root=str(cifar_root), tet=True, T=20)


def test_tet_flip_roll_hand_made():
    """SPEC §6.3: hflip along W, then torch.roll by (dy, dx) with wrap-around, one draw for all frames."""
    f = torch.zeros(2, 2, 4, 5)
    f[:, 0, 1, 0] = 1.0  # row 1, column 0
    f[1, 1, 3, 4] = 2.0  # row 3, column 4, frame 1 only
    out = evd.tet_flip_roll(f, flip=True, dy=2, dx=1)
    # flip: column 0 → 4, column 4 → 0; roll rows +2 (1 → 3, 3 → 0 wrapping), columns +1 (4 → 0, 0 → 1)
    assert out[0, 0, 3, 0] == 1 and out[1, 0, 3, 0] == 1 and out[1, 1, 1, 1] == 2 and out.sum() == f.sum()
    out = evd.tet_flip_roll(f, flip=False, dy=-5, dx=-1)
    assert out[0, 0, (1 - 5) % 4, (0 - 1) % 5] == 1 and out[1, 1, (3 - 5) % 4, 3] == 2
    # draws: flip with p = 0.5, dy, dx uniform on [-5, 5], one draw shared by every frame of a sample
    g = torch.Generator().manual_seed(0)
    base = torch.zeros(3, 1, 20, 20)
    base[:, 0, 10, 10], base[:, 0, 10, 11] = 1.0, 2.0  # asymmetric: a flip puts the 2 left of the 1
    flips, dys, dxs = 0, set(), set()
    n = 400
    for _ in range(n):
        out = evd.tet_augment(base, g)
        assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
        (r1, c1), (r2, c2) = [torch.nonzero(out[0, 0] == v)[0].tolist() for v in (1.0, 2.0)]
        flipped = c2 < c1
        flips += flipped
        dys.add(r1 - 10)
        dxs.add(c1 - (9 if flipped else 10))  # flip maps column 10 to 9
    assert dys == set(range(-5, 6)) and dxs == set(range(-5, 6))
    assert abs(flips / n - 0.5) < 0.1
