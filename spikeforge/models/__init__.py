"""Model zoo: ``create_model(name, num_classes=None, method="bptt", **kw)`` and ``list_models()``."""
from __future__ import annotations

from typing import Any

from torch import nn

from spikeforge.models.output import ModelOutput
from spikeforge.models.registry import MODELS

from spikeforge.models import digits as _digits  # noqa: E402,F401  (registers "digits_snn")

__all__ = ["MODELS", "ModelOutput", "create_model", "list_models"]


def create_model(name: str, num_classes: int | None = None, method: str = "bptt", **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``. Keyword arguments that are None are dropped, so unset
    CLI options never override a model's defaults (timm's habit)."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return MODELS.get(name, method=method, **kwargs)


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)
