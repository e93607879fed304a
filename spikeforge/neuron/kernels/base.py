"""What every multi-step neuron kernel shares: the static spec and the kernel interface.

A kernel runs the LIF-family dynamics of SPEC §2 over a whole sequence, one call per layer:

    H[t] = λ·V[t-1] + κ·X[t] + c,      c = (1 − λ)·v_rest   (v_rest = v_reset, or 0 for soft reset)
    S[t] = Θ(H[t] − r·V_th)             (H > r·V_th when ``strict``; r = ``fire_ratio``, 1 but for DSR's α)
    V[t] = S·v_reset + (1 − S)·H[t]     (hard)   |   V[t] = H[t] − S·V_th   (soft)

with V[-1] = ``v_init`` (default v_rest), λ = ``decay``, κ = ``input_gain``. Every kernel evaluates
the charge in exactly this order, ``(λ·V + κ·X) + c``, without fused multiply-add, so spikes agree
bit for bit between kernels. Backward (BPTT with surrogate σ'), with δ[t] = ∂L/∂V[t]:

    ∂L/∂H[t] = g_S[t]·σ'(H[t]−V_th) + δ[t]·∂V[t]/∂H[t]
        hard: ∂V/∂H = (1 − S) + (v_reset − H)·σ'   (the σ' term only without ``detach_reset``)
        soft: ∂V/∂H = 1 − V_th·σ'                  (the σ' term only without ``detach_reset``)
    δ[t-1] = λ·∂L/∂H[t] + g_V[t-1];  ∂L/∂X[t] = κ·∂L/∂H[t];  ∂L/∂v_init = δ[-1]
    ∂L/∂λ = Σ ∂L/∂H[t]·(V[t-1] − v_rest);  ∂L/∂κ = Σ ∂L/∂H[t]·X[t]
    ∂L/∂V_th = Σ −g_S[t]·σ' + δ[t]·∂V[t]/∂V_th
        hard: ∂V/∂V_th = −(v_reset − H)·σ'   soft: ∂V/∂V_th = −S + V_th·σ'  (σ' terms only without detach)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import Tensor

from spikeforge.streams.bits import unpack_bits

if TYPE_CHECKING:
    from spikeforge.neuron.kernels.window import WindowState

__all__ = ["NeuronSpec", "Kernel"]


@dataclass(frozen=True)
class NeuronSpec:
    """The static (non-tensor) options of a spiking layer.

    Args:
        v_reset: potential after a spike (hard reset); ``None`` = soft reset (subtract V_th).
        detach_reset: treat S as a constant inside the reset.
        strict: fire only on H > V_th (TET, tdBN, Yao); default fires on H >= V_th.
        surrogate: a :class:`~spikeforge.neuron.surrogate.Surrogate` or any ``fn(x) -> spikes``.
        fire_ratio: r, the neuron fires at r·V_th but resets by V_th (DSR's α; default 1); every kernel
            runs it (σ' taken at H − r·V_th).
    """

    v_reset: Optional[float]
    detach_reset: bool
    strict: bool
    surrogate: Callable[[Tensor], Tensor]
    fire_ratio: float = 1.0

    @property
    def hard(self) -> bool:
        return self.v_reset is not None

    @property
    def v_rest(self) -> float:
        """Where the membrane starts and leaks to: ``v_reset`` for hard reset, 0 for soft."""
        return 0.0 if self.v_reset is None else float(self.v_reset)


class Kernel:
    """A multi-step neuron implementation. Subclasses are registered in ``KERNELS``.

    ``__call__(x, v_init, decay, input_gain, v_threshold, spec, return_v)``:
        x: ``[T, ...]`` floating input current per step (threshold units).
        v_init: ``[...]`` starting potential (shape ``x.shape[1:]``), or None for v_rest.
        decay, input_gain, v_threshold: 0-dim tensors λ, κ, V_th of x's dtype (may require grad).
        Returns ``(spikes [T, ...] in {0, 1} of x's dtype, v_seq [T, ...] after reset or None)``.
    """

    name: str = ""

    def unavailable(self, x: Tensor, spec: NeuronSpec) -> str | None:
        """Why this kernel cannot run ``x`` under ``spec`` (None when it can)."""
        return None

    def __call__(
        self,
        x: Tensor,
        v_init: Tensor | None,
        decay: Tensor,
        input_gain: Tensor,
        v_threshold: Tensor,
        spec: NeuronSpec,
        return_v: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def fire_window(
        self,
        x: Tensor,
        state: "WindowState",
        weights: Tensor,
        decay: Tensor,
        gain: Tensor,
        vth: Tensor,
        spec: NeuronSpec,
        bits: Tensor,
        affine: "tuple[Tensor, Tensor, int] | None" = None,
    ) -> None:
        """One window of the no-grad forward of the one-step methods, in one pass (:mod:`.window`). Values only:
        call it under ``torch.no_grad()`` (the seq stream does); nothing of it is differentiable.

        Args:
            x: ``[n, N]`` the layer input of n steps, each flattened (N = B·prod(rest)); float32/float64
                (float16/bfloat16 computed in float32).
            state: :class:`~spikeforge.neuron.kernels.window.WindowState`, ``[N]`` each in the compute
                dtype: V carried between windows and the two weighted sums, updated in place.
            weights: ``[n]`` aggregation weights w[t] of these steps.
            decay, gain, vth: 0-dim tensors λ, κ, V_th on x's device (values only; never read on the host).
            spec: reset, strictness, fire ratio and v_rest.
            bits: uint8 ``[n, ⌈N/8⌉]`` (rows of the layer's ``[T, ⌈N/8⌉]``), written with the packed spikes.
            affine: optional ``(scale [C], shift [C], inner)``: X' = X·scale[c] + shift[c] is the neuron's input
                (and what ``input_sum`` adds up), c = (j div inner) mod C.
        """
        raise NotImplementedError

    #: ``unpack(data, n, dtype) -> [k, n]``: the spikes :meth:`fire_window` packed (uint8 ``data`` ``[k, ⌈n/8⌉]``),
    #: back as 0/1 in ``dtype`` (the next layer's). A module-level function (it is kept with the packed spikes,
    #: also across a ``torch.compile`` graph's output): by shifts and masks in torch ops unless a kernel has its own.
    unpack: Callable[[Tensor, int, torch.dtype], Tensor] = staticmethod(unpack_bits)
