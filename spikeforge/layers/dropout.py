"""Dropout with one mask per sample, fixed over time (SPEC §7.2, DESIGN "Dropout").

Dropping a different set of units at every step would let each unit through on some steps and
so average the dropout away over T; the PLIF networks (Fang et al., ICCV 2021) draw one mask per
sample ``[B, ...]`` per forward and reuse it at every step. SpikingJelly calls this
``layer.Dropout`` in multi-step mode. Under ssf/dsr the one mask multiplies ``seq`` at every step
and ``flow`` alike (DESIGN "Dropout"), so ``flow`` stays the aggregate of ``seq``.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from spikeforge.streams.dual import Dual

__all__ = ["TimeFixedDropout"]


class TimeFixedDropout(nn.Module):
    """Dropout whose Bernoulli mask is drawn once per forward and shared by all T steps.

    Training: ``y[t] = x[t] · m / (1 − p)`` for every t, with ``m ~ Bernoulli(1 − p)`` of shape
    ``[B, ...]`` drawn from the global torch RNG (so ``torch.manual_seed`` reproduces it).
    Eval (or p = 0): ``y = x``.

    Args:
        p: probability of dropping a unit, in [0, 1). Default 0.5 (the PLIF networks' value).

    Shape:
        Input: ``[T, B, *]`` (T steps, B samples, ``*`` any feature dims), or a ``Dual`` with such a
            ``seq`` and ``flow`` ``[B, *]`` (one mask for both streams).
        Output: same shape and dtype (a ``Dual`` for a ``Dual``); the mask has shape ``[B, *]``.

    Raises:
        ValueError: ``p`` outside [0, 1); input of rank < 2.

    Example:
        >>> dp = TimeFixedDropout(0.5)
        >>> y = dp(torch.ones(8, 16, 2048))  # y[t] identical for every t, entries in {0, 2}
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool):
            raise ValueError(f"TimeFixedDropout: p must be a probability in [0, 1), got {p!r}")
        p = float(p)
        if not (math.isfinite(p) and 0.0 <= p < 1.0):
            raise ValueError(f"TimeFixedDropout: p must be a probability in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:  # x [T, B, ...] -> [T, B, ...], one mask [B, ...] for all T
        if isinstance(x, Dual):
            if not self.training or self.p == 0.0:
                return x
            mask = F.dropout(x.flow.new_ones(x.flow.shape), self.p, training=True)  # [B, ...], {0, 1/(1-p)}
            fixed = mask.detach()
            seq = x.seq.map(lambda z: z * fixed.repeat(z.shape[0] // fixed.shape[0], *([1] * (z.dim() - 1))),
                             x.flow.shape, x.flow.dtype)
            return Dual(seq, x.flow * mask, x.weights)
        if not isinstance(x, Tensor):
            raise TypeError(f"TimeFixedDropout: expected a Tensor [T, B, ...], got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(f"TimeFixedDropout: expected a time-first input [T, B, ...] of rank >= 2, got shape {tuple(x.shape)}")
        if not self.training or self.p == 0.0:
            return x
        mask = F.dropout(x.new_ones(x.shape[1:]), self.p, training=True)  # values in {0, 1/(1-p)}
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p:g}"
