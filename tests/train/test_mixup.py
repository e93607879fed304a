"""Mixup: mixed inputs and the mixed loss equal soft-target cross-entropy (float64)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeforge.losses import get_loss
from spikeforge.train.mixup import mixed_loss, mixup


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixed_ce_equals_soft_target_ce(smoothing):
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0])
    mb = mixup(x, y, 0.4, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    lam, perm = rng.beta(0.4, 0.4), torch.from_numpy(rng.permutation(5))
    assert mb.lam == lam and torch.equal(mb.x, lam * x + (1 - lam) * x[perm]) and torch.equal(mb.y_b, y[perm])
    logits = torch.randn(5, 4, dtype=torch.float64)
    soft = lambda t: F.one_hot(t, 4).double() * (1 - smoothing) + smoothing / 4
    target = lam * soft(y) + (1 - lam) * soft(y[perm])
    want = -(target * logits.log_softmax(1)).sum(1).mean()
    got = mixed_loss(get_loss("ce", label_smoothing=smoothing), logits, mb)
    assert got.item() == pytest.approx(want.item(), abs=1e-12)


def test_time_first_batches_mix_along_dim_1():
    x = torch.arange(12.0).view(2, 3, 2)  # [T, B, F]
    mb = mixup(x, torch.tensor([0, 1, 2]), 1.0, np.random.default_rng(1), batch_dim=1)
    rng = np.random.default_rng(1)
    lam, perm = rng.beta(1.0, 1.0), torch.from_numpy(rng.permutation(3))
    assert torch.allclose(mb.x, lam * x + (1 - lam) * x[:, perm])
    with pytest.raises(ValueError, match="train.mixup must be > 0"):
        mixup(x, torch.tensor([0, 1, 2]), 0.0, rng)
