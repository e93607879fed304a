"""Input encoding of Yao et al.'s spiking cells (SPEC §7.4): ``ENCODERS`` (name -> class).

Every cell call turns its real-valued window tokens into binary spikes x_b before the LSTM/conv:

- ``bernoulli`` (the code's): x_b = 1[x > U], U ~ U[0, 1) drawn afresh at every call, also at eval
  (from the given ``torch.Generator``, else the global RNG — the encoder keeps no state of its own);
- ``threshold`` (deterministic): x_b = 1[x > level], level 0.5 by default.

No gradient flows through x_b (a comparison), as in the code.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from spikeforge.registry import build_from

__all__ = ["ENCODERS", "BernoulliEncoder", "Encoder", "ThresholdEncoder", "get_encoder"]


class Encoder:
    """Base class: ``encoder(x) -> spikes`` of ``x``'s shape and dtype, values in {0, 1}, no gradient."""

    name = ""

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}()"


class BernoulliEncoder(Encoder):
    """x_b = 1[x > U], U ~ U[0, 1) per element and call. Args: generator: optional ``torch.Generator``."""

    name = "bernoulli"

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, x: Tensor) -> Tensor:
        u = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)
        return (x.detach() > u).to(x.dtype)


class ThresholdEncoder(Encoder):
    """x_b = 1[x > level]. Args: level: threshold, default 0.5 (the Bernoulli draw's mean)."""

    name = "threshold"

    def __init__(self, level: float = 0.5) -> None:
        self.level = float(level)

    def __call__(self, x: Tensor) -> Tensor:
        return (x.detach() > self.level).to(x.dtype)

    def __repr__(self) -> str:
        return f"threshold(level={self.level:g})"


#: encoder name -> class
ENCODERS: dict[str, type[Encoder]] = {"bernoulli": BernoulliEncoder, "threshold": ThresholdEncoder}


def get_encoder(spec: str | Mapping[str, Any] | Encoder) -> Encoder:
    """An encoder from a name, a mapping ``{"name": ..., **kw}`` or an instance."""
    return build_from("encoder", ENCODERS, spec)
