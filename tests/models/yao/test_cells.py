"""Yao et al.'s fusions, neuron and cells (SPEC §7.4): oracles Y4–Y8."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeforge.methods import get_method
from spikeforge.models.yao import CELLS
from spikeforge.models.yao.blocks import PatchMerging
from spikeforge.models.yao.cells import RecurrentCell
from spikeforge.models.yao.encoding import get_encoder
from spikeforge.models.yao.fusions import get_fusion
from spikeforge.models.yao.neuron import YaoNeuron

BPTT = get_method("bptt")
TOL = 1e-6  # SPEC's values are printed to 6 decimals


def _t(*v) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


@pytest.mark.parametrize("a, b, expected", [
    (0, 0, 0.0), (1, 0, math.sqrt(2)), (1, 1, 1.054499), (0.5, 0.5, 0.709799), (2, 1, 1.792038),
    (-1, 0.5, -1.327189),
])
def test_Y4_sin_fusion(a, b, expected):
    """Y4: f(a, b) = 2·sin((π/4)·a·cos((π/4)·b))."""
    assert get_fusion("sin")(_t(a), _t(b)).item() == pytest.approx(expected, abs=TOL)


def test_Y4_edge_and_other_fusions():
    assert abs(get_fusion("sin")(_t(1), _t(2)).item()) < 1e-15
    assert get_fusion("mean")(_t(1), _t(1)).item() == 1.0
    assert get_fusion({"name": "linear", "alpha": 0.25})(_t(1.0), _t(2.0)).item() == 0.5  # 1 − 0.25·2
    with pytest.raises(ValueError, match="needs alpha"):
        get_fusion("linear")
    with pytest.raises(ValueError, match="fusion 'cos' is not registered; choose one of: linear, mean, sin"):
        get_fusion("cos")


def test_encoders():
    x = torch.tensor([0.0, 0.4, 0.6, 1.0])
    assert get_encoder("threshold")(x).tolist() == [0, 0, 1, 1]
    gens = [torch.Generator().manual_seed(3) for _ in range(2)]
    a, b = (get_encoder({"name": "bernoulli", "generator": g}) for g in gens)
    big = torch.full((10000,), 0.3)
    first = a(big)
    assert torch.equal(first, b(big))  # same seed, same draw
    assert not torch.equal(first, a(big))  # a fresh draw at every call
    assert abs(first.mean().item() - 0.3) < 0.03  # P(x > U) = x
    assert not a(big.requires_grad_()).requires_grad  # no gradient through x_b


def test_Y5_surrogate_window():
    """Y5: ∂s/∂mem = 1 on 0 < mem < 1, else 0 (mem = I with mem_in = 0)."""
    neuron = YaoNeuron(BPTT).double()
    current = _t(0, 0.3, 0.5, 0.935, 1.0, 1.2).requires_grad_()
    s, mem = neuron(current)
    assert torch.equal(mem, current.detach())
    s.sum().backward()
    assert current.grad.tolist() == [0, 1, 1, 1, 0, 0]
    assert s.tolist() == [0, 0, 0, 1, 1, 1]  # strict: 0.5 does not fire


def _y5_lstm() -> RecurrentCell:
    cell = CELLS["lstm"](d=1, h=1, method=BPTT).double()
    with torch.no_grad():
        for name, p in cell.rnn.named_parameters():
            p.fill_(1.0 if name.startswith("weight_ih") else 0.0)
    return cell


def test_Y5_lstm_cell_step():
    """Y5: d = h = 1, bidirectional, W_ih = 1, W_hh = 0, biases 0."""
    cell = _y5_lstm()
    i1 = cell.rnn(_t(1).reshape(1, 1, 1))[0][0]
    assert i1[0].tolist() == pytest.approx([0.369606, 0.369606], abs=TOL)
    s, mem = cell.neuron(i1, torch.zeros_like(i1))
    assert mem[0].tolist() == pytest.approx([0.369606, 0.369606], abs=TOL) and s.sum() == 0
    mem_in = get_fusion("sin")(_t(1), _t(0)).expand_as(i1)
    s, mem = cell.neuron(i1, mem_in)
    assert mem[0].tolist() == pytest.approx([0.935292, 0.935292], abs=TOL) and s[0].tolist() == [1, 1]

    i10 = cell.rnn(_t(1, 0).reshape(1, 2, 1))[0][0]
    assert i10.flatten().tolist() == pytest.approx([0.369606, 0.369606, 0.135705, 0.0], abs=TOL)
    assert cell.neuron(i10)[0].sum() == 0
    i11 = cell.rnn(_t(1, 1).reshape(1, 2, 1))[0][0]
    assert i11.flatten().tolist() == pytest.approx([0.369606, 0.545346, 0.545346, 0.369606], abs=TOL)
    assert cell.neuron(i11)[0].flatten().tolist() == [0, 1, 1, 0]


def test_Y6_lstm_window_chain(monkeypatch):
    """Y6: every old membrane 1.0, I = 0.1 in every window."""
    cell = _y5_lstm()
    monkeypatch.setattr(cell, "currents", lambda xb: torch.full_like(xb, 0.1).expand(*xb.shape[:-1], 2))
    xb = torch.zeros(4, 1, 1, 1, 1, dtype=torch.float64)
    spikes, mems = cell.chain(xb, torch.ones(4, 1, 1, 1, 2, dtype=torch.float64), get_fusion("sin"))
    assert mems[..., 0].flatten().tolist() == pytest.approx([0.521800, 0.328598, 0.650782, 0.606151], abs=TOL)
    assert spikes[..., 0].flatten().tolist() == [1, 0, 1, 1]


def test_Y7_cnn_window_chain():
    """Y7: conv1 outputs J1 = [0.6, 0.3, 0, 0.6] per window, conv2 output 0.3·s1 (1×1 windows, centre taps)."""
    cell = CELLS["cnn"](d=1, h=1, method=BPTT).double()
    with torch.no_grad():
        for conv, w in ((cell.conv1, 0.6), (cell.conv2, 0.3)):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = w
            conv.bias.zero_()
    seen = {1: [], 2: []}
    cell.neuron1.register_forward_hook(lambda m, i, o: seen[1].append(o))
    cell.neuron2.register_forward_hook(lambda m, i, o: seen[2].append(o))
    xb = _t(1, 0.5, 0, 1).reshape(4, 1, 1, 1, 1)
    s2, none = cell.chain(xb, None, get_fusion("sin"))
    assert none is None
    rows = [(c1.item(), s1.item(), c2.item(), s.item()) for (s1, c1), (s, c2) in zip(seen[1], seen[2])]
    expected = [(0.6, 1, 0.3, 0), (0.54, 1, 0.653881, 1), (0.216, 0, 0.288849, 0), (0.6864, 1, 0.431638, 0)]
    for got, want in zip(rows, expected):
        assert got == pytest.approx(want, abs=TOL)
    assert s2.flatten().tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize("name", ["lstm", "rnn", "gru", "cnn"])
def test_batched_windows_equal_per_window_calls(name):
    """The four windows batched through the LSTM/convs give the code's one-call-per-window values."""
    torch.manual_seed(0)
    batched = CELLS[name](d=3, h=4, method=BPTT).double()
    single = CELLS[name](d=3, h=4, method=BPTT, batch_windows=False).double()
    single.load_state_dict(batched.state_dict())
    xb = (torch.rand(4, 2, 3, 3, 3, dtype=torch.float64) > 0.5).double()
    old = torch.randn(4, 2, 3, 3, batched.out_dim, dtype=torch.float64) if batched.carries_map else None
    a, b = batched.chain(xb, old, get_fusion("sin")), single.chain(xb, old, get_fusion("sin"))
    assert torch.equal(a[0], b[0])
    if a[1] is not None:
        assert torch.allclose(a[1], b[1], rtol=0, atol=1e-12)


def test_cell_output_widths():
    widths = {n: CELLS[n](d=2, h=3, method=BPTT).out_dim for n in sorted(CELLS)}
    assert widths == {"birnn": 6, "cnn": 3, "gru": 6, "lstm": 6, "rnn": 3}
    assert isinstance(CELLS["gru"](d=2, h=3, method=BPTT).rnn, nn.GRU)


def test_Y8_patch_merging_order():
    """Y8: a 2×2 map [[1, 2], [3, 4]] is concatenated as [1, 3, 2, 4] before the Linear."""
    pm = PatchMerging(1)
    seen = []
    pm.reduction.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    out = pm(torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1))
    assert seen[0].flatten().tolist() == [1, 3, 2, 4]
    assert out.shape == (1, 1, 1, 2) and pm.reduction.bias is None


def test_fusion_and_cell_names_and_options_are_checked():
    with pytest.raises(ValueError, match=r"fusion 'mean': bad option in \{'alpha': 0.5\}: .*; valid options: none"):
        get_fusion({"name": "mean", "alpha": 0.5})
    with pytest.raises(ValueError, match=r"encoder 'threshold': bad option in \{'lvl': 0.5\}: .*; valid options: level"):
        get_encoder({"name": "threshold", "lvl": 0.5})
    from spikeforge.models.yao import YaoSNN
    with pytest.raises(ValueError, match="yao cell 'lstn' is not registered; did you mean: lstm[?] choose one of: "
                                         "birnn, cnn, gru, lstm, rnn"):
        YaoSNN(cell="lstn", dims=(4, 8, 16, 32), depths=(1, 1, 1, 1))
