"""VotingLayer: AvgPool1d(v, v) over the feature dim (SPEC §7.2, PLIF networks)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeforge.layers import VotingLayer


def test_voting_hand_computed():
    """[1..6] with v = 3 -> [(1+2+3)/3, (4+5+6)/3] = [2, 5]; with v = 2 -> [1.5, 3.5, 5.5]."""
    x = torch.tensor([[1.0, 2, 3, 4, 5, 6]])
    torch.testing.assert_close(VotingLayer(3)(x), torch.tensor([[2.0, 5.0]]))
    torch.testing.assert_close(VotingLayer(2)(x), torch.tensor([[1.5, 3.5, 5.5]]))


def test_voting_default_ten_on_spikes_per_step():
    """[T=2, B=1, 20] spikes, v = 10: class 0 gets 4/10 then 0, class 1 gets 10/10 then 3/10."""
    s0 = [0, 1, 1, 0, 1, 0, 0, 0, 0, 1] + [1] * 10
    s1 = [0] * 10 + [1, 1, 1] + [0] * 7
    x = torch.tensor([[s0], [s1]], dtype=torch.float32)
    y = VotingLayer()(x)
    assert y.shape == (2, 1, 2)
    torch.testing.assert_close(y, torch.tensor([[[0.4, 1.0]], [[0.0, 0.3]]]))


def test_voting_equals_avg_pool1d_and_spikingjelly_form():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 110)
    ref = F.avg_pool1d(x.flatten(0, 1).unsqueeze(1), 10, 10).squeeze(1).unflatten(0, (4, 3))
    torch.testing.assert_close(VotingLayer(10)(x), ref)
    assert VotingLayer(10)(torch.rand(110)).shape == (11,)


def test_voting_gradient_is_one_over_v():
    x = torch.rand(2, 12, requires_grad=True)
    VotingLayer(4)(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((2, 12), 0.25))


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bad_voting_size(bad):
    with pytest.raises(ValueError, match=r"voting_size must be a positive int.*" + str(bad).replace(".", r"\.")):
        VotingLayer(bad)


def test_feature_dim_not_divisible():
    with pytest.raises(ValueError, match=r"last dim \(25, input shape \(2, 3, 25\)\).*voting_size=10"):
        VotingLayer(10)(torch.zeros(2, 3, 25))


def test_zero_dim_input():
    with pytest.raises(ValueError, match=r"rank >= 1, got shape \(\)"):
        VotingLayer(2)(torch.tensor(1.0))


def test_extra_repr():
    assert repr(VotingLayer()) == "VotingLayer(voting_size=10)"
