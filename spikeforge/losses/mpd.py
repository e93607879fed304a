"""``mpd_ding2019``: the stand-in for RecDis-SNN's MPD-Loss (Guo et al., CVPR 2022; SPEC §6.4).

RecDis's own formula could not be read from any source available to us. As the documented stand-in
we ship the distribution loss of Ding et al. (CVPR 2019), whose three problems (degeneration,
saturation, gradient mismatch) RecDis names its own after, applied per channel to the shifted
potential ũ = u − V_th (u after charge, before reset) of every hidden spiking layer:

    d1 = mean_c[(min(2 − μ − σ, 2 + μ − σ))₊²] + mean_c[(σ − 4)₊²],   d2 = mean_c[(μ² − σ²)₊],
    L = task loss + lambda_mpd · mean over layers of (d1 + d2)

with μ_c and biased σ²_c over (T, B, H, W) (σ = √(σ² + 1e-10), as the Ding code). It is NOT RecDis's
exact loss.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikeforge.losses import LOSSES, logits_of
from spikeforge.output import ModelOutput
from spikeforge.neuron.membrane import channel_stats

__all__ = ["membrane_stats", "ding2019_terms", "MPDDing2019"]

EPS = 1e-10


def membrane_stats(u_shifted: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel μ and biased σ² of ũ ``[T, B, C, ...]`` over every axis but C: ``([C], [C])``
    (:func:`spikeforge.neuron.membrane.channel_stats`, what the neurons record)."""
    if u_shifted.dim() < 3:
        raise ValueError(f"membrane_stats: expected ũ [T, B, C, ...], got {tuple(u_shifted.shape)}")
    return channel_stats(u_shifted)


def ding2019_terms(mu: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
    """(d1, d2) of the Ding-2019 distribution loss from per-channel statistics."""
    sigma = torch.sqrt(var + EPS)
    d1 = (torch.clamp(torch.minimum(2 - mu - sigma, 2 + mu - sigma), min=0) ** 2).mean() + \
        (torch.clamp(sigma - 4, min=0) ** 2).mean()
    d2 = torch.clamp(mu ** 2 - (var + EPS), min=0).mean()
    return d1, d2


@LOSSES.register("mpd_ding2019")
class MPDDing2019(nn.Module):
    """CE on the logits + ``lambda_mpd`` · mean over layers of (d1 + d2) — the RecDis STAND-IN (see module doc).

    ``out.stats["membrane"]`` must hold one ``(μ [C], σ² [C])`` pair per hidden spiking layer: a zoo model
    records them when its ``collect_membrane`` is set, which the training engine does for this loss
    (``needs_membrane``). Every spiking layer of the model is counted, the output layer of a head that
    ends in one included.
    """

    needs_membrane = True

    def __init__(self, lambda_mpd: float = 1.0) -> None:
        super().__init__()
        if float(lambda_mpd) < 0:
            raise ValueError(f"mpd_ding2019: lambda_mpd must be >= 0, got {lambda_mpd}")
        self.lambda_mpd = float(lambda_mpd)

    def penalty(self, stats: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        terms = [sum(ding2019_terms(mu, var)) for mu, var in stats]
        return torch.stack(terms).mean()

    def forward(self, out: ModelOutput, target: Tensor) -> Tensor:
        stats = out.stats.get("membrane") if isinstance(out, ModelOutput) else None
        if not stats:
            raise ValueError("mpd_ding2019: needs membrane statistics (ModelOutput.stats['membrane']); "
                             "this model does not record them")
        return F.cross_entropy(logits_of(out), target) + self.lambda_mpd * self.penalty(stats)

    def extra_repr(self) -> str:
        return f"lambda_mpd={self.lambda_mpd:g} (RecDis stand-in: Ding et al. 2019)"
