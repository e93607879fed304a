"""SEW connect functions: values, and the Dual rule (value from seq, gradient of g at the flows)."""
import pytest
import torch

from spikeforge.layers import SEWConnect
from spikeforge.streams.dual import Dual, uniform_weights

A = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
S = torch.tensor([[0.0, 0.0, 1.0, 1.0]])


@pytest.mark.parametrize("connect,expected", [("add", [0, 1, 2, 1]), ("and", [0, 0, 1, 0]), ("iand", [0, 0, 0, 1])])
def test_values(connect, expected):
    assert SEWConnect(connect)(A, S).flatten().tolist() == expected


def test_dual_and_value_from_seq_gradient_at_flow():
    a_seq = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    s_seq = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    fa = a_seq.mean(0).requires_grad_()
    fs = s_seq.mean(0).requires_grad_()
    w = uniform_weights(4)
    out = SEWConnect("and")(Dual(a_seq, fa, w), Dual(s_seq, fs, w))
    assert out.flow.item() == 0.0  # the mean of a·s, not mean(a)·mean(s) = 0.25
    assert out.materialize().flatten().tolist() == [0, 0, 0, 0]
    out.flow.sum().backward()
    assert fa.grad.item() == pytest.approx(0.5) and fs.grad.item() == pytest.approx(0.5)  # ∂(fa·fs)
    add = SEWConnect("add")(Dual(a_seq, fa.detach(), w), Dual(s_seq, fs.detach(), w))
    assert add.flow.item() == pytest.approx(1.0)


def test_errors():
    with pytest.raises(ValueError, match="connect must be one of add, and, iand"):
        SEWConnect("or")
    with pytest.raises(ValueError, match="same shape"):
        SEWConnect()(A, S[:, :2])
