"""Mixed precision (``train.amp``): bf16 autocast on CPU or GPU, fp16 autocast with a GradScaler on GPU."""
from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import torch

__all__ = ["AMP_DTYPES", "autocast", "grad_scaler"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _dtype(amp: str | None, device: torch.device) -> torch.dtype | None:
    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise ValueError(f"train.amp must be one of {', '.join(AMP_DTYPES)} or null, got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("train.amp='fp16' needs a CUDA device (fp16 autocast with a GradScaler); use --amp bf16 on CPU")
    return AMP_DTYPES[amp]


def autocast(amp: str | None, device: torch.device) -> AbstractContextManager:
    """The autocast context of one forward pass (a no-op without ``amp``)."""
    dtype = _dtype(amp, device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def grad_scaler(amp: str | None, device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 only (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device.type, enabled=_dtype(amp, device) is torch.float16)
