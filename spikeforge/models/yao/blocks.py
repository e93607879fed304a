"""Blocks of Yao et al.'s network (SPEC §7.4 "Network"): the windowed mixer, the MLP branch, PatchMerging.

Maps are channels-last ``[B, L, L, C]`` throughout, as in the code.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from spikeforge.models.yao.windows import condense, partition, region_threshold
from spikeforge.models.yao.cells import SpikingCell
from spikeforge.models.yao.encoding import Encoder
from spikeforge.models.yao.fusions import Fusion

__all__ = ["DropPath", "Mlp", "PatchMerging", "WindowMixer", "YaoBlock"]


class PatchMerging(nn.Module):
    """``[B, L, L, d]`` → ``[B, L/2, L/2, 2d]``: cat of x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    (rows, columns) along channels, then ``Linear(4d, 2d, bias=False)``; no norm (the code's)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] % 2 or x.shape[2] % 2 or x.shape[3] != self.dim:
            raise ValueError(f"PatchMerging: expected [B, L, L, {self.dim}] with an even L, got {tuple(x.shape)}")
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Mlp(nn.Module):
    """The non-spiking channel MLP: Linear(d, r·d) → GELU → Dropout → Linear(r·d, d) → Dropout."""

    def __init__(self, dim: int, ratio: float = 3.0, drop: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's branch with probability p and scale the rest by 1/(1−p)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropPath: p must lie in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class WindowMixer(nn.Module):
    """The spiking token mixer (the code's ``SNN2D``): windows → encode → cell chain → condense (→ Th_R) → fc.

    Args:
        dim: token width d; cell: a :class:`SpikingCell` built for d; kind: ``"quadrant"`` or ``"dilated"``;
        fusion, encoder: see :mod:`.fusions`, :mod:`.encoding`;
        threshold: region threshold Th_R applied after the condense of dilated windows (None = off).

    Shape:
        x: ``[B, L, L, d]``; mem_map: ``[B, L, L, out_dim]`` (cells that carry one) or None.
        Returns ``(y [B, L, L, d], new mem_map or None)``; y is real-valued (fc of condensed spikes).
    """

    def __init__(self, dim: int, cell: SpikingCell, kind: str, fusion: Fusion, encoder: Encoder,
                 threshold: float | None = None) -> None:
        super().__init__()
        self.cell, self.kind, self.fusion, self.encoder, self.threshold = cell, kind, fusion, encoder, threshold
        self.fc = nn.Linear(cell.out_dim, dim)

    def forward(self, x: Tensor, mem_map: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        L = x.shape[1]
        if self.cell.carries_map and mem_map is None:
            raise ValueError(f"WindowMixer: a {type(self.cell).__name__} needs the membrane map [B, L, L, "
                             f"{self.cell.out_dim}] of the previous block (zeros before the first block)")
        old = partition(mem_map, self.kind) if self.cell.carries_map else None
        spikes, mems = self.cell.chain(self.encoder(partition(x, self.kind)), old, self.fusion)
        g = condense(spikes, L, self.kind)
        if self.kind == "dilated":
            g = region_threshold(g, self.threshold)
        new_map = condense(mems, L, self.kind) if mems is not None else None
        return self.fc(g), new_map

    def extra_repr(self) -> str:
        th = "" if self.threshold is None or self.kind != "dilated" else f", threshold={self.threshold:g}"
        return f"kind={self.kind!r}, fusion={self.fusion!r}, encoder={self.encoder!r}{th}"


class YaoBlock(nn.Module):
    """x = x + DropPath(mixer(x)); x = x + DropPath(mlp(x)) (no norms, as the code). Shapes as :class:`WindowMixer`."""

    def __init__(self, mixer: WindowMixer, mlp: Mlp, drop_path: float = 0.0) -> None:
        super().__init__()
        self.mixer, self.mlp, self.drop_path = mixer, mlp, DropPath(drop_path)

    def forward(self, x: Tensor, mem_map: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        y, mem_map = self.mixer(x, mem_map)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(x)), mem_map
