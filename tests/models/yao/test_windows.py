"""Window machinery of Yao et al. (SPEC §7.4 "Windows", Algorithm 1): oracles Y1–Y3b, errors, gradients."""
from __future__ import annotations

import pytest
import torch

from spikeforge.models.yao.windows import condense, partition, region_threshold, window_size


def _map(values) -> torch.Tensor:
    """A [L, L] table as a channels-last map [1, L, L, 1] (float64)."""
    return torch.tensor(values, dtype=torch.float64)[None, :, :, None]


def _windows(*gs) -> torch.Tensor:
    """Four [ws, ws] windows as [4, 1, ws, ws, 1]."""
    return torch.stack([torch.as_tensor(g, dtype=torch.float64)[None, :, :, None] for g in gs])


def _code_condense(g: torch.Tensor, w_o: int) -> torch.Tensor:
    """Algorithm 1 as the official code writes it (axes B, H, W, C), the reference."""
    a, b = w_o // 2, 3 * w_o // 2
    g1, g2, g3, g4 = g
    m12 = (g1[:, :, a:b] + g2[:, :, 0:w_o]) / 2
    g12 = torch.cat([g1[:, :, 0:a], m12, g2[:, :, w_o:b]], dim=2)
    m34 = (g3[:, :, a:b] + g4[:, :, 0:w_o]) / 2
    g34 = torch.cat([g3[:, :, 0:a], m34, g4[:, :, w_o:b]], dim=2)
    mp = (g12[:, a:b] + g34[:, 0:w_o]) / 2
    return torch.cat([g12[:, 0:a], mp, g34[:, w_o:b]], dim=1)


@pytest.mark.parametrize("L, kind, expected", [
    (32, "dilated", (24, 16)), (16, "dilated", (12, 8)), (8, "dilated", (6, 4)), (4, "dilated", (3, 2)),
    (16, "quadrant", (8, 0)), (2, "quadrant", (1, 0)),
])
def test_window_sizes(L, kind, expected):
    """SPEC §7.4: M = 3L/4, w_o = 2M − L; quadrant ws = L/2."""
    assert window_size(L, kind) == expected


@pytest.mark.parametrize("L, kind", [(6, "dilated"), (10, "dilated"), (2, "dilated"), (3, "quadrant"), (0, "quadrant")])
def test_bad_side_raises(L, kind):
    with pytest.raises(ValueError, match=f"L={L}"):
        partition(torch.zeros(1, L, L, 1), kind)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="window kind 'strided' is not registered"):
        window_size(8, "strided")
    with pytest.raises(ValueError, match=r"\[B, L, L, C\]"):
        partition(torch.zeros(1, 8, 6, 1), "quadrant")
    with pytest.raises(ValueError, match=r"expected windows \[4, B, 6, 6, C\]"):
        condense(torch.zeros(4, 1, 4, 4, 1), 8, "dilated")
    with pytest.raises(ValueError, match="threshold"):
        region_threshold(torch.zeros(3), 1.5)


def test_Y1_dilated_partition_condense_round_trip():
    """Y1: L = 8, M = 6, w_o = 4, X[i, j] = 8i + j; G2's first row, G3's first column, exact round trip."""
    x = _map([[8 * i + j for j in range(8)] for i in range(8)])
    g = partition(x, "dilated")
    assert g.shape == (4, 1, 6, 6, 1)
    assert g[1, 0, 0, :, 0].tolist() == [2, 3, 4, 5, 6, 7]
    assert g[2, 0, :, 0, 0].tolist() == [16, 24, 32, 40, 48, 56]
    assert torch.equal(condense(g, 8, "dilated"), x)  # max abs error 0


@pytest.mark.parametrize("L, kind", [(16, "dilated"), (8, "quadrant"), (2, "quadrant")])
def test_round_trip_random(L, kind):
    x = torch.randn(2, L, L, 3, dtype=torch.float64)
    assert torch.equal(condense(partition(x, kind), L, kind), x)


def test_quadrant_recompose_is_concatenation():
    g = torch.randn(4, 2, 3, 3, 5)
    expected = torch.cat([torch.cat([g[0], g[1]], 2), torch.cat([g[2], g[3]], 2)], 1)
    assert torch.equal(condense(g, 6, "quadrant"), expected)


@pytest.mark.parametrize("L", [4, 8, 16, 32])
def test_condense_equals_code_algorithm_1(L):
    ws, w_o = window_size(L, "dilated")
    g = torch.randn(4, 2, ws, ws, 3, dtype=torch.float64)
    assert torch.equal(condense(g, L, "dilated"), _code_condense(g, w_o))


def test_Y2_median_spikes_and_region_threshold():
    """Y2: L = 4, G1 all ones, G2..G4 zeros."""
    ones, zeros = torch.ones(3, 3), torch.zeros(3, 3)
    g = condense(_windows(ones, zeros, zeros, zeros), 4, "dilated")
    assert torch.equal(g, _map([[1, .5, .5, 0], [.5, .25, .25, 0], [.5, .25, .25, 0], [0, 0, 0, 0]]))
    expected = _map([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    assert torch.equal(region_threshold(g, 0.1), expected)
    assert torch.equal(region_threshold(g, 0.2), expected)  # the code's where(x > 0.2, 1, x)
    assert region_threshold(g, None) is g


def test_Y3_three_windows():
    """Y3: L = 4, G1..G3 ones, G4 zeros."""
    ones, zeros = torch.ones(3, 3), torch.zeros(3, 3)
    g = condense(_windows(ones, ones, ones, zeros), 4, "dilated")
    assert torch.equal(g, _map([[1, 1, 1, 1], [1, .75, .75, .5], [1, .75, .75, .5], [1, .5, .5, 0]]))
    th = region_threshold(g, 0.1)
    assert th[0, 3, 3, 0] == 0 and th.sum() == 15


def test_Y3b_local_positions():
    """Y3b: one spike at window-local (1, 1) in G1 and in G4 → 0.25 at global (1, 1) and (2, 2)."""
    spike, zeros = torch.zeros(3, 3), torch.zeros(3, 3)
    spike[1, 1] = 1
    g = condense(_windows(spike, zeros, zeros, spike), 4, "dilated")[0, :, :, 0]
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[1, 1] = expected[2, 2] = 0.25
    assert torch.equal(g, expected)


@pytest.mark.parametrize("L, kind", [(8, "dilated"), (4, "dilated"), (4, "quadrant")])
def test_gradcheck_partition_condense(L, kind):
    """Partition and condense are linear: gradients against float64 finite differences."""
    ws, _ = window_size(L, kind)
    x = torch.randn(2, L, L, 2, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 2, ws, ws, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: partition(t, kind), (x,))
    assert torch.autograd.gradcheck(lambda t: condense(t, L, kind), (g,))


def test_condense_gradient_weights():
    """∂(Σ condense)/∂G_k: 1 in G1's own corner, 1/2 on edge bands, 1/4 in the centre (L = 8, w_o = 4)."""
    g = torch.zeros(4, 1, 6, 6, 1, dtype=torch.float64, requires_grad=True)
    condense(g, 8, "dilated").sum().backward()
    row = g.grad[0, 0, 0, :, 0].tolist()  # G1's top row: global columns 0..5
    assert row == [1, 1, .5, .5, .5, .5]
    assert g.grad[0, 0, 3, 3, 0].item() == 0.25


def test_region_threshold_gradient():
    """Th_R passes the gradient where it keeps the value (≤ Th_R) and gives 0 where it writes 1; smooth away from Th_R."""
    x = torch.tensor([0.0, 0.05, 0.3, 0.75, 1.0], dtype=torch.float64, requires_grad=True)
    y = region_threshold(x, 0.1)
    assert y.tolist() == [0.0, 0.05, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [1, 1, 0, 0, 0]
    z = (torch.rand(20, dtype=torch.float64) * 0.08).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: region_threshold(t, 0.1), (z,))
