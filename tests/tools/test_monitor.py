"""Monitor: firing rates equal hand counts under bptt, ssf and dsr."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.layers import SEWConnect
from spikeforge.methods import get_method
from spikeforge.streams.dual import Dual
from spikeforge.models import create_model
from spikeforge.tools import Monitor

# Two samples, three hidden neurons with constant input currents 1.0, 0.6, 0 (sample 0) and 0 (sample 1), T = 4.
# LIF (λ = 0.9, V_th = 1, hard reset):  1.0 -> fires at every step (4);  0.6 -> H = 0.6, 1.14*, 0.6, 1.14* (2).
# DSR-IF (V_th = 1, fires at α·V_th = 0.5, soft reset):  1.0 -> 4;  0.6 -> u = 0.6*, 0.2, 0.8*, 0.4 (2).
HAND_TRAIN = {"bptt": [0, 1, 0, 1], "ssf": [0, 1, 0, 1], "dsr": [1, 0, 1, 0]}


def _tiny_digits(method: str) -> nn.Module:
    net = create_model("digits_snn", method=method, in_features=2, hidden=3, num_classes=2)
    with torch.no_grad():
        net.fc1.module.weight.copy_(torch.tensor([[1.0, 0.0], [0.6, 0.0], [0.0, 0.0]]))
        net.fc1.module.bias.zero_()
    return net


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("method", ["bptt", "ssf", "dsr"])
def test_rates_equal_hand_count(method: str, grad: bool) -> None:
    net = _tiny_digits(method)
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    with torch.set_grad_enabled(grad), Monitor(net, spike_trains={"sn1": [1]}) as mon:
        net(x)
    assert mon.rates() == {"sn1": pytest.approx(6 / (4 * 2 * 3), abs=0.0)}
    assert mon.channel_rates()["sn1"].tolist() == [4 / 8, 2 / 8, 0.0]
    assert mon.rate_maps()["sn1"].tolist() == [4 / 8, 2 / 8, 0.0]
    trains = mon.spike_trains()["sn1"]
    assert trains.shape == (4, 2, 1)
    assert trains[:, 0, 0].int().tolist() == HAND_TRAIN[method]
    assert trains[:, 1, 0].int().tolist() == [0, 0, 0, 0]
    assert mon.summary()["mean_rate"] == pytest.approx(0.25)


def test_hooks_detached_and_output_unchanged() -> None:
    net = _tiny_digits("bptt")
    x = torch.rand(3, 2)
    before = net(x)
    with Monitor(net) as mon:
        during = net(x)
    assert torch.equal(before, during)
    assert all(not m._forward_hooks for m in net.modules())
    recorded = mon.rates()
    net(x)  # no longer recorded
    assert mon.rates() == recorded
    assert mon._stats["sn1"].steps == 4 * 3


def test_running_sums_over_calls_and_reset() -> None:
    net = _tiny_digits("bptt")
    with Monitor(net) as mon:
        net(torch.tensor([[1.0, 0.0]]))  # 6 spikes of 4*1*3
        net(torch.tensor([[0.0, 0.0], [0.0, 0.0]]))  # 0 of 4*2*3
        assert mon.rates()["sn1"] == pytest.approx(6 / 36)
        mon.reset()
        net(torch.tensor([[1.0, 0.0]]))
        assert mon.rates()["sn1"] == pytest.approx(6 / 12)


class _Block(nn.Module):
    """A = IF(x_a), S = IF(x_s), O = g(A, S): a SEW block with inputs we choose."""

    def __init__(self, method: str, connect: str) -> None:
        super().__init__()
        m = get_method(method)
        self.sn_a = m.make_neuron({"kind": "if"})
        self.sn_s = m.make_neuron({"kind": "if"})
        self.connect = SEWConnect(connect)

    def forward(self, xa, xs):
        return self.connect(self.sn_a(xa), self.sn_s(xs))


class _Net(nn.Module):
    def __init__(self, method: str, connect: str) -> None:
        super().__init__()
        self.block = _Block(method, connect)

    def forward(self, xa, xs):
        return self.block(xa, xs)


@pytest.mark.parametrize("connect, o_mean", [("add", (2 + 4) / 8), ("and", 2 / 8), ("iand", 2 / 8)])
@pytest.mark.parametrize("method", ["bptt", "ssf"])
def test_sew_block_a_and_o(method: str, connect: str, o_mean: float) -> None:
    # T = 4, B = 1, two neurons. IF, V_th = 1: current 0.5 fires at t = 1, 3 (A = [0,1,0,1]); 1.0 fires always.
    # A: neuron 0 gets 0.5 -> 2 spikes, neuron 1 gets 0 -> 0: rate 2/8.  S: neuron 0 gets 1.0 (4), neuron 1: 0.
    # O per neuron 0: ADD A+S = 1,2,1,2 (sum 6); AND = A (2); IAND (1-A)·S = 1,0,1,0 (2). Neuron 1: 0.
    xa = torch.tensor([0.5, 0.0]).expand(4, 1, 2)
    xs = torch.tensor([1.0, 0.0]).expand(4, 1, 2)
    net = _Net(method, connect)
    if method == "ssf":
        w = torch.full((4,), 0.25)
        xa, xs = Dual(xa, xa.mean(0), w), Dual(xs, xs.mean(0), w)
    with Monitor(net) as mon:
        net(xa, xs)
    assert mon.block_rates() == {"block": {"A": pytest.approx(2 / 8), "O": pytest.approx(o_mean)}}
    assert mon.rates() == {"block.sn_a": pytest.approx(2 / 8), "block.sn_s": pytest.approx(4 / 8)}


def test_bool_spikes_are_counted() -> None:
    mon = Monitor(_tiny_digits("bptt"))
    seq = torch.tensor([[[True, False, True]], [[False, False, True]]])  # [T=2, B=1, 3]
    mon._neuron_hook("sn1")(None, (), Dual(seq, torch.zeros(1, 3), torch.full((2,), 0.5)))
    assert mon.rates()["sn1"] == pytest.approx(3 / 6)


def test_bad_input_names_the_layer() -> None:
    with pytest.raises(ValueError, match="'fc9'.*sn1"):
        Monitor(_tiny_digits("bptt"), spike_trains={"fc9": 0})
    with pytest.raises(ValueError, match="no spiking layers"):
        Monitor(nn.Linear(2, 2))


class _Chunked:
    """A stand-in for a lazily held sequence: yields (t0, t1, window) over time, as LazySeq.windows does."""

    def __init__(self, x: torch.Tensor, step: int) -> None:
        self.x, self.step = x, step

    def windows(self):
        for t0 in range(0, self.x.shape[0], self.step):
            yield t0, t0 + self.step, self.x[t0:t0 + self.step]


def test_windows_over_time_add_up() -> None:
    net = _tiny_digits("bptt")
    seq = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]], dtype=torch.bool).unsqueeze(1)  # [T=4, B=1, 3]
    with Monitor(net, spike_trains={"sn1": [2, 0]}) as mon:
        mon._neuron_hook("sn1")(None, (), _Chunked(seq, 1))  # what a hook sees when seq is read window by window
    assert mon.rates()["sn1"] == pytest.approx(6 / 12)
    assert mon.channel_rates()["sn1"].tolist() == [0.5, 0.25, 0.75]
    assert mon.spike_trains()["sn1"][:, 0].int().tolist() == [[1, 1], [1, 0], [1, 1], [0, 0]]
