"""Membrane-potential fusions of Yao et al. (SPEC §7.4 "MP fusion"): ``FUSIONS`` (name -> class).

A fusion ``f(a, b)`` turns two membrane potentials (same shape, potential units) into the starting
potential ``mem_in`` of the next window's neuron. The arguments are in the official code's order
(LSTM file: G1 f(old1, old2), G2 f(new1, old2), G3 f(old3, new2), G4 f(old4, new3); CNN file:
c2_in = f(c1_prev, c2_prev)).

- ``sin`` (code, cnn_10 / lstm_10 files): f(a, b) = 2·sin((π/4)·a·cos((π/4)·b));
- ``mean`` (code, cnn_100 file): f(a, b) = (a + b)/2;
- ``linear`` (paper Eq. 5, V[η, v] − α·V[η−1, v−1]): f(a, b) = a − α·b; α is not given by the paper
  and has no default.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from spikeforge.registry import build_from

__all__ = ["FUSIONS", "Fusion", "LinearFusion", "MeanFusion", "SinFusion", "get_fusion"]


class Fusion:
    """Base class: ``fusion(a, b) -> Tensor`` elementwise on broadcastable tensors."""

    name = ""

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}()"


class SinFusion(Fusion):
    """f(a, b) = 2·sin((π/4)·a·cos((π/4)·b)) (the code's; SPEC oracle Y4: f(1, 1) = 1.054499)."""

    name = "sin"

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        return 2 * torch.sin((math.pi / 4) * a * torch.cos((math.pi / 4) * b))


class MeanFusion(Fusion):
    """f(a, b) = (a + b)/2 (the code's CIFAR-100 CNN file)."""

    name = "mean"

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        return (a + b) / 2


class LinearFusion(Fusion):
    """f(a, b) = a − α·b (paper Eq. 5). Args: alpha: α, required (the paper does not give it)."""

    name = "linear"

    def __init__(self, alpha: float | None = None) -> None:
        if alpha is None:
            raise ValueError("fusion 'linear' needs alpha (paper Eq. 5's α; the paper gives no value)")
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"fusion 'linear': alpha must be finite, got {alpha}")
        self.alpha = alpha

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        return a - self.alpha * b

    def __repr__(self) -> str:
        return f"linear(alpha={self.alpha:g})"


#: fusion name -> class
FUSIONS: dict[str, type[Fusion]] = {"sin": SinFusion, "mean": MeanFusion, "linear": LinearFusion}


def get_fusion(spec: str | Mapping[str, Any] | Fusion) -> Fusion:
    """A fusion from a name (``"sin"``), a mapping (``{"name": "linear", "alpha": 0.5}``) or an instance."""
    return build_from("fusion", FUSIONS, spec)
