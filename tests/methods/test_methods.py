"""The method registry and one model definition under every method."""
import pytest
import torch

from spikeforge.methods import get_method, list_methods
from spikeforge.neuron.dsr import DSRNode
from spikeforge.models import create_model


def test_registry():
    assert list_methods() == ["bptt", "dsr", "ssf"]
    assert repr(get_method("ssf", faithful=True)) == "ssf(faithful=True)"
    with pytest.raises(ValueError, match="method 'sgd' is not registered; choose one of: bptt, dsr, ssf"):
        get_method("sgd")
    with pytest.raises(ValueError, match="bad option"):
        get_method("bptt", faithful=True)


def test_one_step_methods_need_two_steps():
    with pytest.raises(ValueError, match="method='ssf' needs T >= 2 \\(got T=1\\)"):
        create_model("digits_snn", method="ssf", T=1)


def hidden_spikes(model, x):
    seen = []
    handle = model.sn1.register_forward_hook(lambda m, i, o: seen.append(o.materialize() if hasattr(o, "seq") else o.detach()))
    model.forward_output(x).logits.sum().backward()
    handle.remove()
    return seen[0]


def test_bptt_ssf_dsr_give_identical_hidden_spike_trains():
    torch.manual_seed(0)
    x = torch.rand(32, 64) * 2
    bptt = create_model("digits_snn", method="bptt")
    ssf = create_model("digits_snn", method="ssf")
    ssf.load_state_dict(bptt.state_dict())
    assert torch.equal(hidden_spikes(bptt, x), hidden_spikes(ssf, x))
    dsr = create_model("digits_snn", method="dsr")
    dsr_bptt = create_model("digits_snn", method="bptt")
    dsr_bptt.sn1 = DSRNode("if", v_threshold=1.0, lower_bound=0.01, alpha=0.5)
    dsr_bptt.load_state_dict(dsr.state_dict())
    s_dsr, s_bptt = hidden_spikes(dsr, x), hidden_spikes(dsr_bptt, x)
    assert torch.equal(s_dsr, s_bptt) and 0 < s_dsr.mean() < 1


@pytest.mark.parametrize("method", ["bptt", "ssf", "dsr", "ssf-faithful", "dsr-faithful"])
def test_every_parameter_gets_gradient(method):
    name, _, faithful = method.partition("-")
    model = create_model("digits_snn", method=get_method(name, faithful=True) if faithful else name)
    model(torch.rand(8, 64) * 2).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert model.fc1.module.weight.grad.abs().sum() > 0
