"""Energy estimate: SOPs and MACs equal hand counts (conv stride 2, padding 1)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.layers import TimeDistributed
from spikeforge.models import create_model
from spikeforge.neuron import IFNode
from spikeforge.tools.energy import count_energy, is_spike_like


def _net() -> nn.Sequential:
    """conv 1->2 k3 s2 p1 (all-one weights, no bias) -> IF (V_th 1) -> flatten -> linear 18->3."""
    conv = nn.Conv2d(1, 2, 3, stride=2, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    return nn.Sequential(TimeDistributed(conv), IFNode(), TimeDistributed(nn.Flatten(1), nn.Linear(18, 3)))


def _spikes() -> torch.Tensor:
    x = torch.zeros(2, 1, 1, 5, 5)  # [T, B, C, H, W]
    for r, c in ((0, 0), (1, 1), (2, 3)):
        x[0, 0, 0, r, c] = 1
    x[1, 0, 0, 1, 3] = x[1, 0, 0, 4, 4] = 1
    x[1, 0, 0, 3, 3] = 2  # a SEW-ADD-like sum: value 2 costs 2 x fan-out
    return x


def test_2_layer_hand_count() -> None:
    # k3 s2 p1 on 5x5 -> 3x3: input row r feeds output rows {0}, {0,1}, {1}, {1,2}, {2} for r = 0..4 (1,2,1,2,1),
    # likewise columns; fan-out = rows(r)·cols(c)·C_out(2).
    # t0: (0,0) 1·1·2 = 2, (1,1) 2·2·2 = 8, (2,3) 1·2·2 = 4; t1: (1,3) 8, (4,4) 2, (3,3) value 2 · 8 = 16 -> 40 SOPs.
    # Window sums (all-one weights), per channel: t0 [[2,1,0],[1,2,1],[0,0,0]] -> 5 spikes, V resets to 0;
    # t1 [[0,1,1],[0,3,3],[0,2,3]] -> 6 spikes. 2 channels: 22 spikes, linear fan-out 3 -> 66 SOPs.
    # ANN: conv 18 outputs x fan-in 9 = 162 MACs; linear 3 x 18 = 54 MACs.
    rep = count_energy(_net(), _spikes())
    conv, fc = rep.layers
    assert (conv.name, conv.kind, conv.sops, conv.macs, conv.ann_macs) == ("0.module", "SOP", 40.0, 0.0, 162)
    assert (fc.name, fc.kind, fc.sops, fc.macs, fc.ann_macs) == ("2.module.1", "SOP", 66.0, 0.0, 54)
    assert rep.energy_pj == pytest.approx(106 * 0.9)
    assert rep.ann_energy_pj == pytest.approx(216 * 4.6)
    assert rep.to_dict()["total"]["sops"] == 106.0
    custom = count_energy(_net(), _spikes(), e_ac_pj=0.03, e_mac_pj=0.2)
    assert custom.energy_pj == pytest.approx(106 * 0.03)


def test_analog_input_costs_macs_and_batch_is_averaged() -> None:
    # A non-integer input on the first conv: T·outputs·fan-in = 2·18·9 = 324 MACs per sample.
    x = torch.cat([_spikes() * 0.5, _spikes() * 0.5], dim=1)  # B = 2, values 0.5 / 1.0
    rep = count_energy(_net(), x)
    assert (rep.layers[0].kind, rep.layers[0].macs, rep.layers[0].sops) == ("MAC", 324.0, 0.0)
    assert rep.layers[0].energy_pj == pytest.approx(324 * 4.6)


def test_zoo_model_counts_per_sample() -> None:
    # digits_snn, T = 4, a time-varying analog input: fc1 -> 4 steps x 128 outputs x 64 = 32768 MACs;
    # fc2 gets spikes -> SOPs = spikes x 10. ANN: 128·64 + 10·128 = 9472 MACs.
    model = create_model("digits_snn").eval()
    x = torch.rand(4, 3, 64)
    rep = count_energy(model, x)
    fc1, fc2 = rep.layers
    assert (fc1.kind, fc1.macs) == ("MAC", 32768.0)
    from spikeforge.tools import Monitor

    with Monitor(model) as mon:
        model(x)
    spikes_per_sample = mon.rates()["sn1"] * 4 * 3 * 128 / 3
    assert fc2.sops == pytest.approx(spikes_per_sample * 10)
    assert fc1.ann_macs + fc2.ann_macs == 9472


def test_is_spike_like() -> None:
    assert is_spike_like(torch.tensor([0.0, 1.0, 2.0]))
    assert not is_spike_like(torch.tensor([0.0, 0.5]))
    assert not is_spike_like(torch.tensor([-1.0, 1.0]))
    assert is_spike_like(torch.tensor([True, False]))


def test_bad_constants_raise() -> None:
    with pytest.raises(ValueError, match="e_ac_pj"):
        count_energy(_net(), _spikes(), e_ac_pj=-1.0)
