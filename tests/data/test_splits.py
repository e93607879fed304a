"""Fixed-seed train/val split (SPEC §9: PLIF's 85/15 validation split)."""
import numpy as np
import pytest

from spikeforge.data.splits import train_val_split


def test_plif_85_15_sizes_disjoint_covering_deterministic():
    tr, va = train_val_split(60000, 0.15, seed=0)
    assert len(va) == 9000 and len(tr) == 51000
    assert tr.dtype == np.int64 and np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)
    assert np.intersect1d(tr, va).size == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(60000))
    tr2, va2 = train_val_split(60000, 0.15, seed=0)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    _, va3 = train_val_split(60000, 0.15, seed=1)
    assert not np.array_equal(va, va3)


def test_default_is_plif_split_and_seed_pinned():
    """The split is a function of (n, fraction, seed) only: numpy's default_rng(0) permutation, first 15 %."""
    tr, va = train_val_split(20)
    assert np.array_equal(va, np.sort(np.random.default_rng(0).permutation(20)[:3]))
    assert len(tr) == 17


def test_stratified():
    labels = np.repeat(np.arange(4), [20, 40, 60, 80])
    tr, va = train_val_split(200, 0.15, seed=3, labels=labels)
    assert np.bincount(labels[va], minlength=4).tolist() == [3, 6, 9, 12]
    assert np.intersect1d(tr, va).size == 0 and len(tr) + len(va) == 200
    tr2, va2 = train_val_split(200, 0.15, seed=3, labels=labels)
    assert np.array_equal(va, va2)


@pytest.mark.parametrize("kw,match", [
    (dict(n=1), "n must be >= 2"),
    (dict(n=10, val_fraction=0.0), r"val_fraction must lie in \(0, 1\)"),
    (dict(n=10, val_fraction=1.0), r"val_fraction must lie in \(0, 1\)"),
    (dict(n=3, val_fraction=0.1), "leaves an empty part"),
    (dict(n=5, labels=[0, 1]), r"labels must have shape \(5,\)"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        train_val_split(**kw)


STATIC = ["mnist", "fmnist", "cifar10", "cifar100", "tiny_imagenet", "imagenet"]


@pytest.mark.parametrize("name", STATIC)
def test_static_sets_registered_and_check_arguments(name, tmp_path):
    """Every static set: registered; root=None names --data-dir and the files; bad split / val without fraction."""
    from spikeforge.data import create_dataset, list_datasets

    assert name in list_datasets()
    with pytest.raises(ValueError, match=r"is read from files: pass its folder with --data-dir DIR (?:\(or: spikeforge data download \w+ --data-dir DIR\) )?\(expected: .*official source: "):
        create_dataset(name, root=None)
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        create_dataset(name, root=str(tmp_path), split="dev")
    with pytest.raises(ValueError, match="split='val' needs val_fraction"):
        create_dataset(name, root=str(tmp_path), split="val")
    with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
        create_dataset(name, root=str(tmp_path), split="val", val_fraction=1.5)
