"""SEW ResNet's element-wise connect functions g(A, S) (Fang et al., NeurIPS 2021; SPEC §7.1).

ADD: A + S; AND: A·S; IAND: (1 − A)·S, with A the block's residual spikes and S the shortcut spikes.
Under ssf/dsr (``Dual`` inputs) ADD maps both streams; AND and IAND take the flow value from the
aggregate of their own ``seq`` output and the gradient from g at the flows (DESIGN.md).
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from spikeforge.streams.dual import Dual, aggregate, straight_through

__all__ = ["SEWConnect", "CONNECTS"]

CONNECTS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "add": lambda a, s: a + s,
    "and": lambda a, s: a * s,
    "iand": lambda a, s: (1 - a) * s,
}


class SEWConnect(nn.Module):
    """g(A, S) for ``connect`` in ``add``, ``and``, ``iand``.

    Shape:
        a, s: ``[T, B, ...]`` spikes (or Duals of them); output the same shape.
    """

    def __init__(self, connect: str = "add") -> None:
        super().__init__()
        if connect not in CONNECTS:
            raise ValueError(f"SEWConnect: connect must be one of {', '.join(CONNECTS)}, got {connect!r}")
        self.connect = connect
        self.fn = CONNECTS[connect]

    def forward(self, a: Tensor | Dual, s: Tensor | Dual) -> Tensor | Dual:
        if isinstance(a, Dual) != isinstance(s, Dual):
            raise TypeError("SEWConnect: both inputs must be plain tensors or both Duals")
        if tuple(a.shape) != tuple(s.shape):
            raise ValueError(f"SEWConnect: A and S must have the same shape, got {tuple(a.shape)} and {tuple(s.shape)}")
        if not isinstance(a, Dual):
            return self.fn(a, s)
        if self.connect == "add":
            return a + s
        seq = a.seq.zip(s.seq, self.fn, a.flow.dtype)
        value = aggregate(seq, a.weights).to(a.flow.dtype)
        return Dual(seq, straight_through(value, self.fn(a.flow, s.flow)), a.weights)

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"
