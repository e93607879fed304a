"""TET's loss and TET-CE (Deng et al., ICLR 2022; SPEC §6.3, code ``functions.TET_loss``).

L_TET = (1/T)·Σ_t CE(O[t], y) (CE a batch mean); L_MSE = mean over ALL T·B·K elements of (O − φ)²
(not over mean_t O); L = (1 − λ)·L_TET + λ·L_MSE with λ = ``lam`` (1e-3, the parallel script) and
φ = ``phi`` (1.0). ``lam`` is TET's loss weight, never SSF's decay. TET-CE (SDT): CE(mean_t O, y).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from spikeforge.losses import LOSSES
from spikeforge.output import ModelOutput

__all__ = ["TETLoss", "TETCrossEntropy", "per_step_outputs"]


def per_step_outputs(out: ModelOutput | Tensor, who: str) -> Tensor:
    """The per-step outputs ``[T, B, K]`` of ``out``; raises when the model gives none."""
    steps = out.steps if isinstance(out, ModelOutput) else out
    if steps is None:
        raise ValueError(f"{who}: needs per-step outputs [T, B, K], but the model's ModelOutput.steps is None")
    if not isinstance(steps, Tensor) or steps.dim() != 3:
        raise ValueError(f"{who}: expected per-step outputs [T, B, K], got {getattr(steps, 'shape', type(steps).__name__)}")
    return steps


@LOSSES.register("tet")
class TETLoss(nn.Module):
    """(1 − lam)·mean_t CE(O[t], y) + lam·mean((O − phi)²). Args: ``lam`` (1e-3), ``phi`` (1.0)."""

    def __init__(self, lam: float = 1e-3, phi: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= float(lam) <= 1.0:
            raise ValueError(f"tet: lam must lie in [0, 1], got {lam}")
        self.lam, self.phi = float(lam), float(phi)

    def forward(self, out: ModelOutput | Tensor, target: Tensor) -> Tensor:
        steps = per_step_outputs(out, "tet")
        T, B, K = steps.shape
        ce = F.cross_entropy(steps.reshape(T * B, K), target.repeat(T))  # = mean_t of per-step batch means
        if self.lam == 0.0:
            return ce
        return (1 - self.lam) * ce + self.lam * ((steps - self.phi) ** 2).mean()

    def extra_repr(self) -> str:
        return f"lam={self.lam:g}, phi={self.phi:g}"


@LOSSES.register("tet_ce")
class TETCrossEntropy(nn.Module):
    """TET-CE / SDT: CE on the time mean of the per-step outputs (TET code path with ``TET=False``)."""

    def forward(self, out: ModelOutput | Tensor, target: Tensor) -> Tensor:
        if isinstance(out, ModelOutput) and out.steps is None:
            return F.cross_entropy(out.logits, target)
        return F.cross_entropy(per_step_outputs(out, "tet_ce").mean(0), target)
