"""SpikingModel's two build helpers: ``neuron_factory`` (the method's neurons) and ``set_head`` (the readout λ_r
and the method's output layer)."""
import math

import pytest
import torch
from torch import nn

from spikeforge.layers import TimeDistributed
from spikeforge.models import create_model
from spikeforge.models.base import SpikingModel
from spikeforge.neuron import LIFNode
from spikeforge.neuron.dsr import DSRNode

#: LIF λ = 0.9, hard reset to 0: bptt and ssf take it, dsr cannot (no dsr_neuron given)
HARD_LIF = {"kind": "lif", "decay": 0.9, "v_threshold": 1.0, "v_reset": 0.0}
#: DSR-LIF with Δt = 0.1, τ = 1: β = exp(−0.1)
DSR_LIF = {"kind": "lif", "dt": 0.1, "tau": 1.0}


class Tiny(SpikingModel):
    """Linear 4→3 → SN → Linear 3→2 [→ output layer]; ``head`` picks the set_head call (``"none"``: none)."""

    built: list[str] = []  # what __init__ got to build, in order (reset by each test)

    def __init__(self, method="bptt", neuron=HARD_LIF, dsr_neuron=None, head="output"):
        super().__init__("tiny", 4, 2, (4,), method)
        make_sn = self.neuron_factory(neuron, dsr_neuron)
        Tiny.built.append("factory")
        self.fc1 = TimeDistributed(nn.Linear(4, 3))
        Tiny.built.append("fc1")
        self.sn1 = make_sn()
        self.fc2 = TimeDistributed(nn.Linear(3, 2))
        if head == "output":
            self.out = self.set_head(0.9, make_sn)
        elif head == "hidden":
            self.out = self.set_head(0.9)
        elif head == "mean":
            self.out = self.set_head()
        else:
            self.out = None

    def forward_features(self, x):
        x = self.fc2(self.sn1(self.fc1(x)))
        return x if self.out is None else self.out(x)


@pytest.fixture(autouse=True)
def _reset_built():
    Tiny.built = []


# -- neuron_factory ------------------------------------------------------------------------------------
def test_factory_makes_a_new_layer_of_the_method_per_call():
    model = Tiny("bptt", head="mean")
    assert isinstance(model.sn1, LIFNode) and model.sn1.decay == 0.9
    make = model.neuron_factory(HARD_LIF)
    a, b = make(), make()
    assert isinstance(a, LIFNode) and a is not b and a is not model.sn1
    dsr = Tiny("dsr", dsr_neuron=DSR_LIF, head="mean")
    assert isinstance(dsr.sn1, DSRNode) and dsr.sn1.beta == pytest.approx(math.exp(-0.1), rel=1e-15)


def test_factory_names_the_model_and_fails_before_any_layer():
    """dsr on a hard-reset LIF without a DSR config: the error names the model and the method, and comes from
    the factory's creation, before fc1 (the first layer) is built."""
    with pytest.raises(ValueError, match=r"^tiny: method='dsr' cannot build its neurons: dsr: a neuron of kind 'lif'"):
        Tiny("dsr", neuron=HARD_LIF, dsr_neuron=None)
    assert Tiny.built == []


def test_factory_check_draws_no_random_numbers():
    """The neuron built (and discarded) by the check leaves the RNG stream, so the models' init, as it was."""
    model = Tiny("bptt", head="mean")
    for neuron, dsr_neuron in ((HARD_LIF, None), ({"kind": "plif", "init_tau": 2.0}, None), (HARD_LIF, DSR_LIF)):
        torch.manual_seed(0)
        before = torch.get_rng_state()
        model.neuron_factory(neuron, dsr_neuron)
        assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(0)
    built = Tiny("bptt", head="mean")
    torch.manual_seed(0)
    fc1 = nn.Linear(4, 3)  # Tiny's first random draw is fc1's init, as if no neuron had been built before it
    assert torch.equal(built.fc1.module.weight, fc1.weight) and torch.equal(built.fc1.module.bias, fc1.bias)


# -- set_head ------------------------------------------------------------------------------------------
def test_head_with_output_neuron_under_each_method():
    """λ_r: 1 under bptt (the neuron's rate); the hidden λ = 0.9 under ssf (no output neuron); the DSR-LIF output
    neuron's β = exp(−0.1) under dsr (its representation o); 1 for DSR-IF."""
    bptt = Tiny("bptt")
    assert isinstance(bptt.out, LIFNode) and bptt.readout.decay == 1.0
    ssf = Tiny("ssf")
    assert isinstance(ssf.out, nn.Identity) and ssf.readout.decay == 0.9
    dsr = Tiny("dsr", dsr_neuron=DSR_LIF)
    assert isinstance(dsr.out, DSRNode) and dsr.out is not dsr.sn1
    assert dsr.readout.decay == pytest.approx(math.exp(-0.1), rel=1e-15)
    assert Tiny("dsr", dsr_neuron={"kind": "if"}).readout.decay == 1.0


@pytest.mark.parametrize("method,hidden,mean", [("bptt", 1.0, 1.0), ("ssf", 0.9, 1.0), ("dsr", 1.0, 1.0)])
def test_head_without_output_neuron(method, hidden, mean):
    """A linear head: λ_r = method.readout_decay(λ) (ssf: λ) with the hidden λ, 1 under every method without."""
    kw = {"dsr_neuron": DSR_LIF} if method == "dsr" else {}
    with_hidden = Tiny(method, head="hidden", **kw)
    assert with_hidden.out is None and with_hidden.readout.decay == hidden
    assert Tiny(method, head="mean", **kw).readout.decay == mean


def test_ssf_logits_are_the_readouts_final_potential_over_W():
    """Under ssf with set_head(0.9): logits = Σ_t 0.9^(T−1−t)·o_t / Σ_t 0.9^t (T = 4)."""
    torch.manual_seed(0)
    model = Tiny("ssf", head="hidden").eval()
    x = torch.rand(4, 5, 4) * 3
    with torch.no_grad():
        out = model.forward_output(x)
    w = torch.tensor([0.9 ** 3, 0.9 ** 2, 0.9, 1.0], dtype=torch.float64)
    expected = (w.view(4, 1, 1) * out.steps.double()).sum(0) / w.sum()
    torch.testing.assert_close(out.logits.double(), expected, rtol=1e-6, atol=1e-7)


def test_head_needs_hidden_decay_with_an_output_neuron():
    model = Tiny("bptt", head="mean")
    with pytest.raises(ValueError, match="tiny: set_head needs hidden_decay"):
        model.set_head(None, model.neuron_factory(HARD_LIF))


def test_forward_without_set_head_raises():
    model = Tiny("bptt", head="none")
    assert model.readout is None and list(model._modules)[0] == "readout"  # the slot keeps its place
    with pytest.raises(RuntimeError, match=r"tiny: no readout; .*set_head"):
        model(torch.rand(2, 4))


@pytest.mark.parametrize("name,method,decay", [
    ("resnet19", "ssf", 0.5),                     # readout_decay of TET's λ
    ("vggsnn_dvs", "ssf", 0.5),
    ("preact_resnet20", "ssf", 0.95),             # output_neuron: Identity, λ of the DSR layout's LIF
    ("preact_resnet20", "dsr", math.exp(-0.05)),  # DSR-LIF output neuron's β (T = 20 preset, Δt 0.05)
    ("vgg11_dvs", "bptt", 1.0),
    ("sew_cifar10_small", "ssf", 1.0),            # linear head: time mean under every method
    ("digits_snn", "ssf", 1.0),
])
def test_families_set_their_head(name, method, decay):
    model = create_model(name, method=method, **({"T": 20} if name.startswith("preact") else {}))
    assert model.readout.decay == pytest.approx(decay, rel=1e-7) and model.readout.output == "final"


def test_repr_shows_the_method_and_the_membrane_flag():
    model = create_model("digits_snn", method="ssf")
    assert model.extra_repr() == "T=4, num_classes=10, method=ssf()"
    model.collect_membrane = True
    assert model.extra_repr().endswith("method=ssf(), collect_membrane=True")
    assert "grad_rule=ssf()" in repr(model.sn1)
