"""Low-bit weights: per-layer symmetric uniform quantization of conv/linear weights.

DSR supp. Table S4 (SPEC §5) quantizes the weights of a trained PreAct-ResNet-18 to 8 and 4 bits with a
straight-through estimator. For ``b`` bits and one layer's weight ``W``:

    s = max|W| / (2^(b−1) − 1),    Q(W) = s · clamp(round(W / s), −(2^(b−1) − 1), 2^(b−1) − 1)

so ``Q(W)`` takes at most 2^b − 1 distinct values (the grid is symmetric, zero included), no weight is
clipped, and |Q(W) − W| <= s/2 everywhere. Biases, BN and thresholds stay in full precision.

- :func:`quantize_weights` — post-training, in place.
- :func:`prepare_qat` — quantization-aware training: the weight of every conv/linear becomes
  ``Q(W)`` through ``torch.nn.utils.parametrize``; the backward is the straight-through estimator
  (∂Q/∂W := 1; s is a constant of the step). :func:`finish_qat` bakes ``Q(W)`` into plain weights.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "FakeQuantize",
    "check_bits",
    "fake_quantize",
    "finish_qat",
    "prepare_qat",
    "quantizable_layers",
    "quantize_tensor",
    "quantize_weights",
]

MIN_BITS, MAX_BITS = 2, 16
_QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_bits(bits: int) -> int:
    """``bits`` as an int in [2, 16]; anything else raises naming the argument."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    return bits


def quantize_tensor(w: Tensor, bits: int) -> tuple[Tensor, float]:
    """``(Q(w), s)``: ``w`` on the symmetric ``bits``-bit grid of step ``s`` (same shape and dtype), no gradient.

    An all-zero ``w`` returns zeros and s = 0.
    """
    levels = 2 ** (check_bits(bits) - 1) - 1
    with torch.no_grad():
        peak = w.detach().abs().max() if w.numel() else w.new_zeros(())
        if float(peak) == 0.0:
            return torch.zeros_like(w), 0.0
        scale = peak / levels
        q = torch.clamp(torch.round(w.detach() / scale), -levels, levels) * scale
    return q, float(scale)


def fake_quantize(w: Tensor, bits: int) -> Tensor:
    """``Q(w)`` in value, identity in gradient (straight-through estimator): ``w + (Q(w) − w).detach()``."""
    q, _ = quantize_tensor(w, bits)
    return w + (q - w).detach()


class FakeQuantize(nn.Module):
    """A parametrization ``W -> Q(W)`` with the straight-through gradient (for :func:`prepare_qat`)."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = check_bits(bits)

    def forward(self, w: Tensor) -> Tensor:
        return fake_quantize(w, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def quantizable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Named conv/linear modules of ``model`` (those whose weight is quantized)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _QUANTIZABLE)}


def quantize_weights(model: nn.Module, bits: int) -> nn.Module:
    """Post-training quantization: every conv/linear weight of ``model`` replaced by ``Q(W)``, in place.

    Args:
        model: any module; biases, BN parameters and thresholds are left as they are.
        bits: b in 2..16 (DSR supp. Table S4 uses 8 and 4).

    Returns:
        ``model`` (the same object). Raises ``ValueError`` for ``bits`` outside 2..16.
    """
    check_bits(bits)
    for module in quantizable_layers(model).values():
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"quantize_weights: {type(module).__name__} is prepared for QAT; call finish_qat first")
        q, _ = quantize_tensor(module.weight, bits)
        with torch.no_grad():
            module.weight.copy_(q)
    return model


def prepare_qat(model: nn.Module, bits: int) -> nn.Module:
    """Quantization-aware training: register :class:`FakeQuantize` on every conv/linear weight, in place.

    The forward then uses ``Q(W)``; the optimizer updates the full-precision ``W``
    (``<layer>.parametrizations.weight.original`` in the state dict). Returns ``model``.
    """
    check_bits(bits)
    layers = quantizable_layers(model)
    if not layers:
        raise ValueError(f"prepare_qat: {type(model).__name__} has no conv/linear layer to quantize")
    for module in layers.values():
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"prepare_qat: a {type(module).__name__} weight is already parametrized")
        parametrize.register_parametrization(module, "weight", FakeQuantize(bits))
    return model


def finish_qat(model: nn.Module) -> nn.Module:
    """Remove the QAT parametrizations, keeping the quantized weights ``Q(W)`` as plain parameters."""
    for module in quantizable_layers(model).values():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
