"""Surrogate gradients: a Heaviside forward with a hand-written smooth derivative (SPEC §3).

Every surrogate fires with Θ(x) = 1[x >= 0] (or 1[x > 0] when ``strict``) on ``x = H - V_th``
and back-propagates ``σ'(x)``, the slope of its :meth:`Surrogate.primitive`.

One owner for the derivative's constants: :meth:`Surrogate.kernel_constants` returns ``(a, b)``, computed
here once in double; :meth:`Surrogate.derivative` (the ``torch`` reference) and both fused kernels (C++
``cpu_kernel.cpp``, Triton ``triton_kernel.py``, which receive ``kernel_id, a, b`` through the custom ops of
:mod:`spikeforge.neuron.kernels.fused`) evaluate the formula :data:`KERNEL_DERIVATIVES` names for
:attr:`Surrogate.kernel_id` with those same two numbers. No kernel derives a constant from ``alpha``.

Registry: ``SURROGATES`` (``get(name, **kw)``): ``atan``, ``sigmoid``, ``rect``, ``triangle``, ``const``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from spikeforge.registry import Registry

__all__ = ["Surrogate", "ATan", "Sigmoid", "Rect", "Triangle", "Const", "SURROGATES", "KERNEL_DERIVATIVES", "get",
           "heaviside"]

SURROGATES: Registry["Surrogate"] = Registry("surrogate")

#: kernel_id -> σ'(d) as every fused kernel evaluates it, d = H − fire_ratio·V_th, (a, b) the surrogate's
#: :meth:`Surrogate.kernel_constants` (rounded once to the compute dtype). The C++ and Triton switches on
#: kernel_id implement exactly these formulas; a new id needs a branch in both (and a line here).
KERNEL_DERIVATIVES: dict[int, str] = {
    0: "a / (1 + (b·d)²)",
    1: "a·s(a·d)·(1 − s(a·d)), s(z) = 1 / (1 + exp(−z)); b unused",
    2: "1[|d| < a] / b",
    3: "max(0, a − |d|) / b",
    4: "1; a and b unused",
}


def heaviside(x: Tensor, strict: bool = False) -> Tensor:
    """Θ(x) in the dtype of ``x``: 1 where ``x >= 0`` (``x > 0`` when ``strict``), else 0."""
    return (x > 0).to(x.dtype) if strict else (x >= 0).to(x.dtype)


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward, ``grad * σ'(x)`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, surrogate: "Surrogate", strict: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x, strict)

    @staticmethod
    def backward(ctx: Any, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None, None


class Surrogate:
    """Base class: Heaviside forward, ``derivative`` backward, one shape parameter ``alpha``.

    Args:
        alpha: the width/slope parameter of the surrogate (> 0; meaning per subclass).

    Calling ``surrogate(x, strict=False)`` returns spikes ``Θ(x)`` (dtype of ``x``) whose gradient is
    ``σ'(x)``. ``x`` is ``H - V_th`` in threshold units.
    """

    name: ClassVar[str]
    kernel_id: ClassVar[int]  # the formula of KERNEL_DERIVATIVES the fused CPU/Triton kernels evaluate
    default_alpha: ClassVar[float] = 1.0
    param_name: ClassVar[str] = "alpha"

    def __init__(self, alpha: float | None = None) -> None:
        alpha = self.default_alpha if alpha is None else float(alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"surrogate {self.name!r}: {self.param_name} must be a finite number > 0, got {alpha}")
        self.alpha = alpha

    def kernel_constants(self) -> tuple[float, float]:
        """``(a, b)``: the two constants of the derivative formula ``KERNEL_DERIVATIVES[kernel_id]``, in double.

        The single source of these numbers: :meth:`derivative` uses them and the fused kernels receive them
        as they are (an unused one is 0.0), so their order and meaning are defined here and nowhere else.
        """
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:
        """σ'(x), the surrogate derivative used in backward."""
        raise NotImplementedError

    def primitive(self, x: Tensor) -> Tensor:
        """The smooth step whose slope is :meth:`derivative` (the test oracle)."""
        raise NotImplementedError

    def __call__(self, x: Tensor, strict: bool = False) -> Tensor:
        return _SurrogateSpike.apply(x, self, strict)

    def __repr__(self) -> str:
        return f"{self.name}({self.param_name}={self.alpha})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.alpha == self.alpha  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.alpha))


@SURROGATES.register("atan")
class ATan(Surrogate):
    """σ'(x) = (α/2) / (1 + (π/2·α·x)²); primitive atan(π/2·α·x)/π + 1/2. Default α = 2 (SEW, PLIF)."""

    name, kernel_id, default_alpha = "atan", 0, 2.0

    def kernel_constants(self) -> tuple[float, float]:
        """a = α/2 (the peak σ'(0)), b = π/2·α (the slope inside the atan)."""
        return self.alpha / 2, math.pi / 2 * self.alpha

    def derivative(self, x: Tensor) -> Tensor:
        a, b = self.kernel_constants()
        return a / (1 + (b * x) ** 2)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


@SURROGATES.register("sigmoid")
class Sigmoid(Surrogate):
    """σ'(x) = α·s(αx)·(1 − s(αx)), s the logistic function; primitive s(αx). Default α = 4."""

    name, kernel_id, default_alpha = "sigmoid", 1, 4.0

    def kernel_constants(self) -> tuple[float, float]:
        """a = α (the slope of the logistic); b unused (0)."""
        return self.alpha, 0.0

    def derivative(self, x: Tensor) -> Tensor:
        a, _ = self.kernel_constants()
        s = torch.sigmoid(a * x)
        return a * s * (1 - s)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)


@SURROGATES.register("rect")
class Rect(Surrogate):
    """Rectangular (STBP/tdBN): σ'(x) = (1/a)·1[|x| < a/2] (strict <); width ``alpha`` = a, default 1."""

    name, kernel_id, default_alpha = "rect", 2, 1.0

    def kernel_constants(self) -> tuple[float, float]:
        """a = α/2 (the half width), b = α (the width: the height is 1/b)."""
        return self.alpha / 2, self.alpha

    def derivative(self, x: Tensor) -> Tensor:
        a, b = self.kernel_constants()
        return (x.abs() < a).to(x.dtype) / b

    def primitive(self, x: Tensor) -> Tensor:
        return torch.clamp(x / self.alpha + 0.5, 0.0, 1.0)


@SURROGATES.register("triangle")
class Triangle(Surrogate):
    """Triangle (TET's ZIF): σ'(x) = (1/γ²)·max(0, γ − |x|); ``alpha`` = γ, default 1."""

    name, kernel_id, default_alpha = "triangle", 3, 1.0

    def kernel_constants(self) -> tuple[float, float]:
        """a = γ (the half width), b = γ² (the normaliser)."""
        return self.alpha, self.alpha * self.alpha

    def derivative(self, x: Tensor) -> Tensor:
        a, b = self.kernel_constants()
        return torch.clamp(a - x.abs(), min=0.0) / b

    def primitive(self, x: Tensor) -> Tensor:
        g = self.alpha
        inside = 0.5 + x / g - x * x.abs() / (2 * g * g)
        return torch.where(x >= g, torch.ones_like(x), torch.where(x <= -g, torch.zeros_like(x), inside))


@SURROGATES.register("const")
class Const(Surrogate):
    """Straight-through: σ'(x) = 1 (SEW Table S3 "Constant 1"); ``alpha`` is unused and must stay 1."""

    name, kernel_id, default_alpha = "const", 4, 1.0

    def kernel_constants(self) -> tuple[float, float]:
        """Both unused (0)."""
        return 0.0, 0.0

    def derivative(self, x: Tensor) -> Tensor:
        return torch.ones_like(x)

    def primitive(self, x: Tensor) -> Tensor:
        return x + 0.5

    def __repr__(self) -> str:
        return "const()"


def get(name: str | Callable[[Tensor], Tensor], **kwargs: Any) -> Surrogate | Callable[[Tensor], Tensor]:
    """The surrogate registered as ``name`` built with ``kwargs`` (e.g. ``get("atan", alpha=2.0)``).

    A callable (a :class:`Surrogate` instance or any ``fn(x) -> spikes``) is returned unchanged.

    Raises:
        ValueError: unknown name (the message lists the registered ones) or a bad parameter.
    """
    return SURROGATES.get(name, **kwargs)
