"""Neurons under torch.amp (bf16 autocast on CPU): spikes in the input dtype, gradients reach fp32 weights."""
import pytest
import torch

from spikeforge.models import create_model


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_bf16_autocast_digits(backend):
    torch.manual_seed(0)
    model = create_model("digits_snn", neuron={"kind": "lif", "decay": 0.9, "backend": backend})
    x = torch.rand(16, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.forward_output(x)
    assert out.steps.dtype == torch.bfloat16
    spikes = model.sn1(model.fc1(x.unsqueeze(0).expand(4, 16, 64)).to(torch.bfloat16))
    assert spikes.dtype == torch.bfloat16 and set(spikes.unique().tolist()) <= {0.0, 1.0}
    out.logits.float().sum().backward()
    assert model.fc1.module.weight.grad is not None and model.fc1.module.weight.grad.dtype == torch.float32
    assert model.fc1.module.weight.grad.abs().sum() > 0
