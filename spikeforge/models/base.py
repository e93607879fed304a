"""What every classifier in the zoo shares: input handling, the method, the readout (SPEC §1, §10).

A model's :meth:`SpikingModel.forward_features` maps the time-first input (a plain ``[T, B, ...]``
tensor under bptt, a ``Dual(seq, flow)`` under one-step ssf/dsr) to the per-step outputs of its
last layer ``[T, B, K]``. The non-spiking :class:`~spikeforge.neuron.node.Readout` (decay λ_r)
integrates them; the logits are its final potential divided by c_{T−1} = Σ_t λ_r^t:

- λ_r = 1 (default): the time mean of the per-step outputs (SPEC §1);
- λ_r = λ under ssf: SSF's final membrane potential, divided by the constant W so that the logits'
  scale does not depend on T (our choice; a positive constant changes no prediction);
- after a DSR spiking layer with λ_r equal to its λ: exactly the DSR representation o.

Every model builds its layers through the two helpers the base class owns, so the method alone decides
the neurons and the head:

- :meth:`SpikingModel.neuron_factory` — a zero-argument callable making one spiking layer per call
  (``method.make_neuron(neuron, dsr=dsr_neuron)``), checked once before any layer is built;
- :meth:`SpikingModel.set_head` — the readout (λ_r) and, where the head ends in a spiking output layer,
  that layer (``method.output_neuron`` / ``method.readout_decay``). Every subclass calls it once in its
  ``__init__``; the base ``__init__`` only reserves the ``readout`` slot (no readout is built and replaced),
  and a forward before ``set_head`` raises.

``model(x)`` returns logits ``[B, K]``; ``model.forward_output(x)`` a :class:`ModelOutput` with the
per-step outputs ``[T, B, K]`` (for TET) — under ssf/dsr their values come from ``seq`` and their
gradient from the flow.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Sequence

from torch import Tensor, nn

from spikeforge.methods import Method, get_method
from spikeforge.streams.dual import Dual, steps_of
from spikeforge.output import ModelOutput
from spikeforge.neuron.membrane import record_membrane
from spikeforge.neuron.node import Readout

__all__ = ["SpikingModel"]


class SpikingModel(nn.Module):
    """Base class of the model zoo.

    Args:
        name: the model's registry name (for messages).
        T: time steps a static input is repeated over (>= the method's minimum).
        num_classes: K.
        input_shape: one sample's shape without T and B, e.g. ``(3, 32, 32)`` or ``(64,)``; ``None``
            entries accept any size.
        method: a :class:`~spikeforge.methods.Method` or its name.

    A subclass builds its spiking layers with :meth:`neuron_factory` and ends its ``__init__`` with
    :meth:`set_head`, which sets ``self.readout``.
    """

    def __init__(self, name: str, T: int, num_classes: int, input_shape: Sequence[int | None],
                 method: Method | str = "bptt") -> None:
        super().__init__()
        self.name = name
        self.method = get_method(method)
        if int(T) < 1:
            raise ValueError(f"{name}: T must be >= 1, got {T}")
        self.method.check_T(int(T), name)
        if int(num_classes) < 1:
            raise ValueError(f"{name}: num_classes must be >= 1, got {num_classes}")
        self.T, self.num_classes, self.input_shape = int(T), int(num_classes), tuple(input_shape)
        # the slot set_head fills (registered here, so the readout keeps its first place in repr and named_modules)
        self.register_module("readout", None)
        #: fill ``ModelOutput.stats["membrane"]`` (per spiking-layer μ, σ² of H − V_th; RecDis losses)
        self.collect_membrane = False

    def neuron_factory(self, neuron: Mapping[str, Any] | None,
                       dsr_neuron: Mapping[str, Any] | None = None) -> Callable[[], nn.Module]:
        """A zero-argument callable making one new spiking layer per call: ``self.method.make_neuron(neuron,
        dsr=dsr_neuron)`` (bptt/ssf build ``neuron``; dsr builds a DSRNode from ``dsr_neuron``, or derives
        one from ``neuron``, see the method).

        The factory is called once here, its layer discarded, so a method that cannot take the neuron
        fails before any layer of the model is built (building a neuron draws no random numbers, so the
        model's initial parameters do not depend on this call).

        Raises:
            ValueError: ``"{name}: method='…' cannot build its neurons: {reason}"`` (e.g. dsr on a
                hard-reset neuron without a ``dsr_neuron``, or on PLIF).
        """
        method, name = self.method, self.name

        def make() -> nn.Module:
            try:
                return method.make_neuron(neuron, dsr=dsr_neuron)
            except ValueError as err:
                raise ValueError(f"{name}: method={method.name!r} cannot build its neurons: {err}") from None

        make()  # fail at once, before any layer is built
        return make

    def set_head(self, hidden_decay: float | None = None,
                 make_output_neuron: Callable[[], nn.Module] | None = None) -> nn.Module | None:
        """Set ``self.readout``, the non-spiking :class:`~spikeforge.neuron.node.Readout` (``output="final"``)
        whose decay λ_r turns the per-step outputs ``[T, B, K]`` into the logits ``[B, K]``; call once in
        ``__init__`` (with an output neuron: where that layer belongs, after the layers before it).

        Args:
            hidden_decay: λ of the hidden spiking layers (:func:`~spikeforge.models._common.neuron_decay`).
                ``None`` (and no ``make_output_neuron``): λ_r = 1 under every method — the logits are
                the time mean of the per-step outputs (a linear head, or firing rates voted on).
            make_output_neuron: for a head that ends in a spiking output layer: its factory (usually
                :meth:`neuron_factory`'s). Needs ``hidden_decay``.

        Returns:
            with ``make_output_neuron``: the output layer the method gives, ``(layer, λ_r) =
            self.method.output_neuron(make_output_neuron, hidden_decay)`` (bptt: a neuron, λ_r = 1; ssf:
            ``nn.Identity``, λ_r = hidden_decay; dsr: a DSRNode, λ_r = its λ, 1 for IF, β for LIF); the
            caller registers it where the head needs it. Otherwise ``None``, with λ_r =
            ``self.method.readout_decay(hidden_decay)`` (bptt, dsr: 1; ssf: hidden_decay) when
            ``hidden_decay`` is given, else 1.
        """
        output: nn.Module | None = None
        if make_output_neuron is not None:
            if hidden_decay is None:
                raise ValueError(f"{self.name}: set_head needs hidden_decay with an output neuron")
            output, decay = self.method.output_neuron(make_output_neuron, hidden_decay)
        elif hidden_decay is not None:
            decay = self.method.readout_decay(hidden_decay)
        else:
            decay = 1.0
        self.readout = Readout(decay=decay, output="final")
        return output

    def _expected(self) -> str:
        dims = ", ".join("*" if d is None else str(d) for d in self.input_shape)
        return f"[B, {dims}] (static, repeated over T={self.T}) or [T, B, {dims}]"

    def time_input(self, x: Tensor) -> Tensor:
        """``[B, *input_shape]`` → ``[T, B, ...]`` (a view); ``[T, B, *input_shape]`` passes; else raises."""
        n = len(self.input_shape)
        if not isinstance(x, Tensor) or x.dim() not in (n + 1, n + 2):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self.name}: expected input {self._expected()}, got {got}")
        sample = tuple(x.shape[-n:]) if n else ()
        if any(want is not None and want != got for want, got in zip(self.input_shape, sample)):
            raise ValueError(f"{self.name}: expected input {self._expected()}, got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{self.name}: expected a floating-point input, got dtype {x.dtype}")
        if x.dim() == n + 1:
            x = x.unsqueeze(0).expand(self.T, *x.shape)
        if x.shape[0] < self.method.min_T:
            self.method.check_T(x.shape[0], self.name)
        return x

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        """``[T, B, ...]`` (or its Dual) → per-step outputs ``[T, B, K]`` (or their Dual)."""
        raise NotImplementedError

    def forward_output(self, x: Tensor) -> ModelOutput:
        """Logits, per-step outputs and, with ``collect_membrane``, ``stats["membrane"]``: one ``(μ [C], σ² [C])``
        of H − V_th per spiking-layer call (:mod:`spikeforge.neuron.membrane`)."""
        if not self.collect_membrane:
            return self._output(x, {})
        with record_membrane(self) as recorder:
            return self._output(x, {"membrane": recorder.stats})

    def _output(self, x: Tensor, stats: dict) -> ModelOutput:
        if self.readout is None:
            raise RuntimeError(f"{self.name}: no readout; the model's __init__ must call self.set_head(...)")
        out = self.forward_features(self.method.enter(self.time_input(x)))
        T = out.shape[0]
        logits = self.readout(out) / self.readout.cumulative_gains(T, out.flow if isinstance(out, Dual) else out)[-1]
        return ModelOutput(logits=logits, steps=steps_of(out) if isinstance(out, Dual) else out, stats=stats)

    def forward(self, x: Tensor) -> Tensor:  # x [B, ...] or [T, B, ...] -> logits [B, K]
        return self.forward_output(x).logits

    def extra_repr(self) -> str:
        """``T``, ``num_classes``, the method, and ``collect_membrane=True`` when set; families add their options."""
        return ", ".join([f"T={self.T}", f"num_classes={self.num_classes}", f"method={self.method!r}"]
                         + (["collect_membrane=True"] if self.collect_membrane else []))
