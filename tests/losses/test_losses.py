"""Losses: TET (F4–F6), TET-CE, the MPD stand-in (F9), registry and errors."""
import math

import pytest
import torch

from spikeforge.losses import LOSSES, get_loss
from spikeforge.losses.mpd import ding2019_terms, membrane_stats
from spikeforge.output import ModelOutput

D = torch.float64
O = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]], dtype=D)  # [T=2, B=1, K=2]
Y = torch.tensor([0])


def test_registry():
    assert LOSSES.names() == ["ce", "mpd_ding2019", "mse_onehot", "tet", "tet_ce"]
    with pytest.raises(ValueError, match="loss 'tett' is not registered"):
        get_loss("tett")
    with pytest.raises(ValueError, match="bad option"):
        get_loss("tet", lambda_=0.1)


@pytest.mark.parametrize("lam,expected", [(1e-3, 0.7201247544), (1e-4, 0.7200978398), (0.05, 0.7215901068),
                                          (0.0, 0.7200948493)])
def test_F4_tet_loss(lam, expected):
    assert get_loss("tet", lam=lam)(O, Y).item() == pytest.approx(expected, abs=1e-9)
    assert get_loss("tet", lam=lam)(ModelOutput(O.mean(0), O), Y).item() == pytest.approx(expected, abs=1e-9)


def test_F4_tet_ce():
    assert get_loss("tet_ce")(ModelOutput(O.mean(0), O), Y).item() == pytest.approx(0.4740769842, abs=1e-9)


@pytest.mark.parametrize("lam,expected", [(1e-3, [[-0.05904186, 0.05904186], [-0.36566376, 0.36516376]]),
                                          (0.0, [[-0.05960146, 0.05960146], [-0.36552929, 0.36552929]])])
def test_F5_tet_gradient(lam, expected):
    o = O.clone().requires_grad_()
    get_loss("tet", lam=lam)(o, Y).backward()
    torch.testing.assert_close(o.grad[:, 0], torch.tensor(expected, dtype=D), atol=1e-8, rtol=0)


def test_F6_tet_batch_reduction():
    o2 = torch.tensor([[[0.0, 0.0]], [[1.0, -1.0]]], dtype=D)
    O2 = torch.cat([O, o2], dim=1)
    y = torch.tensor([0, 1])
    assert get_loss("tet", lam=0.0)(O2, y).item() == pytest.approx(1.0650662225, abs=1e-9)
    assert get_loss("tet", lam=1e-3)(O2, y).item() == pytest.approx(1.0651261563, abs=1e-9)


def test_tet_needs_steps():
    with pytest.raises(ValueError, match="needs per-step outputs"):
        get_loss("tet")(ModelOutput(O.mean(0), None), Y)


def test_F9_membrane_stats_and_ding_terms():
    u = torch.zeros(2, 1, 2, 1, 2, dtype=D)
    u[0, 0, 0, 0] = torch.tensor([0.2, 0.8], dtype=D)
    u[1, 0, 0, 0] = torch.tensor([0.6, 0.4], dtype=D)
    u[0, 0, 1, 0] = torch.tensor([1.0, -0.5], dtype=D)
    u[1, 0, 1, 0] = torch.tensor([0.0, 1.5], dtype=D)
    mu, var = membrane_stats(u)
    torch.testing.assert_close(mu, torch.tensor([0.5, 0.5], dtype=D))
    torch.testing.assert_close(var, torch.tensor([0.05, 0.625], dtype=D))
    d1, d2 = ding2019_terms(mu, var)
    assert d1.item() == pytest.approx(1.0662356805, abs=1e-8)
    assert d2.item() == pytest.approx(0.09999999995, abs=1e-10)
    loss = get_loss("mpd_ding2019", lambda_mpd=2.0)
    logits = torch.tensor([[1.0, 0.0]], dtype=D)
    ce = math.log(1 + math.exp(-1.0))
    value = loss(ModelOutput(logits, None, {"membrane": [(mu, var)]}), Y).item()
    assert value == pytest.approx(ce + 2.0 * (1.0662356805 + 0.09999999995), abs=1e-8)
    with pytest.raises(ValueError, match="needs membrane statistics"):
        loss(ModelOutput(logits, None, {}), Y)


def test_ce_and_mse_onehot():
    logits = torch.tensor([[0.2, 0.8]], dtype=D)
    assert get_loss("mse_onehot")(logits, torch.tensor([1])).item() == pytest.approx((0.04 + 0.04) / 2)
    assert get_loss("ce")(logits, torch.tensor([1])).item() == pytest.approx(-math.log(math.exp(0.8) / (math.exp(0.2) + math.exp(0.8))))
