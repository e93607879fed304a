"""TimeFixedDropout: one mask per sample reused at every step (SPEC §7.2, DESIGN "Dropout")."""
from __future__ import annotations

import re

import pytest
import torch

from spikeforge.layers import TimeFixedDropout


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_mask_is_identical_across_time(p):
    """x = ones: every step equal, values in {0, 1/(1−p)}."""
    torch.manual_seed(0)
    y = TimeFixedDropout(p)(torch.ones(6, 4, 3, 5))
    for t in range(1, y.shape[0]):
        torch.testing.assert_close(y[t], y[0], rtol=0, atol=0)
    scale = 1.0 / (1.0 - p)
    assert torch.all((y == 0) | (y == torch.tensor(scale)))
    assert (y[0] == 0).any() and (y[0] != 0).any()


@pytest.mark.parametrize("p", [0.5, 0.1, 0.9])
def test_fraction_kept_is_one_minus_p(p):
    """On 2e5 units the kept fraction is within 0.01 of 1 − p (about 4 standard deviations at p=0.1)."""
    torch.manual_seed(1)
    y = TimeFixedDropout(p)(torch.ones(2, 400, 500))
    assert abs((y[0] != 0).double().mean().item() - (1.0 - p)) < 0.01


def test_mask_differs_between_samples_and_between_calls():
    """One mask per sample [B, ...] (not one for the whole batch), redrawn at every forward."""
    torch.manual_seed(2)
    dp = TimeFixedDropout(0.5)
    x = torch.ones(3, 8, 64)
    y1, y2 = dp(x), dp(x)
    assert not torch.equal(y1[0, 0], y1[0, 1])
    assert not torch.equal(y1, y2)


def test_scaling_and_gradient():
    """Kept entries are x/(1−p), dropped ones 0, and the gradient is the (scaled) mask at every step."""
    torch.manual_seed(3)
    p = 0.25
    x = torch.randn(5, 4, 10, dtype=torch.float64, requires_grad=True)
    y = TimeFixedDropout(p)(x)
    kept = y[0] != 0
    torch.testing.assert_close(y[:, kept], x[:, kept] / (1 - p), rtol=1e-12, atol=0)
    assert torch.all(y[:, ~kept] == 0)
    y.sum().backward()
    expected = kept.double() / (1 - p)
    torch.testing.assert_close(x.grad, expected.expand_as(x), rtol=1e-12, atol=0)


def test_reproducible_with_manual_seed():
    dp, x = TimeFixedDropout(0.5), torch.ones(2, 16, 32)
    torch.manual_seed(4)
    a = dp(x)
    torch.manual_seed(4)
    torch.testing.assert_close(dp(x), a, rtol=0, atol=0)


def test_eval_and_p_zero_are_identity():
    x = torch.randn(3, 4, 5)
    assert TimeFixedDropout(0.5).eval()(x) is x
    assert TimeFixedDropout(0.0)(x) is x


def test_dtype_is_kept():
    y = TimeFixedDropout(0.5)(torch.ones(2, 3, 4, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and set(y.unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), True])
def test_bad_p(bad):
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\), got " + str(bad)):
        TimeFixedDropout(bad)


@pytest.mark.parametrize("shape", [(5,), ()])
def test_bad_input_rank(shape):
    dp = TimeFixedDropout(0.5)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\].*" + re.escape(str(tuple(shape)))):
        dp(torch.ones(shape))
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):  # checked in eval too
        dp.eval()(torch.ones(shape))


def test_extra_repr():
    assert repr(TimeFixedDropout(0.5)) == "TimeFixedDropout(p=0.5)"
