"""Low-bit weights: grid, error bound, STE, QAT under a training step."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.models import create_model
from spikeforge.tools.quantize import (
    finish_qat,
    prepare_qat,
    quantize_tensor,
    quantize_weights,
)


def test_hand_grid_2_bits() -> None:
    # b = 2: levels ±1, s = max|w| / 1 = 0.8; w / s = [-1, -0.375, 0.25, 0.625, 1] (no ties):
    #   round → [-1,  0, 0, 1, 1]  (expected)
    #   floor → [-1, -1, 0, 0, 1]   trunc → [-1, 0, 0, 0, 1]   ceil → [-1, 0, 1, 1, 1]
    w = torch.tensor([-0.8, -0.3, 0.2, 0.5, 0.8], dtype=torch.float64)
    q, s = quantize_tensor(w, 2)
    assert s == pytest.approx(0.8)
    assert q.tolist() == pytest.approx([-0.8, 0.0, 0.0, 0.8, 0.8])


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
def test_weights_on_grid_and_error_bound(bits: int) -> None:
    torch.manual_seed(bits)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(50, 20))
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    quantize_weights(model, bits)
    levels = 2 ** (bits - 1) - 1
    for layer, name in ((model[0], "0"), (model[1], "1")):
        w0 = original[f"{name}.weight"].double()
        s = float(w0.abs().max()) / levels
        wq = layer.weight.detach().double()
        k = wq / s
        assert torch.allclose(k, k.round(), atol=1e-3 + 2e-7 * levels)  # on the grid s·k, k integer (float32 weights)
        assert k.round().abs().max() <= levels
        assert layer.weight.unique().numel() <= 2 ** bits
        assert float((wq - w0).abs().max()) <= s / 2 + 1e-7  # + float32 rounding of the stored weight
        assert torch.equal(layer.bias, original[f"{name}.bias"])  # biases stay full precision


def test_4_bits_take_at_most_16_values_on_a_model() -> None:
    model = quantize_weights(create_model("digits_snn"), 4)
    for layer in (model.fc1.module, model.fc2.module):
        assert layer.weight.unique().numel() <= 15


def test_ste_passes_gradient_unchanged() -> None:
    w = torch.linspace(-1, 1, 11, requires_grad=True)
    layer = nn.Linear(11, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    prepare_qat(layer, 3)
    g = torch.randn(1, 11)
    x = torch.eye(11)
    (layer(x).squeeze(1) * g.squeeze(0)).sum().backward()
    grad = layer.parametrizations.weight.original.grad
    assert torch.equal(grad, g)  # ∂Q/∂W := 1 everywhere inside the range (no weight is outside it)
    q, _ = quantize_tensor(w.detach(), 3)
    assert torch.equal(layer.weight.detach().squeeze(0), q)


@pytest.mark.parametrize("method", ["bptt", "ssf"])
def test_qat_training_step_then_finish(method: str) -> None:
    torch.manual_seed(0)
    model = prepare_qat(create_model("digits_snn", method=method), 4)
    x, y = torch.rand(8, 64) * 4, torch.randint(0, 10, (8,))
    nn.functional.cross_entropy(model(x), y).backward()
    assert model.fc1.module.parametrizations.weight.original.grad.abs().sum() > 0
    with torch.no_grad():
        before = model(x)
    finish_qat(model)
    assert model.fc1.module.weight.unique().numel() <= 15
    with torch.no_grad():
        assert torch.equal(model(x), before)


@pytest.mark.parametrize("bits", [1, 17, 4.0, True])
def test_bits_outside_range_raise(bits) -> None:
    with pytest.raises(ValueError, match="bits must be an integer in 2..16"):
        quantize_weights(nn.Linear(2, 2), bits)
    with pytest.raises(ValueError, match="bits"):
        prepare_qat(nn.Linear(2, 2), bits)
