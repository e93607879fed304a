"""MNIST / Fashion-MNIST IDX reader (SPEC §8.3): real files in tmp_path, round trips, corruption."""
import gzip
import struct

import numpy as np
import pytest
import torch

from spikeforge.data import create_dataset
from spikeforge.data.idx import find_idx_file, load_mnist_idx, read_idx


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of uint8 ``arr``: zero, zero, type 0x08, ndim, big-endian uint32 dims, data."""
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) if magic is None else struct.pack(">I", magic)
    return head + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def write_mnist(folder, n_train=12, n_test=5, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, (img, lbl), n in (("train", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), n_train),
                                 ("test", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        for name, arr in ((img, x), (lbl, y)):
            raw = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        data[split] = (x, y)
    return data


def test_magic_numbers_and_header_layout(tmp_path):
    """SPEC §8.3: magic 2051 images / 2049 labels, big-endian dims."""
    x = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    raw = idx_bytes(x)
    assert raw[:4] == bytes([0, 0, 8, 3]) and int.from_bytes(raw[:4], "big") == 2051
    assert raw[4:8] == bytes([0, 0, 0, 2]) and raw[8:12] == bytes([0, 0, 0, 28])
    assert int.from_bytes(idx_bytes(np.zeros(3, np.uint8))[:4], "big") == 2049
    p = tmp_path / "f"
    p.write_bytes(raw)
    out = read_idx(p, 2051)
    assert out.dtype == np.uint8 and out.shape == (2, 28, 28) and np.array_equal(out, x)


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_plain_and_gzip(tmp_path, gz):
    data = write_mnist(tmp_path, gz=gz)
    for split in ("train", "test"):
        x, y = load_mnist_idx(tmp_path, split)
        assert np.array_equal(x, data[split][0]) and np.array_equal(y, data[split][1]) and y.dtype == np.int64


@pytest.mark.parametrize("sub,name", [("MNIST", "mnist"), ("FashionMNIST", "fmnist")])
def test_torchvision_raw_layout_and_dataset(tmp_path, sub, name):
    data = write_mnist(tmp_path / sub / "raw", gz=True)
    ds = create_dataset(name, root=str(tmp_path), split="test", normalize=False)
    assert len(ds) == 5
    x, y = ds[3]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28) and y.dtype == torch.int64
    assert torch.equal(x[0], torch.from_numpy(data["test"][0][3]).float() / 255) and int(y) == data["test"][1][3]
    mean, std = (0.1307, 0.3081) if name == "mnist" else (0.2860, 0.3530)
    xn, _ = create_dataset(name, root=str(tmp_path), split="test")[3]
    torch.testing.assert_close(xn, (x - mean) / std)


def test_val_split_carved_from_train(tmp_path):
    write_mnist(tmp_path, n_train=40)
    tr = create_dataset("mnist", root=str(tmp_path), split="train", val_fraction=0.15, seed=0)
    va = create_dataset("mnist", root=str(tmp_path), split="val", val_fraction=0.15, seed=0)
    assert len(va) == 6 and len(tr) == 34
    assert set(tr.indices).isdisjoint(va.indices) and set(tr.indices) | set(va.indices) == set(range(40))
    with pytest.raises(ValueError, match="needs val_fraction"):
        create_dataset("mnist", root=str(tmp_path), split="val")


def test_missing_file_and_root(tmp_path):
    with pytest.raises(ValueError, match="--data-dir"):
        create_dataset("mnist", root=None)
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[.gz\] not found.*MNIST/raw"):
        load_mnist_idx(tmp_path, "train")


def test_unknown_option_raises(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match=r"dataset 'mnist': bad option in \{.*'colour': True\}: .*colour.*; valid options: "):
        create_dataset("mnist", root=str(tmp_path), colour=True)


@pytest.mark.parametrize("defect,match", [
    ("magic", "wrong IDX magic 2049"),
    ("truncated", "truncated"),
    ("trailing", "trailing bytes"),
    ("short", "too short"),
    ("header", "truncated IDX header"),
])
def test_corrupt_images_name_file_and_defect(tmp_path, defect, match):
    write_mnist(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte"
    raw = p.read_bytes()
    raw = {"magic": raw[:3] + b"\x01" + raw[4:], "truncated": raw[:-7], "trailing": raw + b"\x00",
           "short": raw[:2], "header": raw[:10]}[defect]
    p.write_bytes(raw)
    with pytest.raises(ValueError, match=match) as e:
        load_mnist_idx(tmp_path, "train")
    assert str(p) in str(e.value)


def test_count_mismatch_and_label_range(tmp_path):
    write_mnist(tmp_path)
    lbl = tmp_path / "train-labels-idx1-ubyte"
    lbl.write_bytes(idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(ValueError, match="12 images but .* 11 labels"):
        load_mnist_idx(tmp_path, "train")
    y = np.zeros(12, np.uint8)
    y[4] = 10
    lbl.write_bytes(idx_bytes(y))
    with pytest.raises(ValueError, match=r"label 10 at index 4 is outside 0..9") as e:
        load_mnist_idx(tmp_path, "train")
    assert str(lbl) in str(e.value)


def test_wrong_image_size_and_bad_gzip(tmp_path):
    write_mnist(tmp_path)
    img = tmp_path / "train-images-idx3-ubyte"
    img.write_bytes(idx_bytes(np.zeros((12, 28, 27), np.uint8), magic=2051))
    with pytest.raises(ValueError, match=r"expected images \[N, 28, 28\]"):
        load_mnist_idx(tmp_path, "train")
    img.unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(ValueError, match="corrupt gzip"):
        load_mnist_idx(tmp_path, "train")


@pytest.mark.parametrize("gz", [False, True])
def test_random_corruptions_never_escape(tmp_path, gz):
    """50 random truncations / byte flips: consistent result or ValueError/OSError naming the file."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    good = idx_bytes(x)
    p = tmp_path / ("f.gz" if gz else "f")
    for _ in range(50):
        raw = bytearray(gzip.compress(good) if gz else good)
        if rng.random() < 0.5:
            raw = raw[: int(rng.integers(0, len(raw)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, min(len(raw), 40) if rng.random() < 0.7 else len(raw)))
                raw[i] ^= int(rng.integers(1, 256))
        p.write_bytes(bytes(raw))
        try:
            out = read_idx(p, 2051)
        except (ValueError, OSError) as e:
            assert str(p) in str(e)
            continue
        assert out.dtype == np.uint8 and out.ndim == 3 and out.size == len(
            gzip.decompress(bytes(raw)) if gz else raw) - 16


def test_find_prefers_plain_then_gz(tmp_path):
    (tmp_path / "a.gz").write_bytes(b"")
    assert find_idx_file(tmp_path, "a").name == "a.gz"
    (tmp_path / "a").write_bytes(b"")
    assert find_idx_file(tmp_path, "a").name == "a"
