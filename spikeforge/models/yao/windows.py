"""Window machinery of Yao et al.'s windowed token mixer (SPEC §7.4 "Windows", Algorithm 1).

A square feature map ``[B, L, L, C]`` (channels-last) is cut into four corner windows G1..G4
(top-left, top-right, bottom-left, bottom-right), each ``[B, ws, ws, C]``:

- ``quadrant``: non-overlapping, ws = L/2 (needs an even L; stage 3 of the 32×32 network runs L = 2);
- ``dilated``: overlapping corner crops, ws = M = 3L/4, overlap w_o = 2M − L = L/2 (needs L % 4 == 0;
  for L ≡ 2 (mod 4) the official code misaligns the windows, so it is refused here).

:func:`condense` is the inverse: the weighted condense of Algorithm 1 (every pixel the mean of the
windows that cover it: corners weight 1, edge bands the mean of 2, the centre [L/4, 3L/4)² the mean
of 4); for quadrant windows it is the plain recompose (concatenation). :func:`region_threshold`
sets every condensed value above Th_R to 1 ("median spikes" {.25, .5, .75} → 1).

All functions are vectorised (four slices, no loop over pixels) and differentiable: partition and
condense are linear; region_threshold passes the gradient where it keeps the value and gives 0
where it writes 1.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from spikeforge.registry import lookup_in

__all__ = ["WINDOW_KINDS", "condense", "partition", "region_threshold", "window_size"]


def _quadrant(L: int) -> tuple[int, int]:
    if L < 2 or L % 2:
        raise ValueError(f"quadrant windows need an even map side L >= 2, got L={L}")
    return L // 2, 0


def _dilated(L: int) -> tuple[int, int]:
    if L < 4 or L % 4:
        raise ValueError(f"dilated windows need a map side L divisible by 4 (M = 3L/4, w_o = 2M - L), got L={L}")
    M = 3 * L // 4
    return M, 2 * M - L


#: window kind name -> ``fn(L) -> (ws, w_o)``: window side and overlap (pixels) for a map side L
WINDOW_KINDS: dict[str, Callable[[int], tuple[int, int]]] = {"quadrant": _quadrant, "dilated": _dilated}


def window_size(L: int, kind: str) -> tuple[int, int]:
    """``(ws, w_o)``: window side and overlap in pixels of the ``kind`` windows of an L×L map.

    Raises:
        ValueError: unknown ``kind``, or an L the kind cannot split (odd L; L % 4 != 0 for dilated).
    """
    return lookup_in("window kind", WINDOW_KINDS, kind)(int(L))


def _side(x: Tensor, who: str) -> int:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != x.shape[2]:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{who}: expected a square channels-last map [B, L, L, C], got {got}")
    return int(x.shape[1])


def partition(x: Tensor, kind: str) -> Tensor:
    """Cut a map into its four windows G1 (top-left), G2 (top-right), G3 (bottom-left), G4 (bottom-right).

    Args:
        x: ``[B, L, L, C]`` channels-last map.
        kind: ``"quadrant"`` or ``"dilated"``.

    Returns:
        ``[4, B, ws, ws, C]``, windows stacked in the order G1..G4 (G_k = ``out[k-1]``).
    """
    L = _side(x, "partition")
    ws, _ = window_size(L, kind)
    lo = L - ws
    top, bottom = x[:, :ws], x[:, lo:]
    return torch.stack([top[:, :, :ws], top[:, :, lo:], bottom[:, :, :ws], bottom[:, :, lo:]])


def _merge(a: Tensor, b: Tensor, dim: int, overlap: int) -> Tensor:
    """Join two windows along ``dim``: ``a``'s own part, the mean of the ``overlap`` shared pixels, ``b``'s own part."""
    keep = a.shape[dim] - overlap
    if overlap == 0:
        return torch.cat([a, b], dim)
    shared = (a.narrow(dim, keep, overlap) + b.narrow(dim, 0, overlap)) / 2
    return torch.cat([a.narrow(dim, 0, keep), shared, b.narrow(dim, overlap, b.shape[dim] - overlap)], dim)


def condense(windows: Tensor, L: int, kind: str) -> Tensor:
    """Weighted condense (Algorithm 1; plain recompose for quadrant windows): windows → one map.

    G12 = merge(G1, G2) along W, G34 = merge(G3, G4) along W, G = merge(G12, G34) along H, where merge
    keeps each side's own pixels and averages the w_o shared ones (the code's ``(G1 + G2)/2``).

    Args:
        windows: ``[4, B, ws, ws, C]`` (G1..G4 as :func:`partition` returns them).
        L: side of the map they came from.
        kind: ``"quadrant"`` or ``"dilated"``.

    Returns:
        ``[B, L, L, C]``; ``condense(partition(x, k), L, k) == x`` exactly.
    """
    ws, w_o = window_size(L, kind)
    if not isinstance(windows, Tensor) or windows.dim() != 5 or windows.shape[0] != 4 \
            or windows.shape[2] != ws or windows.shape[3] != ws:
        got = tuple(windows.shape) if isinstance(windows, Tensor) else type(windows).__name__
        raise ValueError(f"condense: expected windows [4, B, {ws}, {ws}, C] of {kind} windows for L={L}, got {got}")
    g1, g2, g3, g4 = windows.unbind(0)
    return _merge(_merge(g1, g2, 2, w_o), _merge(g3, g4, 2, w_o), 1, w_o)


def region_threshold(x: Tensor, threshold: float | None) -> Tensor:
    """Th_R: values above ``threshold`` become 1, the rest pass (``None`` = off).

    Paper: Th_R = 0.1; the code's CIFAR-100 CNN file: ``where(x > 0.2, 1, x)``. On condensed spikes
    (values in {0, .25, .5, .75, 1}) both give the OR over the covering windows.

    Args:
        x: any tensor (condensed spikes ``[B, L, L, C]``).
        threshold: Th_R in [0, 1), or None.

    Returns:
        tensor of ``x``'s shape; gradient 1 where the value is kept, 0 where it was set to 1.
    """
    if threshold is None:
        return x
    th = float(threshold)
    if not 0.0 <= th < 1.0:
        raise ValueError(f"region_threshold: threshold must lie in [0, 1) or be None, got {threshold}")
    return torch.where(x > th, torch.ones_like(x), x)
