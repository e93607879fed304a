"""digits_snn (SPEC §9 row digits)."""
import pytest
import torch

from spikeforge.models import create_model, list_models
from spikeforge.neuron import LIFNode


def test_registry_and_parameter_count():
    assert "digits_snn" in list_models()
    model = create_model("digits_snn")
    assert sum(p.numel() for p in model.parameters()) == 64 * 128 + 128 + 128 * 10 + 10  # 9,610
    node = model.sn1
    assert isinstance(node, LIFNode) and node.decay == 0.9 and node.input_gain == 1.0 and node.v_reset == 0.0


def test_static_input_is_repeated_and_logits_are_time_mean():
    torch.manual_seed(0)
    model = create_model("digits_snn", T=4)
    x = torch.rand(3, 64)
    out = model.forward_output(x)
    assert out.logits.shape == (3, 10) and out.steps.shape == (4, 3, 10)
    torch.testing.assert_close(out.logits, out.steps.mean(0))
    torch.testing.assert_close(model(x), model(x.unsqueeze(0).expand(4, 3, 64)))


def test_every_parameter_gets_gradient():
    model = create_model("digits_snn")
    model(torch.rand(8, 64) * 2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_input_and_method():
    model = create_model("digits_snn")
    with pytest.raises(ValueError, match=r"expected input \[B, 64\] \(static, repeated over T=4\) or \[T, B, 64\], got \(2, 63\)"):
        model(torch.rand(2, 63))
    with pytest.raises(ValueError, match="method 'sgd' is not registered; choose one of: bptt, dsr, ssf"):
        create_model("digits_snn", method="sgd")
    with pytest.raises(ValueError, match="model 'digits' is not registered; did you mean: digits_snn[?] choose one of: digits_snn"):
        create_model("digits")
