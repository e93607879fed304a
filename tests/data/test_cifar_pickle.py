"""CIFAR-10/100 python pickle batches (SPEC §8.3): real layouts in tmp_path, round trips, corruption."""
import pickle

import numpy as np
import pytest
import torch

from spikeforge.data import create_dataset
from spikeforge.data.cifar_pickle import find_cifar_dir, load_cifar, read_cifar_batch


def write_batch(path, n, label_key=b"labels", k=10, seed=0, protocol=2):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, k, n)]
    obj = {b"batch_label": b"training batch", b"data": data, label_key: labels, b"filenames": [b"x.png"] * n}
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return data, np.array(labels)


def write_cifar10(root, n=4):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    parts = [write_batch(d / f"data_batch_{i}", n, seed=i) for i in range(1, 6)]
    test = write_batch(d / "test_batch", n, seed=9)
    return parts, test


def test_pixel_layout_round_trip(tmp_path):
    """Row = 1024 R, 1024 G, 1024 B, each row-major 32×32 → [N, 3, 32, 32]."""
    data, labels = write_batch(tmp_path / "b", 3)
    x, y = read_cifar_batch(tmp_path / "b")
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(y, labels)
    assert x[1, 2, 5, 7] == data[1, 2 * 1024 + 5 * 32 + 7] and x[2, 0, 31, 31] == data[2, 1023]
    assert np.array_equal(x.reshape(3, -1), data)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_protocols(tmp_path, protocol):
    data, labels = write_batch(tmp_path / "b", 2, protocol=protocol)
    x, y = read_cifar_batch(tmp_path / "b")
    assert np.array_equal(x.reshape(2, -1), data) and np.array_equal(y, labels)


@pytest.mark.parametrize("parent", [True, False])
def test_cifar10_root_folder_or_parent(tmp_path, parent):
    parts, test = write_cifar10(tmp_path)
    root = tmp_path if parent else tmp_path / "cifar-10-batches-py"
    x, y = load_cifar(root, "cifar10", "train")
    assert x.shape == (20, 3, 32, 32)
    assert np.array_equal(x.reshape(20, -1), np.concatenate([p[0] for p in parts]))
    assert np.array_equal(y, np.concatenate([p[1] for p in parts]))
    xt, yt = load_cifar(root, "cifar10", "test")
    assert np.array_equal(xt.reshape(4, -1), test[0]) and np.array_equal(yt, test[1])


def test_cifar100_fine_labels_and_dataset(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    write_batch(d / "train", 6, b"fine_labels", 100, seed=1)
    data, labels = write_batch(d / "test", 3, b"fine_labels", 100, seed=2)
    ds = create_dataset("cifar100", root=str(tmp_path), split="test", normalize=False)
    x, y = ds[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(data[2].reshape(3, 32, 32)).float() / 255) and int(y) == labels[2]
    xn, _ = create_dataset("cifar100", root=str(tmp_path), split="test")[2]
    mean = torch.tensor([0.5071, 0.4867, 0.4408]).view(3, 1, 1)
    std = torch.tensor([0.2675, 0.2565, 0.2761]).view(3, 1, 1)
    torch.testing.assert_close(xn, (x - mean) / std)


def test_cifar10_train_augmentation_is_crop_and_flip(tmp_path):
    """SPEC §8.3: random crop 32 pad 4 + flip; with a seeded generator, reproducible and a shifted copy."""
    write_cifar10(tmp_path)
    kw = dict(root=str(tmp_path), split="train", normalize=False)
    a = create_dataset("cifar10", generator=torch.Generator().manual_seed(3), **kw)
    b = create_dataset("cifar10", generator=torch.Generator().manual_seed(3), **kw)
    plain = create_dataset("cifar10", augment=False, **kw)
    for i in range(5):
        xa, xb, x0 = a[i][0], b[i][0], plain[i][0]
        assert torch.equal(xa, xb) and xa.shape == (3, 32, 32)
        padded = torch.nn.functional.pad(x0, (4, 4, 4, 4))
        hits = [(t, l, f) for t in range(9) for l in range(9) for f in (False, True)
                if torch.equal(xa, (lambda c: c.flip(-1) if f else c)(padded[:, t:t + 32, l:l + 32]))]
        assert hits, "augmented image is not a flipped/unflipped crop of the zero-padded original"
    test = create_dataset("cifar10", root=str(tmp_path), split="test", normalize=False)
    assert test[0][0].max() <= 1.0


def test_missing_files(tmp_path):
    with pytest.raises(ValueError, match="--data-dir.*cifar-10-batches-py"):
        create_dataset("cifar10", root=None)
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="missing in .*: data_batch_3"):
        find_cifar_dir(tmp_path, "cifar10")


@pytest.mark.parametrize("mutate,match", [
    (lambda o: o.pop(b"data"), "key b'data' missing"),
    (lambda o: o.__setitem__(b"data", o[b"data"][:, :3000]), r"uint8 array \[N, 3072\]"),
    (lambda o: o.__setitem__(b"data", o[b"data"].astype(np.int16)), r"uint8 array \[N, 3072\]"),
    (lambda o: o.__setitem__(b"data", [1, 2]), r"got list"),
    (lambda o: o.__setitem__(b"labels", o[b"labels"][:-1]), "must be 4 integers"),
    (lambda o: o.__setitem__(b"labels", ["a"] * 4), "must be 4 integers"),
    (lambda o: o[b"labels"].__setitem__(2, 10), r"label 10 at index 2 is outside 0..9"),
    (lambda o: o[b"labels"].__setitem__(1, -1), r"label -1 at index 1"),
])
def test_bad_contents_name_file(tmp_path, mutate, match):
    p = tmp_path / "b"
    write_batch(p, 4)
    obj = pickle.loads(p.read_bytes())
    mutate(obj)
    p.write_bytes(pickle.dumps(obj))
    with pytest.raises(ValueError, match=match) as e:
        read_cifar_batch(p)
    assert str(p) in str(e.value)


def test_not_a_dict_and_foreign_globals(tmp_path):
    p = tmp_path / "b"
    p.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected a pickled dict"):
        read_cifar_batch(p)
    p.write_bytes(pickle.dumps({b"data": torch.zeros(1)}))  # a global outside numpy: refused, nothing run
    with pytest.raises(ValueError, match="corrupt CIFAR pickle.*not allowed"):
        read_cifar_batch(p)


def test_random_corruptions_never_escape(tmp_path):
    """50 random truncations / byte flips: a consistent batch or ValueError/OSError naming the file."""
    rng = np.random.default_rng(0)
    p = tmp_path / "data_batch_1"
    write_batch(p, 4)
    good = p.read_bytes()
    for _ in range(50):
        raw = bytearray(good)
        if rng.random() < 0.5:
            raw = raw[: int(rng.integers(0, len(raw)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, len(raw)))
                raw[i] ^= int(rng.integers(1, 256))
        p.write_bytes(bytes(raw))
        try:
            x, y = read_cifar_batch(p)
        except (ValueError, OSError) as e:
            assert str(p) in str(e)
            continue
        assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and y.shape == (x.shape[0],)
        assert y.min() >= 0 and y.max() <= 9


def test_val_split_is_unaugmented_part_of_train(tmp_path):
    """PLIF-style 85/15: val = fixed-seed 15 % of the training files, never augmented; train keeps the rest."""
    write_cifar10(tmp_path, n=8)  # 40 training images
    kw = dict(root=str(tmp_path), val_fraction=0.15, seed=0, normalize=False)
    va = create_dataset("cifar10", split="val", **kw)
    tr = create_dataset("cifar10", split="train", **kw)
    assert len(va) == 6 and len(tr) == 34 and set(va.indices).isdisjoint(tr.indices)
    plain = create_dataset("cifar10", root=str(tmp_path), split="train", augment=False, normalize=False)
    for k, i in enumerate(va.indices):
        assert torch.equal(va[k][0], plain[i][0]) and int(va[k][1]) == int(plain[i][1])
    strat = create_dataset("cifar10", split="val", stratify=True, **kw)
    assert len(strat) > 0
