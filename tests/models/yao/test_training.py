"""A few bptt steps on CIFAR-shaped synthetic data: the loss of the T = 1 windowed SNNs falls."""
from __future__ import annotations

import pytest
import torch

from spikeforge.models import create_model


def _data(n: int = 16, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c: a fixed random 3×32×32 pattern (scaled by 2) plus unit noise."""
    g = torch.Generator().manual_seed(0)
    patterns = 2 * torch.randn(classes, 3, 32, 32, generator=g)
    y = torch.arange(n) % classes
    return patterns[y] + torch.randn(n, 3, 32, 32, generator=g), y


@pytest.mark.parametrize("name", ["yao_lstm_snn", "yao_cnn_snn"])
def test_loss_falls_under_bptt(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, dims=(4, 8, 16, 32), preset="paper")
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20.0)
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(0.693147, abs=1e-5)  # the zero-initialised head: uniform logits, ln 2
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]
