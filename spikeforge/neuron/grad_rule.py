"""How a spiking layer is differentiated: the :class:`GradRule` a neuron receives when it is built.

A node's forward is always ``node.grad_rule(node, x, v_init)``; the rule decides the backward, the forward
values are the node's spike trains under every rule. The rule is given to the node's constructor
(``LIFNode(..., grad_rule=...)``; a training method's ``make_neuron`` does it), checked there once, and shown
in the node's ``repr``; nothing changes a built node.

- :class:`SurrogateBPTT` (the default; method ``bptt``): the kernel's forward with the surrogate gradient,
  backpropagated through time.
- :class:`OneStepRule`, the base of the one-step methods' rules (``ssf``, ``dsr``: :mod:`spikeforge.methods`),
  is the one place that dispatches: a ``Dual(seq, flow)`` input to the one-step backward, a plain
  ``[T, B, ...]`` input under ``faithful=True`` to the per-step reading on the full graph, and a plain input
  without gradient (evaluation) to the plain forward.

Membrane statistics (RecDis, :mod:`.membrane`) are recorded here and nowhere else: :meth:`GradRule.__call__`
adds what the rule's forward measured to the recorder that :func:`~.membrane.record_membrane` attached.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from spikeforge.neuron.membrane import channel_stats, flow_stats
from spikeforge.neuron.seq_fire import FireResult
from spikeforge.streams.dual import Dual, aggregate

__all__ = ["GradRule", "OneStepRule", "SurrogateBPTT", "surrogate_forward"]

Stats = tuple[Tensor, Tensor]  # (μ [C], σ² [C]) of H − V_th


def surrogate_forward(node: nn.Module, x: Tensor, v_init: Tensor | None, record: bool) -> tuple[Any, Stats | None]:
    """The node's multi-step forward with its surrogate gradient (BPTT), and the membrane statistics of
    H − V_th when ``record`` (differentiable through H). Returns ``(spikes or (spikes, v), stats or None)``."""
    node.clamp_parameters()
    spikes, v = node.run_kernel(x, v_init, node.return_v or record)
    stats = channel_stats(node.charge(x, v, v_init) - node.threshold(x)) if record else None
    out = node.spike_output(spikes, x)
    return ((out, v) if node.return_v else out), stats


class GradRule:
    """Base class: how a node's forward is differentiated (see the module doc).

    Subclasses implement :meth:`forward`; :meth:`check` rejects a node the rule cannot train.
    """

    name: ClassVar[str] = "bptt"
    #: whether the parameters of the neuron's charge (PLIF's ``w``) get a gradient; a node freezes them otherwise
    trains_decay: ClassVar[bool] = True

    def check(self, node: nn.Module) -> None:
        """Raise ``ValueError`` if ``node`` cannot take this rule; called once, when the node is built."""

    def __call__(self, node: nn.Module, x: Any, v_init: Tensor | None = None) -> Any:
        sink = node.membrane_sink
        out, stats = self.forward(node, x, v_init, sink is not None)
        if stats is not None:
            sink.add(*stats)
        return out

    def forward(self, node: nn.Module, x: Any, v_init: Tensor | None, record: bool) -> tuple[Any, Stats | None]:
        """``(the node's output, its membrane statistics when record else None)``."""
        raise NotImplementedError

    def options(self) -> list[str]:
        """The non-default options, as ``key=value`` strings for ``repr``."""
        return []

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(self.options())})"


class SurrogateBPTT(GradRule):
    """Surrogate-gradient BPTT: the kernel's own backward, a reverse loop over T."""

    name = "bptt"

    def forward(self, node: nn.Module, x: Tensor, v_init: Tensor | None, record: bool) -> tuple[Any, Stats | None]:
        return surrogate_forward(node, x, v_init, record)


class OneStepRule(GradRule):
    """Base of the one-step methods' rules; :meth:`forward` dispatches (see the module doc).

    Subclasses implement :meth:`one_step` and :meth:`per_step`, and :meth:`flow_input` where the charge
    the flow gradient of the membrane statistics goes through is not the flow itself.

    Args:
        faithful: under gradient, a plain ``[T, B, ...]`` input runs the per-step reading (T× the backward).
    """

    def __init__(self, faithful: bool = False) -> None:
        self.faithful = bool(faithful)

    def forward(self, node: nn.Module, x: Tensor | Dual, v_init: Tensor | None, record: bool):
        who = type(node).__name__
        if v_init is not None:
            raise ValueError(f"{who}: {self.name} starts every neuron from rest; v_init is not supported")
        node.clamp_parameters()
        if isinstance(x, Dual):
            out, fired = self.one_step(node, x, record)
            return out, (None if fired.membrane is None else flow_stats(*fired.membrane, self.flow_input(node, x.flow)))
        if self.faithful and torch.is_grad_enabled():
            with torch.no_grad():
                spikes, v = node.run_kernel(x.detach(), return_v=record)
            out, weights = self.per_step(node, x, spikes)
            if not record:
                return out, None
            seq_stats = channel_stats(node.charge(x.detach(), v) - node.threshold(v))
            return out, flow_stats(*seq_stats, self.flow_input(node, aggregate(x, weights)))
        if torch.is_grad_enabled() and isinstance(x, Tensor) and x.requires_grad:
            raise ValueError(f"{who} was built for {self.name} (one-step): pass a Dual (the model's enter() does) "
                             "or run under torch.no_grad(); a plain tensor would silently train with BPTT")
        with torch.no_grad():
            return surrogate_forward(node, x, None, record)

    def one_step(self, node: nn.Module, x: Dual, record: bool) -> tuple[Dual, FireResult]:
        """``(the output Dual, the window pass's result)``; ``record``: the pass measures the membrane."""
        raise NotImplementedError

    def per_step(self, node: nn.Module, x: Tensor, spikes: Tensor) -> tuple[Tensor, Tensor]:
        """``(the output [T, B, ...] with the per-step backward, the flow weights [T])`` given the spikes."""
        raise NotImplementedError

    def flow_input(self, node: nn.Module, flow: Tensor) -> Tensor:
        """The flow of the charge the neuron integrates (the membrane statistics' gradient path); the input flow."""
        return flow

    def options(self) -> list[str]:
        return ["faithful=True"] if self.faithful else []
