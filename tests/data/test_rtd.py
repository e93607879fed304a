"""Random temporal delete (SPEC §6.5, oracle F10)."""
import math

import numpy as np
import pytest
import torch

from spikeforge.data.rtd import random_temporal_delete, rtd_indices


def test_F10_shape_order_shared_idx():
    """F10: T = 16, T_train = 12: output has 12 steps, strictly increasing unique indices in [0, 16),
    one idx shared by the batch; eval returns x itself."""
    T, B = 16, 5
    # x[t, b] encodes (t, b) so the kept steps can be read back
    x = (torch.arange(T).view(T, 1, 1) * 100 + torch.arange(B).view(1, B, 1)).expand(T, B, 3).float()
    g = torch.Generator().manual_seed(0)
    y = random_temporal_delete(x, 12, g)
    assert y.shape == (12, B, 3)
    idx = (y[:, :, 0] // 100).long()
    assert (idx == idx[:, :1]).all()  # shared across the batch
    idx = idx[:, 0]
    assert (idx[1:] > idx[:-1]).all() and idx.min() >= 0 and idx.max() < 16
    torch.testing.assert_close(y, x[idx])
    assert random_temporal_delete(x, 12, g, training=False) is x


def test_F10_keep_frequency():
    """F10: each frame is kept with frequency 12/16 = 0.75 (C(16, 12) = 1820 subsets)."""
    assert math.comb(16, 12) == 1820
    g = torch.Generator().manual_seed(1)
    n = 4000
    counts = torch.zeros(16)
    subsets = set()
    for _ in range(n):
        idx = rtd_indices(16, 12, g)
        counts[idx] += 1
        subsets.add(tuple(idx.tolist()))
    freq = counts / n
    assert (freq - 0.75).abs().max() < 0.03  # binomial sd ≈ 0.007
    assert len(subsets) > 1000


def test_F10_numpy_legacy_rng():
    """F10 deterministic check: np.sort(RandomState(0).choice(16, 12, replace=False))."""
    expect = [1, 2, 4, 6, 7, 8, 9, 10, 11, 13, 14, 15]
    assert np.sort(np.random.RandomState(0).choice(16, 12, replace=False)).tolist() == expect
    x = torch.arange(16.0).view(16, 1)
    assert random_temporal_delete(x, 12, np.random.RandomState(0))[:, 0].tolist() == expect


def test_generator_determinism_and_errors():
    x = torch.randn(8, 2, 3)
    a = random_temporal_delete(x, 5, torch.Generator().manual_seed(7))
    b = random_temporal_delete(x, 5, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert torch.equal(random_temporal_delete(x, 8, torch.Generator()), x)
    for bad in (0, 9, -1):
        with pytest.raises(ValueError, match="T_train"):
            random_temporal_delete(x, bad, torch.Generator())
