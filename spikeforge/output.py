"""What a model returns to losses that need more than logits (SPEC §10).

Imports nothing of spikeforge: losses and tools read it without loading the model zoo."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from torch import Tensor

__all__ = ["ModelOutput"]


class ModelOutput(NamedTuple):
    """``logits`` ``[B, K]``; ``steps`` ``[T, B, K]`` per-step outputs or None; ``stats`` extra values by name."""

    logits: Tensor
    steps: Optional[Tensor] = None
    stats: dict[str, Any] = {}
