"""What the no-grad window pass of every kernel shares: its state, its checks and the bit layout.

Under the one-step methods (``ssf``/``dsr``) a spiking layer runs its exact dynamics forward without
autograd over ``[T, B, ...]``, one window of n time steps at a time. :meth:`Kernel.fire_window
<spikeforge.neuron.kernels.base.Kernel.fire_window>` does one window in one pass: for each step t

    X'[t] = X[t]·a[c] + b[c]           (BN's affine on load, c = (j div inner) mod C; else X' = X)
    H[t] = (λ·V[t-1] + κ·X'[t]) + c0,  c0 = (1 − λ)·v_rest
    S[t] = Θ(H[t] − r·V_th)            (> when ``strict``)
    V[t] = reset of H[t] by S[t]       (:mod:`spikeforge.neuron.kernels.base`)
    Σx += w[t]·X'[t],  Σs += w[t]·S[t],  bits[t] = S[t] packed eight to a byte

every product rounded on its own (no fused multiply-add), so the spikes equal the ``torch`` kernel's
over the concatenated windows bit for bit. Bit layout: value j of a step is bit (j mod 8) of byte
(j div 8); the bits past N in the last byte are 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["Affine", "WindowState", "WindowArgs", "prepare_window", "affine_channels"]

COMPUTE_DTYPES = (torch.float32, torch.float64)


class Affine(NamedTuple):
    """BatchNorm's affine applied to a window on load: ``x'[t, j] = x[t, j]·scale[c] + shift[c]``,
    ``c = (j div inner) mod C`` (each step laid out ``[B, C, inner]``)."""

    scale: Tensor  #: ``[C]``
    shift: Tensor  #: ``[C]``
    inner: int  #: values per channel and sample (H·W for a conv layer, 1 for a linear one)


@dataclass
class WindowState:
    """What a layer carries from one window to the next, all ``[N]`` in the compute dtype, updated in place.

    Attributes:
        v: membrane potential after the last step's reset (v_rest before the first window).
        input_sum: Σ_t w[t]·X'[t] over the steps done so far.
        spike_sum: Σ_t w[t]·S[t] over the steps done so far.
    """

    v: Tensor
    input_sum: Tensor
    spike_sum: Tensor

    @classmethod
    def start(cls, numel: int, v_rest: float, dtype: torch.dtype, device: torch.device | str) -> "WindowState":
        """The state before the first window: ``v`` at ``v_rest``, both sums 0."""
        return cls(v=torch.full((numel,), v_rest, dtype=dtype, device=device),
                   input_sum=torch.zeros(numel, dtype=dtype, device=device),
                   spike_sum=torch.zeros(numel, dtype=dtype, device=device))


class WindowArgs(NamedTuple):
    """The checked arguments of one window, in the compute dtype (what an implementation runs on)."""

    x: Tensor  #: ``[n, N]`` contiguous, the input dtype (float32/float64/float16/bfloat16)
    weights: Tensor  #: ``[n]``
    decay: Tensor  #: 0-dim λ
    gain: Tensor  #: 0-dim κ
    vth: Tensor  #: 0-dim V_th
    affine: Affine | None  #: scale, shift ``[C]`` contiguous


def prepare_window(x: Tensor, state: WindowState, weights: Tensor, decay: Tensor, gain: Tensor, vth: Tensor,
                   bits: Tensor, affine: tuple[Tensor, Tensor, int] | None) -> WindowArgs:
    """Check the arguments of :meth:`Kernel.fire_window` (shapes and dtypes only: no host sync) and bring the
    parameters to the compute dtype.

    Raises:
        TypeError: a non-floating ``x``, state tensors not in the compute dtype, ``bits`` not uint8.
        ValueError: a shape, device or layout that does not fit ``x`` ``[n, N]``.
    """
    if not x.is_floating_point() or x.dim() != 2:
        raise TypeError(f"fire_window: x must be a floating [n, N] tensor, got {x.dtype} of shape {tuple(x.shape)}")
    n, numel = x.shape
    compute = x.dtype if x.dtype in COMPUTE_DTYPES else torch.float32
    for name in ("v", "input_sum", "spike_sum"):
        t = getattr(state, name)
        if t.dtype != compute:
            raise TypeError(f"fire_window: state.{name} must be in the compute dtype {compute}, got {t.dtype}")
        if t.shape != (numel,) or t.device != x.device or not t.is_contiguous():
            raise ValueError(f"fire_window: state.{name} must be a contiguous [N] = [{numel}] tensor on {x.device}, "
                             f"got {tuple(t.shape)} on {t.device}")
    if weights.shape != (n,):
        raise ValueError(f"fire_window: weights must be [n] = [{n}], got {tuple(weights.shape)}")
    if bits.dtype != torch.uint8:
        raise TypeError(f"fire_window: bits must be uint8, got {bits.dtype}")
    if bits.shape != (n, -(-numel // 8)) or bits.device != x.device or (bits.shape[1] > 1 and bits.stride(1) != 1):
        raise ValueError(f"fire_window: bits must be [n, ceil(N/8)] = [{n}, {-(-numel // 8)}] with contiguous rows "
                         f"on {x.device}, got {tuple(bits.shape)} (strides {bits.stride()}) on {bits.device}")
    params = [p.detach().to(device=x.device, dtype=compute).reshape(()) for p in (decay, gain, vth)]
    if affine is not None:
        scale, shift, inner = affine
        channels = scale.numel()
        if shift.numel() != channels or inner < 1 or channels < 1 or numel % (channels * inner):
            raise ValueError(f"fire_window: affine must be (scale [C], shift [C], inner >= 1) with N divisible by "
                             f"C·inner; got C={channels}, shift of {shift.numel()}, inner={inner}, N={numel}")
        affine = Affine(*(a.detach().to(device=x.device, dtype=compute).reshape(-1).contiguous()
                          for a in (scale, shift)), int(inner))
    return WindowArgs(x.contiguous(), weights.detach().to(device=x.device, dtype=compute), *params, affine)


def affine_channels(affine: Affine, x: Tensor) -> Tensor:
    """``x·scale[c] + shift[c]`` of a window ``x`` ``[n, N]`` in torch ops (product rounded, then the sum)."""
    n, channels = x.shape[0], affine.scale.numel()
    shaped = x.reshape(n, -1, channels, affine.inner)
    return (shaped * affine.scale[:, None] + affine.shift[:, None]).reshape(x.shape)
