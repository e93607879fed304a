"""Argument checks shared by the neurons and the windowed run (no neuron logic)."""
from __future__ import annotations

from torch import Tensor

__all__ = ["check_sequence"]


def check_sequence(x: Tensor, who: str) -> None:
    """Raise unless ``x`` is a floating tensor laid out ``[T, B, ...]``."""
    if not isinstance(x, Tensor):
        if hasattr(x, "flow"):
            raise TypeError(f"{who}: got a one-step Dual(seq, flow) input, but this neuron was built for bptt; "
                            "build the model with method='ssf' or 'dsr'")
        raise TypeError(f"{who}: expected a Tensor [T, B, ...], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point input current, got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{who}: expected a time-first input [T, B, ...] of rank >= 2, got shape {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"{who}: expected at least one time step, got shape {tuple(x.shape)}")
