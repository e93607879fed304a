"""What a training method decides: the neurons a model gets, how inputs enter, which backward runs."""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

from torch import Tensor, nn

import torch

from spikeforge.streams.budget import WindowBudget, device_budget
from spikeforge.streams.dual import Dual, uniform_weights
from spikeforge.streams.lazy import LazySeq
from spikeforge.neuron.factory import make_node
from spikeforge.neuron.grad_rule import GradRule, OneStepRule, SurrogateBPTT

__all__ = ["Method"]


class Method:
    """Base class of ``bptt``, ``ssf`` and ``dsr`` (registered in ``METHODS``).

    Args:
        grad_rule: the backward every neuron of the method gets when it is built
            (:mod:`spikeforge.neuron.grad_rule`); default :class:`~spikeforge.neuron.grad_rule.SurrogateBPTT`.
            A :class:`~spikeforge.neuron.grad_rule.OneStepRule` makes the method one-step.
        window_mb: one-step methods run each layer's spiking forward over windows of time holding at most
            this many MiB of float32 per tensor (:class:`~spikeforge.streams.lazy.LazySeq`), so their memory
            does not grow with T. Values and gradients do not depend on it beyond rounding of the BN
            statistics. ``None`` (default): sized by the device (:func:`~spikeforge.streams.budget.device_budget`:
            4 MiB on the CPU; on CUDA all of T whenever it fits a share of the free memory).
        store_mb: a BN layer, which reads its input twice (statistics, then normalise), keeps the leading
            steps of it that fit this many MiB of float32 and recomputes the rest over windows, the conv
            before it run again. 0 = keep nothing (least memory, about twice the conv work of the forward);
            a larger budget is faster at large T, its memory growing with T up to the budget. ``None``
            (default): sized by the device (64 MiB on the CPU; on CUDA the window budget).

    A model builder calls :meth:`make_neuron` for every spiking layer and :meth:`enter` on its input;
    nothing else in a model depends on the method. The neurons it makes receive the method's
    :attr:`grad_rule` when they are built (:mod:`spikeforge.neuron.grad_rule`).
    """

    name: ClassVar[str]
    min_T: ClassVar[int] = 1

    def __init__(self, grad_rule: GradRule | None = None, window_mb: float | None = None,
                 store_mb: float | None = None) -> None:
        #: the backward the neurons of this method get (one object, shared by every neuron it makes)
        self.grad_rule: GradRule = SurrogateBPTT() if grad_rule is None else grad_rule
        if window_mb is not None and not (float(window_mb) > 0):
            raise ValueError(f"{type(self).__name__}: window_mb must be > 0 or None, got {window_mb!r}")
        if store_mb is not None and not (float(store_mb) >= 0):
            raise ValueError(f"{type(self).__name__}: store_mb must be >= 0 or None, got {store_mb!r}")
        self.window_bytes = None if window_mb is None else max(1, int(float(window_mb) * 2**20))
        self.store_bytes = None if store_mb is None else int(float(store_mb) * 2**20)
        self._device_budgets: dict[torch.device, WindowBudget] = {}

    def window_budget(self, device: torch.device) -> WindowBudget:
        """The windows for ``device``: the explicit ``window_mb``/``store_mb``, the rest from the device, taken
        once per device (the first step) and kept."""
        if device not in self._device_budgets:
            auto = device_budget(device)
            self._device_budgets[device] = WindowBudget(
                auto.window_bytes if self.window_bytes is None else self.window_bytes,
                auto.store_bytes if self.store_bytes is None else self.store_bytes)
        return self._device_budgets[device]

    @property
    def one_step(self) -> bool:
        """Whether training passes ``Dual(seq, flow)`` pairs between layers (the rule is a one-step rule)."""
        return isinstance(self.grad_rule, OneStepRule)

    @property
    def faithful(self) -> bool:
        """Whether a one-step method runs its per-step reading on the full ``[T, B, ...]`` graph instead (T× the
        backward cost; the reference the one-step mode is measured against). False for bptt."""
        return bool(getattr(self.grad_rule, "faithful", False))

    def make_neuron(self, config: Mapping[str, Any] | None = None, dsr: Mapping[str, Any] | None = None) -> nn.Module:
        """A spiking layer for this method from a neuron config (``dsr``: the DSR form, used by ``dsr`` only),
        built with the method's :attr:`grad_rule`."""
        return make_node(config, grad_rule=self.grad_rule)

    def output_neuron(self, make_neuron: Callable[[], nn.Module], hidden_decay: float) -> tuple[nn.Module, float]:
        """The output spiking layer of a head that ends in one, and the readout decay λ_r that turns the
        per-step outputs into the logits (:class:`~spikeforge.models.base.SpikingModel`). BPTT: the neuron,
        λ_r = 1 (its firing rate)."""
        return make_neuron(), 1.0

    def readout_decay(self, hidden_decay: float) -> float:
        """λ_r for a head without an output neuron (per-step FC outputs): 1 = their time mean."""
        return 1.0

    def check_T(self, T: int, who: str) -> None:
        if T < self.min_T:
            raise ValueError(f"{who}: method={self.name!r} needs T >= {self.min_T} (got T={T}): one step has no flow to average")

    def enter(self, x: Tensor) -> Tensor | Dual:
        """The model input ``[T, B, ...]`` as the first layer takes it under this method."""
        if self.one_step and not self.faithful and torch.is_grad_enabled():
            x = x.detach()
            w = uniform_weights(x.shape[0], dtype=x.dtype if x.is_floating_point() else None, device=x.device)
            return Dual(LazySeq.of(x, *self.window_budget(x.device)), x.mean(0), w)
        return x

    def __repr__(self) -> str:
        return repr(self.grad_rule)
