"""Training methods (``get_method(name, **kw)``): ``bptt``, ``ssf``, ``dsr`` — same forward, different backward.

Owns ``Method`` (which neurons and head a model gets, how its input enters) and the bptt / ssf / dsr backward
rules. The two-stream machinery the rules use is :mod:`spikeforge.streams`, the neurons :mod:`spikeforge.neuron`.
Imports the core and ``neuron`` only; never ``layers``, ``models`` or anything above them.
"""
from __future__ import annotations

from typing import Any

from spikeforge.methods import bptt as _bptt  # noqa: F401  (registers bptt)
from spikeforge.methods import dsr as _dsr  # noqa: F401  (registers dsr)
from spikeforge.methods import ssf as _ssf  # noqa: F401  (registers ssf)
from spikeforge.methods.base import Method
from spikeforge.streams.dual import Dual
from spikeforge.methods.registry import METHODS

__all__ = ["METHODS", "Method", "Dual", "get_method", "list_methods"]


def get_method(name: str | Method, **kwargs: Any) -> Method:
    """The training method ``name``; a :class:`Method` passes through. Every method runs the same spiking
    forward; they differ in the backward.

    Args:
        name: one of

            - ``"bptt"``: surrogate gradient through time (reverse loop over T; keeps all T steps). No options.
            - ``"ssf"``: stabilized spiking flow, a one-step backward through decay-weighted time averages
              (memory flat in T; needs T >= 2). Options ``faithful=False`` (per-step reading, T x the
              backward), ``slope="one"`` (or ``"clamp"``), ``window_mb=None``, ``store_mb=None``.
            - ``"dsr"``: differentiation on spike representation, a one-step backward through the weighted
              firing rate (needs T >= 2 and IF or soft-reset LIF neurons). Options ``faithful=False``,
              ``exact_vth_grad=False``, ``window_mb=None``, ``store_mb=None``.

            ``window_mb``/``store_mb`` size the time windows of the one-step methods' spiking forward (``None``: by the device)
            (see :class:`~spikeforge.methods.base.Method`).
        **kwargs: the options above; an unknown one raises naming it.

    Shape:
        Under ``bptt`` layers pass tensors ``[T, B, ...]``; under ``ssf``/``dsr`` a ``Dual(seq [T, B, ...], flow [B, ...])``.

    Example:
        >>> get_method("ssf", store_mb=0)
        ssf()
    """
    if isinstance(name, Method):
        if kwargs:
            raise ValueError(f"get_method: options {sorted(kwargs)} need a method name, got the instance {name!r}")
        return name
    return METHODS.build(name, **kwargs)


def list_methods() -> list[str]:
    return METHODS.names()
