"""The embedded digits dataset: split, scale, determinism."""
import pytest
import torch

from spikeforge.data import create_dataset, list_datasets


def test_stratified_split_sizes_and_scale():
    assert "digits" in list_datasets()
    train, test = create_dataset("digits", split="train"), create_dataset("digits", split="test")
    assert len(train) == 1437 and len(test) == 360
    x, y = test.tensors
    assert x.shape == (360, 64) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1.0  # pixels 0..16 scaled by 1/16
    counts = torch.bincount(y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~20 % of each class (174..183 per class)


def test_split_is_deterministic_and_disjoint():
    a, b = create_dataset("digits", split="test"), create_dataset("digits", split="test")
    assert torch.equal(a.tensors[0], b.tensors[0])
    tr = {tuple(r.tolist()) for r in create_dataset("digits", split="train").tensors[0]}
    te = [tuple(r.tolist()) for r in a.tensors[0]]
    assert sum(r in tr for r in te) < 10  # only pixel-identical duplicates present in the raw set


def test_bad_split():
    with pytest.raises(ValueError, match="split must be one of train, test"):
        create_dataset("digits", split="val")
    with pytest.raises(ValueError, match="dataset 'mnist2' is not registered"):
        create_dataset("mnist2")
