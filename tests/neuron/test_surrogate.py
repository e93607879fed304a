"""Surrogate gradients (SPEC §3): registry, Heaviside forward, derivatives vs primitives, F7."""
import math

import pytest
import torch

from spikeforge.neuron import surrogate
from spikeforge.neuron.surrogate import SURROGATES

NAMES = ["atan", "const", "rect", "sigmoid", "triangle"]


def test_registry_names():
    assert SURROGATES.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_derivative_is_slope_of_primitive(name, alpha):
    """Hand-written σ' equals the central difference of the primitive (float64), away from kinks."""
    sg = surrogate.get(name, alpha=alpha)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    kinks = torch.tensor([0.0, alpha / 2, -alpha / 2, alpha, -alpha], dtype=torch.float64)
    x = x[(x[:, None] - kinks).abs().min(dim=1).values > 1e-3]
    eps = 1e-6
    numeric = (sg.primitive(x + eps) - sg.primitive(x - eps)) / (2 * eps)
    torch.testing.assert_close(sg.derivative(x), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside_and_backward_is_derivative(name):
    sg = surrogate.get(name)
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 0.3], dtype=torch.float64, requires_grad=True)
    s = sg(x)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # Θ(0) = 1
    assert sg(x, strict=True).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # strict: 0 does not fire
    s.backward(torch.arange(1.0, 6.0, dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.arange(1.0, 6.0, dtype=torch.float64) * sg.derivative(x.detach()))


def test_atan_values():
    """SPEC §3: σ'(x) = (α/2)/(1 + (π/2·α·x)²); α = 2 gives 1/(1 + (πx)²), σ'(0) = α/2."""
    sg = surrogate.get("atan")
    assert sg.alpha == 2.0
    x = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    torch.testing.assert_close(sg.derivative(x), 1 / (1 + (math.pi * x) ** 2))
    assert surrogate.get("atan", alpha=3.0).derivative(torch.zeros(1)).item() == 1.5


def test_sigmoid_values():
    sg = surrogate.get("sigmoid")
    assert sg.alpha == 4.0
    assert sg.derivative(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(1.0)  # 4 · 0.5 · 0.5
    s = 1 / (1 + math.exp(-4 * 0.3))
    assert sg.derivative(torch.tensor([0.3], dtype=torch.float64)).item() == pytest.approx(4 * s * (1 - s), rel=1e-12)


def test_const_value():
    assert surrogate.get("const").derivative(torch.tensor([-5.0, 0.0, 7.0])).tolist() == [1.0, 1.0, 1.0]


def test_F7_triangle_gamma_1():
    x = torch.tensor([-1.5, -1, -0.5, 0, 0.25, 0.999, 1], dtype=torch.float64)
    torch.testing.assert_close(surrogate.get("triangle").derivative(x),
                               torch.tensor([0, 0, 0.5, 1, 0.75, 0.001, 0], dtype=torch.float64))


def test_F7_triangle_gamma_half():
    x = torch.tensor([0, 0.25, 0.5, -0.1], dtype=torch.float64)
    torch.testing.assert_close(surrogate.get("triangle", alpha=0.5).derivative(x),
                               torch.tensor([2, 1, 0, 1.6], dtype=torch.float64))


def test_F7_rect_strict_edges():
    x = torch.tensor([-0.6, -0.5, -0.49, 0, 0.3, 0.5], dtype=torch.float64)
    assert surrogate.get("rect").derivative(x).tolist() == [0, 0, 1, 1, 1, 0]


def test_rect_width_scales_height():
    assert surrogate.get("rect", alpha=2.0).derivative(torch.tensor([0.9, 1.0])).tolist() == [0.5, 0.0]


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="surrogate 'arctan' is not registered; did you mean: atan, rect[?] choose one of: atan, const, rect, sigmoid, triangle"):
        surrogate.get("arctan")


def test_unknown_option_is_a_value_error_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"surrogate 'atan': bad option in \{'beta': 3\}.*valid options: alpha"):
        surrogate.get("atan", beta=3)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        surrogate.get("atan", alpha=alpha)


def test_callable_passes_through_and_repr():
    fn = lambda x: (x >= 0).float()  # noqa: E731
    assert surrogate.get(fn) is fn
    assert repr(surrogate.get("atan")) == "atan(alpha=2.0)"
    assert surrogate.get("rect", alpha=1.0) == surrogate.get("rect")
