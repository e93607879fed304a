"""Losses (SPEC §10): ``get_loss(name, **kw)``; called as ``loss(out, target)``.

``out`` is a :class:`~spikeforge.output.ModelOutput` or logits ``[B, K]`` (``tet``: also the
per-step tensor ``[T, B, K]``); ``target`` ``[B]`` int64. ``ce``, ``mse_onehot`` here; ``tet``,
``tet_ce`` in :mod:`.tet`; ``mpd_ding2019`` (the RecDis stand-in) in :mod:`.mpd`.

Imports the core (``ModelOutput`` from :mod:`spikeforge.output`) and ``neuron`` only; never ``models`` (a loss
reads what a model returns, not the zoo), ``tools``, ``train`` or the commands.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikeforge.output import ModelOutput
from spikeforge.registry import Registry

__all__ = ["LOSSES", "get_loss", "CrossEntropy", "MSEOneHot"]

LOSSES: Registry[nn.Module] = Registry("loss")


def logits_of(out: ModelOutput | Tensor) -> Tensor:
    logits = out.logits if isinstance(out, ModelOutput) else out
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        raise ValueError(f"loss: expected logits [B, K], got {getattr(logits, 'shape', type(logits).__name__)}")
    return logits


@LOSSES.register("ce")
class CrossEntropy(nn.Module):
    """Cross-entropy on the logits (batch mean), optional label smoothing."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, out: ModelOutput | Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits_of(out), target, label_smoothing=self.label_smoothing)


@LOSSES.register("mse_onehot")
class MSEOneHot(nn.Module):
    """Mean squared error between the logits (e.g. PLIF's firing rates of the voting layer) and one-hot targets."""

    def forward(self, out: ModelOutput | Tensor, target: Tensor) -> Tensor:
        logits = logits_of(out)
        return F.mse_loss(logits, F.one_hot(target, logits.shape[1]).to(logits.dtype))


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """The loss registered as ``name`` built with ``kwargs``; unknown names and options raise ValueError."""
    return LOSSES.build(name, **kwargs)


from spikeforge.losses import mpd as _mpd  # noqa: E402,F401  (registers mpd_ding2019)
from spikeforge.losses import tet as _tet  # noqa: E402,F401  (registers tet, tet_ce)
