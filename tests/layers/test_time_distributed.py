"""TimeDistributed / seq_to_ann: fold T into the batch for stateless modules (DESIGN "layers/")."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from spikeforge.layers import TimeDistributed, seq_to_ann


def per_step(module, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([module(x[t]) for t in range(x.shape[0])])


@pytest.mark.parametrize(
    "make, in_shape, out_shape",
    [
        (lambda: nn.Conv2d(2, 5, 3, padding=1), (4, 3, 2, 6, 6), (4, 3, 5, 6, 6)),
        (lambda: nn.Linear(7, 3), (4, 3, 7), (4, 3, 3)),
        (lambda: nn.Flatten(), (4, 3, 2, 5, 5), (4, 3, 50)),
        (lambda: nn.MaxPool2d(2), (4, 3, 2, 6, 6), (4, 3, 2, 3, 3)),
        (lambda: nn.Linear(7, 3), (1, 1, 7), (1, 1, 3)),
    ],
    ids=["conv", "linear", "flatten", "maxpool", "T1B1"],
)
def test_time_distributed_shapes_values_and_gradients(make, in_shape, out_shape):
    """Output shape [T, B, ...'] and values/gradients equal to running the module step by step."""
    torch.manual_seed(0)
    module = make().double()
    x = torch.randn(in_shape, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y = TimeDistributed(module)(x1)
    y_ref = per_step(module, x2)
    assert y.shape == out_shape
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    g = torch.randn(out_shape, dtype=torch.float64)
    (y * g).sum().backward()
    grads = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    (y_ref * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-12, atol=1e-12)
    for got, p in zip(grads, module.parameters()):
        torch.testing.assert_close(got, p.grad, rtol=1e-10, atol=1e-12)


def test_several_modules_are_chained():
    torch.manual_seed(1)
    conv, bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4).eval()
    td = TimeDistributed(conv, bn, nn.Flatten())
    assert isinstance(td.module, nn.Sequential)
    x = torch.rand(3, 2, 2, 5, 5)
    torch.testing.assert_close(td(x), per_step(lambda z: bn(conv(z)).flatten(1), x))


def test_state_dict_keys_are_the_wrapped_modules():
    td = TimeDistributed(nn.Linear(3, 2))
    assert set(td.state_dict()) == {"module.weight", "module.bias"}


def test_non_contiguous_input():
    torch.manual_seed(2)
    lin = nn.Linear(4, 2)
    x = torch.randn(3, 5, 4).transpose(0, 1)  # [5, 3, 4], not contiguous
    assert not x.is_contiguous()
    torch.testing.assert_close(TimeDistributed(lin)(x), per_step(lin, x))


def test_seq_to_ann_functional_with_module_and_plain_function():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 4)
    lin = nn.Linear(4, 6)
    torch.testing.assert_close(seq_to_ann(lin, x), per_step(lin, x))
    y = seq_to_ann(lambda z: z.sum(dim=(1, 2)), x)  # [T*B, 4, 4] -> [T*B]
    assert y.shape == (2, 3)
    torch.testing.assert_close(y, x.sum(dim=(2, 3)))


@pytest.mark.parametrize("shape", [(5,), ()])
def test_rank_below_two_raises_with_layout(shape):
    x = torch.zeros(shape)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\].*" + re.escape(str(tuple(shape)))):
        TimeDistributed(nn.Identity())(x)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        seq_to_ann(nn.Identity(), x)


def test_module_that_changes_the_folded_batch_raises():
    with pytest.raises(ValueError, match=r"T\*B = 2\*3 = 6.*\(3, 4\)"):
        seq_to_ann(lambda z: z.reshape(3, -1), torch.zeros(2, 3, 2))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="at least one module"):
        TimeDistributed()
    with pytest.raises(TypeError, match="argument 1 must be an nn.Module, got function"):
        TimeDistributed(nn.Identity(), lambda z: z)
