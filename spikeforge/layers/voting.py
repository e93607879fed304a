"""The PLIF networks' voting layer (SPEC §7.2; Fang et al., ICCV 2021; SpikingJelly ``layer.VotingLayer``).

The last FC layer has ``voting_size`` neurons per class (10·K); each class's score is the mean
over its group: ``AvgPool1d(voting_size, voting_size)`` over the feature dim. Linear, so under
ssf/dsr it maps both streams of a ``Dual``.
"""
from __future__ import annotations

from torch import Tensor, nn

from spikeforge.streams.dual import Dual, map_linear

__all__ = ["VotingLayer"]


class VotingLayer(nn.Module):
    """Average each consecutive group of ``voting_size`` features: ``[..., K*v] -> [..., K]``.

    ``y[..., k] = (1/v)·Σ_{j<v} x[..., k·v + j]`` (kernel = stride = v, no padding); works per step
    on ``[T, B, K*v]`` or on firing rates ``[B, K*v]`` alike.

    Args:
        voting_size: neurons per class v (int > 0). Default 10.

    Shape:
        Input: ``[*, K*v]`` (any leading dims, e.g. ``[T, B]``), or a ``Dual`` (both streams are
            averaged). Output: ``[*, K]``, dtype of the input (a ``Dual`` for a ``Dual``).

    Raises:
        ValueError: ``voting_size`` not a positive int; a 0-dim input; a feature dim not divisible by v.

    Example:
        >>> VotingLayer(10)(torch.rand(8, 16, 100)).shape
        torch.Size([8, 16, 10])
    """

    def __init__(self, voting_size: int = 10) -> None:
        super().__init__()
        if isinstance(voting_size, bool) or not isinstance(voting_size, int) or voting_size <= 0:
            raise ValueError(f"VotingLayer: voting_size must be a positive int (neurons per class), got {voting_size!r}")
        self.voting_size = voting_size

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:  # x [..., K*v] -> [..., K]
        if isinstance(x, Dual):
            self._check(x.flow)
            return map_linear(self._vote, x)
        self._check(x)
        return self._vote(x)

    def _vote(self, x: Tensor) -> Tensor:
        n = x.shape[-1]
        return x.unflatten(-1, (n // self.voting_size, self.voting_size)).mean(-1)

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"VotingLayer: expected a Tensor [..., K*voting_size], got {type(x).__name__}")
        if x.dim() < 1:
            raise ValueError(f"VotingLayer: expected an input [..., K*voting_size] of rank >= 1, got shape {tuple(x.shape)}")
        n = x.shape[-1]
        if n % self.voting_size != 0:
            raise ValueError(
                f"VotingLayer: the last dim ({n}, input shape {tuple(x.shape)}) must be a multiple of "
                f"voting_size={self.voting_size}"
            )

    def extra_repr(self) -> str:
        return f"voting_size={self.voting_size}"
