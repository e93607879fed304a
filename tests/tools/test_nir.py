"""NIR export / import: identical spikes after a round trip; what NIR cannot express raises."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spikeforge.layers import BatchNormTB, SEWConnect, TimeDistributed, VotingLayer
from spikeforge.models import create_model
from spikeforge.models.sew_resnet import ConvBN, SEWBlock
from spikeforge.neuron import IFNode, LIFNode, PLIFNode, Readout
from spikeforge.tools import Monitor
from spikeforge.tools.nir import export_nir, import_nir


def _randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, BatchNormTB):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.05 + 0.02)  # BN amplifies: layers fire
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def plif_net() -> nn.Module:
    """conv-BN-PLIF, avg-pool, conv(bias)-PLIF, flatten-linear-PLIF: the PLIF nets without max-pool."""
    torch.manual_seed(0)
    net = nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 4, 3, padding=1, bias=False)), BatchNormTB(4), PLIFNode(init_tau=2.0),
        TimeDistributed(nn.AvgPool2d(2, 2)),
        TimeDistributed(nn.Conv2d(4, 4, 3, stride=2, padding=1)), PLIFNode(init_tau=3.0, decay_input=False),
        TimeDistributed(nn.Flatten(1), nn.Linear(16, 10, bias=False)), PLIFNode(init_tau=1.5),
    )
    with torch.no_grad():
        net[2].w.fill_(0.3)  # a trained-looking w, not the init value
        net[4].module.weight.mul_(6.0)  # strong enough that every layer fires
        net[6].module[1].weight.mul_(6.0)
    _randomize_bn(net)
    return net


class SEWAddNet(nn.Module):
    """stem conv-BN-IF, one SEW ADD block (two conv-BN-IF), LIF, avg-pool + flatten + linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = ConvBN(2, 4, 3, sn=IFNode())
        block = nn.Sequential(ConvBN(4, 4, 3, 1, IFNode()), ConvBN(4, 4, 3, 1, LIFNode(tau=2.0)))
        self.block = SEWBlock(block, None, "add")
        self.head = TimeDistributed(nn.AvgPool2d(2), nn.Flatten(1), nn.Linear(4 * 4 * 4, 5))
        _randomize_bn(self)

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


def _rates(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    """Firing rate per neuron layer, keyed by the NIR node name (an imported layer is ``layers.<node with __>``)."""
    with Monitor(model) as mon:
        out = model(x)
    return {k.removeprefix("layers.").replace("__", "."): r for k, r in mon.rates().items()}, out


@pytest.mark.parametrize("make", [plif_net, SEWAddNet])
def test_round_trip_identical_spikes(make, tmp_path) -> None:
    model = make().double().eval()
    path = tmp_path / "model.nir"
    export_nir(model, path, dt=1.0, input_shape=(2, 8, 8))
    graph = nir.read(str(path))  # nir's own structure and type checks (type_check=True)
    assert graph.check_types()
    back = import_nir(path, dtype=torch.float64).eval()
    x = (torch.rand(6, 3, 2, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.4).double() * 1.5
    with torch.no_grad():
        rates_a, out_a = _rates(model, x)
        rates_b, out_b = _rates(back, x)
    assert rates_a == rates_b and len(rates_a) >= 3
    assert all(0 < r < 1 for r in rates_a.values())  # every layer fires, and not always
    if make is plif_net:
        assert torch.equal(out_a, out_b)  # spikes of the last layer
    else:
        assert torch.allclose(out_a, out_b, rtol=0, atol=1e-12)  # a linear of identical spikes


def test_plif_and_lif_parameters_in_the_graph(tmp_path) -> None:
    # dt = 0.5: PLIF w = 0.3, k = sigmoid(0.3) = 0.574443; λ = 1 − k -> τ = dt/k = 0.870409; R = κ/k = 1 (decay_input).
    model = plif_net()
    graph = export_nir(model, tmp_path / "m.nir", dt=0.5, input_shape=(2, 8, 8))
    node = graph.nodes["2"]
    k = 1 / (1 + np.exp(-0.3))
    assert isinstance(node, nir.LIF)
    assert node.tau.shape == (4, 8, 8)
    np.testing.assert_allclose(node.tau, 0.5 / k, rtol=1e-6)
    np.testing.assert_allclose(node.r, 1.0, rtol=1e-6)
    np.testing.assert_array_equal(node.v_threshold, 1.0)
    # decay_input=False, τ0 = 3: k = 1/3, κ = 1 -> R = 1/k = 3
    np.testing.assert_allclose(graph.nodes["5"].r, 3.0, rtol=1e-6)
    assert graph.metadata["dt"] == 0.5
    # the BN was folded into the conv: conv "0" followed directly by neuron "2", no node "1"
    assert ("0", "2") in graph.edges and "1" not in graph.nodes


def test_digits_if_node_mapping(tmp_path) -> None:
    # IF (λ = κ = 1) with dt = 0.25 -> NIR IF with R = κ/dt = 4; imported back as an IFNode.
    model = create_model("digits_snn", neuron={"kind": "if"})
    graph = export_nir(model, tmp_path / "d.nir", dt=0.25)
    assert isinstance(graph.nodes["sn1"], nir.IF)
    np.testing.assert_array_equal(graph.nodes["sn1"].r, 4.0)
    back = import_nir(tmp_path / "d.nir")
    assert isinstance(back.layers["sn1"], IFNode)
    x = torch.rand(4, 7, 64) * 3
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), back(x))


def test_sew_add_is_a_sum_of_edges(tmp_path) -> None:
    graph = export_nir(SEWAddNet(), tmp_path / "s.nir", input_shape=(2, 8, 8))
    assert isinstance(graph.nodes["block.connect"], nir.Scale)
    into = sorted(a for a, b in graph.edges if b == "block.connect")
    assert into == ["block.residual.1.sn", "stem.sn"]


@pytest.mark.parametrize("build, layer, why", [
    (lambda: create_model("plif_mnist"), r"'features\.\d+' \(MaxPool2d\)", "max-pool"),
    (lambda: nn.Sequential(TimeDistributed(nn.Linear(4, 4)), LIFNode(v_reset=None)), "'1'", "soft reset"),
    (lambda: _and_block(), "'connect'", "AND"),
    (lambda: create_model("digits_snn", method="dsr"), "'sn1'", "DSR"),
    (lambda: nn.Sequential(TimeDistributed(nn.Linear(4, 4)), IFNode(), BatchNormTB(4)), "'2'", "not directly"),
    (lambda: nn.Sequential(TimeDistributed(nn.Linear(4, 4)), nn.GELU()), "'1'", "no NIR mapping"),
])
def test_unsupported_layers_raise_naming_the_layer(build, layer, why, tmp_path) -> None:
    with pytest.raises(ValueError, match=f"layer {layer}.*{why}"):
        export_nir(build(), tmp_path / "x.nir", input_shape=(4,) if why in ("soft reset", "not directly",
                                                                            "no NIR mapping", "AND") else None)


class _AndNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = TimeDistributed(nn.Linear(4, 4))
        self.sn = IFNode()
        self.connect = SEWConnect("and")

    def forward(self, x):
        s = self.sn(self.fc(x))
        return self.connect(s, s)


def _and_block() -> nn.Module:
    return _AndNet()


def test_import_bad_file_names_it(tmp_path) -> None:
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.nir"):
        import_nir(bad)
    with pytest.raises(ValueError, match="does not exist"):
        import_nir(tmp_path / "missing.nir")


def test_voting_and_sequence_readout_round_trip(tmp_path) -> None:
    # VotingLayer(2) -> an averaging Linear [K, 2K]; Readout(λ = 0.8, sequence) -> LI with τ = dt/0.2, R = κ/0.2.
    torch.manual_seed(0)
    net = nn.Sequential(TimeDistributed(nn.Linear(6, 8)), IFNode(), VotingLayer(2), Readout(decay=0.8, output="sequence"))
    graph = export_nir(net, tmp_path / "v.nir", dt=1.0, input_shape=(6,))
    np.testing.assert_array_equal(graph.nodes["2"].weight[0], [0.5, 0.5, 0, 0, 0, 0, 0, 0])
    assert isinstance(graph.nodes["3"], nir.LI)
    np.testing.assert_allclose(graph.nodes["3"].tau, 5.0)
    back = import_nir(tmp_path / "v.nir", dtype=torch.float64)
    x = torch.rand(5, 4, 6, dtype=torch.float64) * 2
    with torch.no_grad():
        torch.testing.assert_close(back(x), net.double()(x), rtol=1e-12, atol=1e-12)


def test_final_readout_raises(tmp_path) -> None:
    net = nn.Sequential(TimeDistributed(nn.Linear(6, 8)), Readout(output="final"))
    with pytest.raises(ValueError, match="layer '1' \\(Readout\\).*final-potential"):
        export_nir(net, tmp_path / "r.nir", input_shape=(6,))
