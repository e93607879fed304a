"""Spiking neurons of the LIF family and the non-spiking readout (SPEC §2).

One step (threshold units, time in steps): charge ``H[t] = λ·V[t-1] + κ·X[t] + (1−λ)·v_rest``,
fire ``S[t] = Θ(H[t] − V_th)``, reset hard ``V = S·v_reset + (1−S)·H`` or soft ``V = H − S·V_th``.
The potential leaks toward ``v_rest`` (= ``v_reset``, or 0 under soft reset), which reproduces
SpikingJelly's ``H = V + (X − (V − V_reset))/τ`` for LIF with ``decay_input=True``.

Modules hold no state between calls: every ``forward(x)`` starts from ``v_init`` or ``v_rest``.

Defaults are the SEW/PLIF papers' presets and differ from SpikingJelly 2.0.0's in two places:
``detach_reset=True`` (SpikingJelly: False) and the surrogate ATan with α = 2 (SpikingJelly's
``IFNode``/``LIFNode`` default to Sigmoid α = 4). V_th = 1, hard reset to 0 and τ = 2 are the same.
``strict`` firing (H > V_th) is off by default, as in SpikingJelly; TET, tdBN and Yao et al. turn it on.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from spikeforge.neuron import surrogate as _surrogate
from spikeforge.neuron.checks import check_sequence
from spikeforge.neuron.grad_rule import GradRule, SurrogateBPTT
from spikeforge.neuron.kernels import KERNELS, NeuronSpec
from spikeforge.neuron.membrane import MembraneRecorder, charge
from spikeforge.streams.dual import straight_through

__all__ = ["BaseNode", "IFNode", "LIFNode", "PLIFNode", "Readout", "check_sequence"]

SurrogateLike = str | Callable[[Tensor], Tensor]


def lif_coefficients(
    tau: float | None, decay_input: bool, decay: float | None, input_gain: float | None
) -> tuple[float, float]:
    """(λ, κ) of a LIF neuron given either ``tau`` (SpikingJelly form) or ``decay``/``input_gain``.

    ``tau`` (steps, >= 1, default 2): λ = 1 − 1/τ, κ = 1/τ if ``decay_input`` else 1.
    ``decay`` (λ in [0, 1]; SSF/TET/tdBN form): κ = ``input_gain`` (default 1).
    """
    if decay is not None:
        if tau is not None:
            raise ValueError(f"LIF: give either tau (got {tau}) or decay (got {decay}), not both")
        decay = float(decay)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"LIF: decay must lie in [0, 1] (the fraction of potential kept per step), got {decay}")
        gain = 1.0 if input_gain is None else float(input_gain)
        if not math.isfinite(gain):
            raise ValueError(f"LIF: input_gain must be finite, got {gain}")
        return decay, gain
    if input_gain is not None:
        raise ValueError("LIF: input_gain goes with decay=...; with tau the gain is 1/tau (decay_input) or 1")
    tau = 2.0 if tau is None else float(tau)
    if not math.isfinite(tau) or tau < 1.0:
        raise ValueError(f"LIF: tau must be a finite number of steps >= 1, got {tau}")
    k = 1.0 / tau
    return 1.0 - k, (k if decay_input else 1.0)


class BaseNode(nn.Module):
    """Shared options and the multi-step forward of every spiking neuron.

    Args:
        v_threshold: firing threshold V_th (potential units), default 1.
        v_reset: potential after a spike, default 0; ``None`` = soft reset (subtract V_th).
        detach_reset: the spike is a constant inside the reset (default True, as SEW/PLIF).
        surrogate_function: a registered surrogate name (``atan``, ``sigmoid``, ``rect``,
            ``triangle``, ``const``), a :class:`~spikeforge.neuron.surrogate.Surrogate`, or any
            callable ``fn(x) -> spikes`` (then only the ``torch`` kernel runs it). Default ATan α=2.
        strict: fire only on H > V_th (TET, tdBN, Yao). Default False (H >= V_th fires).
        return_v: ``forward`` also returns the potential after reset ``[T, B, ...]``.
        backend: a kernel name from ``KERNELS``: ``auto`` (default), ``torch``, ``cpu``, ``triton``.
        learnable_threshold: V_th is a scalar ``nn.Parameter`` of the layer (DSR).
        fire_ratio: r: the neuron fires at r·V_th but resets by V_th (DSR's α; default 1).
        grad_rule: how the layer is differentiated, a :class:`~spikeforge.neuron.grad_rule.GradRule`
            (default :class:`~spikeforge.neuron.grad_rule.SurrogateBPTT`); a training method's
            ``make_neuron`` passes its own. Checked here; shown in ``repr`` when not BPTT.

    Shape:
        x: ``[T, B, ...]`` input current per step; ``v_init``: ``[B, ...]`` (= ``x.shape[1:]``).
        Output: spikes ``[T, B, ...]`` in {0, 1}, dtype of ``x``; with ``return_v`` also ``v`` ``[T, B, ...]``.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = True,
        surrogate_function: SurrogateLike = "atan",
        strict: bool = False,
        return_v: bool = False,
        backend: str = "auto",
        learnable_threshold: bool = False,
        fire_ratio: float = 1.0,
        grad_rule: GradRule | None = None,
    ) -> None:
        super().__init__()
        v_threshold = float(v_threshold)
        if not math.isfinite(v_threshold):
            raise ValueError(f"{type(self).__name__}: v_threshold must be finite, got {v_threshold}")
        if v_reset is not None:
            v_reset = float(v_reset)
            if not math.isfinite(v_reset):
                raise ValueError(f"{type(self).__name__}: v_reset must be finite or None (soft reset), got {v_reset}")
        sg = _surrogate.get(surrogate_function)
        if strict and not isinstance(sg, _surrogate.Surrogate):
            raise ValueError(f"{type(self).__name__}: strict=True needs a registered surrogate; a plain callable decides its own firing")
        KERNELS.lookup(backend)  # unknown names raise here, listing the choices
        fire_ratio = float(fire_ratio)
        if not (math.isfinite(fire_ratio) and fire_ratio > 0):
            raise ValueError(f"{type(self).__name__}: fire_ratio must be a finite number > 0, got {fire_ratio}")
        self.spec = NeuronSpec(v_reset=v_reset, detach_reset=bool(detach_reset), strict=bool(strict), surrogate=sg,
                               fire_ratio=fire_ratio)
        self.return_v = bool(return_v)
        self.backend = backend
        #: where to add membrane statistics, set only inside :func:`spikeforge.neuron.membrane.record_membrane`
        self.membrane_sink: MembraneRecorder | None = None
        self.learnable_threshold = bool(learnable_threshold)
        if self.learnable_threshold:
            self.v_threshold = nn.Parameter(torch.tensor(v_threshold))
        else:
            self.v_threshold = v_threshold
        if grad_rule is not None and not isinstance(grad_rule, GradRule):
            raise TypeError(f"{type(self).__name__}: grad_rule must be a GradRule, got {type(grad_rule).__name__}")
        #: how this layer is differentiated (given at construction; see :mod:`spikeforge.neuron.grad_rule`)
        self.grad_rule: GradRule = SurrogateBPTT() if grad_rule is None else grad_rule
        self.grad_rule.check(self)

    @property
    def v_reset(self) -> float | None:
        return self.spec.v_reset

    @property
    def surrogate_function(self) -> Callable[[Tensor], Tensor]:
        return self.spec.surrogate

    def coefficients(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """(λ, κ) as 0-dim tensors of ``like``'s dtype and device."""
        raise NotImplementedError

    def threshold(self, like: Tensor) -> Tensor:
        """V_th as a 0-dim tensor of ``like``'s dtype and device (differentiable when learnable).

        A fixed V_th is filled on the device (``torch.full``: no host-to-device copy, so no host
        synchronisation in a training step); a learnable one is the parameter cast to ``like``'s dtype."""
        if isinstance(self.v_threshold, Tensor):
            return self.v_threshold.to(device=like.device, dtype=like.dtype)
        return torch.full((), self.v_threshold, dtype=like.dtype, device=like.device)

    def check_v_init(self, x: Tensor, v_init: Tensor | None) -> None:
        if v_init is None:
            return
        if not isinstance(v_init, Tensor):
            raise TypeError(f"{type(self).__name__}: v_init must be a Tensor, got {type(v_init).__name__}")
        if tuple(v_init.shape) != tuple(x.shape[1:]):
            raise ValueError(
                f"{type(self).__name__}: v_init must have the shape of one step [B, ...] = {tuple(x.shape[1:])}, "
                f"got {tuple(v_init.shape)}"
            )

    def forward(self, x: Tensor, v_init: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """x ``[T, B, ...]`` -> spikes ``[T, B, ...]`` (and ``v`` when ``return_v``); starts from ``v_init`` or v_rest.

        The node's :attr:`grad_rule` runs it: the same spike trains under every spec, its own backward.
        """
        return self.grad_rule(self, x, v_init)

    def clamp_parameters(self) -> None:
        """Bring the parameters into their range before a forward (in place; none here, DSR's V_th bound)."""

    def spike_output(self, spikes: Tensor, like: Tensor) -> Tensor:
        """What the layer emits for its spikes ``[T, B, ...]`` in {0, 1}: the spikes (DSR: spikes × V_th or V_th/Δt)."""
        return spikes

    def charge(self, x: Tensor, v: Tensor, v_init: Tensor | None = None) -> Tensor:
        """H ``[T, B, ...]`` (after charge, before reset) from the input and the potentials after reset."""
        decay, gain = self.coefficients(x)
        return charge(x, v, v_init, decay, gain, self.spec.v_rest)

    def run_kernel(self, x: Tensor, v_init: Tensor | None = None, return_v: bool = False) -> tuple[Tensor, Tensor | None]:
        """Validate, then run the kernel: ``(spikes [T, B, ...], v [T, B, ...] or None)``."""
        check_sequence(x, type(self).__name__)
        self.check_v_init(x, v_init)
        if v_init is not None:
            v_init = v_init.to(x.dtype)
        decay, gain = self.coefficients(x)
        return KERNELS.get(self.backend)(x, v_init, decay, gain, self.threshold(x), self.spec, return_v)

    def _charge_repr(self) -> list[str]:
        return []

    def extra_repr(self) -> str:
        parts = self._charge_repr()
        vth = self.v_threshold if isinstance(self.v_threshold, float) else float(self.v_threshold.detach())
        if vth != 1.0:
            parts.append(f"v_threshold={vth:g}")
        if self.spec.v_reset != 0.0:
            parts.append(f"v_reset={self.spec.v_reset}")
        if not self.spec.detach_reset:
            parts.append("detach_reset=False")
        if self.spec.strict:
            parts.append("strict=True")
        if self.return_v:
            parts.append("return_v=True")
        if self.learnable_threshold:
            parts.append("learnable_threshold=True")
        if self.spec.fire_ratio != 1.0:
            parts.append(f"fire_ratio={self.spec.fire_ratio:g}")
        return ", ".join(parts + self._kernel_repr())

    def _kernel_repr(self) -> list[str]:
        """The trailing ``repr`` options of every node: surrogate, backend, and the grad rule when not BPTT."""
        parts = [f"surrogate={self.spec.surrogate!r}", f"backend={self.backend!r}"]
        return parts if isinstance(self.grad_rule, SurrogateBPTT) else parts + [f"grad_rule={self.grad_rule!r}"]


class IFNode(BaseNode):
    """Integrate-and-fire: H[t] = V[t-1] + X[t] (λ = κ = 1). Options as :class:`BaseNode`.

    Example:
        >>> IFNode()(torch.tensor([[0.4], [0.4], [0.4], [1.0]])).flatten().tolist()
        [0.0, 0.0, 1.0, 1.0]
    """

    def coefficients(self, like: Tensor) -> tuple[Tensor, Tensor]:
        one = torch.ones((), dtype=like.dtype, device=like.device)
        return one, one


class LIFNode(BaseNode):
    """Leaky integrate-and-fire with a fixed time constant.

    SpikingJelly form (``tau``, steps, default 2): ``decay_input=True``: H = V + (X − (V − v_rest))/τ;
    ``decay_input=False``: H = V − (V − v_rest)/τ + X. Decay form (SSF, TET, tdBN, RecDis):
    ``decay=λ`` (and ``input_gain=κ``, default 1): H = λ·V + κ·X (+ (1−λ)·v_rest).

    Args:
        tau: membrane time constant in steps (>= 1); exclusive with ``decay``.
        decay_input: whether the input is scaled by 1/τ (SpikingJelly's option).
        decay: λ in [0, 1], the fraction of potential kept per step.
        input_gain: κ, the input scale of the decay form.
        **kwargs: node options of :class:`BaseNode` (``v_threshold=1``, ``v_reset=0`` or None for a soft
            reset, ``detach_reset``, ``surrogate_function="atan"``, ``strict``, ``return_v``, ``backend``).

    Shape:
        x: ``[T, B, ...]`` input current per step (threshold units); output: spikes ``[T, B, ...]`` in {0, 1},
        dtype of ``x``; every call starts from ``v_init`` or 0 (no state kept between calls).

    Example:
        >>> spikes = LIFNode(tau=2.0)(2.0 * torch.rand(8, 32, 128))  # [T=8, B=32, 128]
        >>> spikes.shape, bool(spikes.sum() > 0)
        (torch.Size([8, 32, 128]), True)
    """

    def __init__(
        self,
        tau: float | None = None,
        decay_input: bool = True,
        *,
        decay: float | None = None,
        input_gain: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.tau, self.decay_input = tau, decay_input
        self.decay, self.input_gain = lif_coefficients(tau, decay_input, decay, input_gain)
        self._given_decay = decay is not None

    def coefficients(self, like: Tensor) -> tuple[Tensor, Tensor]:
        # filled on the device: no host-to-device copy (no host synchronisation per call)
        return (torch.full((), self.decay, dtype=like.dtype, device=like.device),
                torch.full((), self.input_gain, dtype=like.dtype, device=like.device))

    def _charge_repr(self) -> list[str]:
        if self._given_decay:
            return [f"decay={self.decay:g}"] + ([f"input_gain={self.input_gain:g}"] if self.input_gain != 1.0 else [])
        return [f"tau={1.0 / (1.0 - self.decay) if self.decay < 1 else float('inf'):g}"] + (
            [] if self.decay_input else ["decay_input=False"])


class PLIFNode(BaseNode):
    """Parametric LIF (Fang et al., ICCV 2021): one learnable scalar ``w`` per layer.

    1/τ = k = sigmoid(w), w0 = −ln(τ0 − 1); λ = 1 − k, κ = k (``decay_input=True``) or 1.

    Args:
        init_tau: τ0 in steps, > 1 (default 2: w0 = 0).
        decay_input: as :class:`LIFNode`.
        **kwargs: node options of :class:`BaseNode`.

    Attributes:
        w: ``[]`` parameter, initialised to −ln(τ0 − 1).
    """

    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        init_tau = float(init_tau)
        if not math.isfinite(init_tau) or init_tau <= 1.0:
            raise ValueError(f"PLIFNode: init_tau must be a finite number of steps > 1, got {init_tau}")
        self.init_tau, self.decay_input = init_tau, decay_input
        self.w = nn.Parameter(torch.empty(()))
        self.reset_parameters()
        if not self.grad_rule.trains_decay:
            warnings.warn(f"{self.grad_rule.name}: PLIF's w has no temporal path under {self.grad_rule.name}; it is frozen",
                          UserWarning, stacklevel=2)
            self.w.requires_grad_(False)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.w.fill_(-math.log(self.init_tau - 1.0))

    def coefficients(self, like: Tensor) -> tuple[Tensor, Tensor]:
        k = torch.sigmoid(self.w.to(like.dtype))
        return 1 - k, (k if self.decay_input else torch.ones_like(k))

    def _charge_repr(self) -> list[str]:
        return [f"init_tau={self.init_tau:g}"] + ([] if self.decay_input else ["decay_input=False"])


class Readout(nn.Module):
    """Non-spiking output layer: integrates without firing or resetting (SPEC §2, SSF's output layer).

    u[t] = λ·u[t-1] + κ·X[t], u[-1] = 0 (or ``v_init``). Charge given as for :class:`LIFNode`
    (``tau``/``decay_input`` or ``decay``/``input_gain``); default λ = κ = 1 (pure integration).

    Args:
        output: ``"sequence"`` returns u ``[T, B, ...]``; ``"final"`` returns u[T-1] ``[B, ...]``.

    Shape:
        x: ``[T, B, ...]``; v_init: ``[B, ...]``. Output as ``output`` says, dtype of ``x``.
    """

    outputs = ("sequence", "final")

    def __init__(
        self,
        tau: float | None = None,
        decay_input: bool = True,
        *,
        decay: float | None = None,
        input_gain: float | None = None,
        output: str = "sequence",
    ) -> None:
        super().__init__()
        if output not in self.outputs:
            raise ValueError(f"Readout: output must be one of {', '.join(self.outputs)}, got {output!r}")
        if tau is None and decay is None:
            decay = 1.0
        self.decay, self.input_gain = lif_coefficients(tau, decay_input, decay, input_gain)
        self.output = output

    def cumulative_gains(self, T: int, like: Tensor) -> Tensor:
        """c_t = Σ_{s<=t} λ^(t−s)·κ = κ·Σ_{j<=t} λ^j, t = 0..T−1: ∂u[t]/∂(a constant input) (SPEC §4 "Output
        layer"). ``[T]`` in ``like``'s dtype, computed on its device in float64 (no host-to-device copy)."""
        lam = torch.full((), self.decay, dtype=torch.float64, device=like.device)
        powers = lam ** torch.arange(T, dtype=torch.float64, device=like.device)  # λ^j (0^0 = 1)
        return (powers.cumsum(0) * self.input_gain).to(like.dtype)

    def forward(self, x: Tensor, v_init: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor) and hasattr(x, "flow"):
            return self._forward_dual(x, v_init)
        check_sequence(x, "Readout")
        if v_init is not None and tuple(v_init.shape) != tuple(x.shape[1:]):
            raise ValueError(f"Readout: v_init must have shape {tuple(x.shape[1:])}, got {tuple(v_init.shape)}")
        u = torch.zeros_like(x[0]) if v_init is None else v_init.to(x.dtype)
        seq = []
        for t in range(x.shape[0]):
            u = self.decay * u + self.input_gain * x[t]
            seq.append(u)
        return torch.stack(seq) if self.output == "sequence" else u

    def _forward_dual(self, x, v_init: Tensor | None) -> Tensor:
        """One-step methods: u[t] takes its value from ``seq`` and its gradient c_t·∂/∂flow (SPEC §4)."""
        with torch.no_grad():
            u_seq = self.forward(x.materialize(), None if v_init is None else v_init.detach())
        c = self.cumulative_gains(x.T, x.flow)
        if self.output == "final":
            path = c[-1] * x.flow + (0 if v_init is None else self.decay ** x.T * v_init)
            return straight_through(u_seq, path)
        path = c.reshape(-1, *([1] * x.flow.dim())) * x.flow.unsqueeze(0)
        return straight_through(u_seq, path)

    def extra_repr(self) -> str:
        return f"decay={self.decay:g}, input_gain={self.input_gain:g}, output={self.output!r}"
