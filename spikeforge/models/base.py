"""What every classifier in the zoo shares: input handling, the method, the readout (SPEC §1, §10).

A model's :meth:`SpikingModel.forward_features` maps the time-first input (a plain ``[T, B, ...]``
tensor under bptt, a ``Dual(seq, flow)`` under one-step ssf/dsr) to the per-step outputs of its
last layer ``[T, B, K]``. The non-spiking :class:`~spikeforge.neuron.node.Readout` (decay λ_r)
integrates them; the logits are its final potential divided by c_{T−1} = Σ_t λ_r^t:

- λ_r = 1 (default): the time mean of the per-step outputs (SPEC §1);
- λ_r = λ under ssf: SSF's final membrane potential, divided by the constant W so that the logits'
  scale does not depend on T (our choice; a positive constant changes no prediction);
- after a DSR spiking layer with λ_r equal to its λ: exactly the DSR representation o.

``model(x)`` returns logits ``[B, K]``; ``model.forward_output(x)`` a :class:`ModelOutput` with the
per-step outputs ``[T, B, K]`` (for TET) — under ssf/dsr their values come from ``seq`` and their
gradient from the flow.
"""
from __future__ import annotations

from typing import Sequence

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
        readout_decay: λ_r of the readout (1 = time mean).
    """

    def __init__(self, name: str, T: int, num_classes: int, input_shape: Sequence[int | None],
                 method: Method | str = "bptt", readout_decay: float = 1.0) -> None:
        super().__init__()
        self.name = name
        self.method = get_method(method)
        if int(T) < 1:
            raise ValueError(f"{name}: T must be >= 1, got {T}")
        self.method.check_T(int(T), name)
        if int(num_classes) < 1:
            raise ValueError(f"{name}: num_classes must be >= 1, got {num_classes}")
        self.T, self.num_classes, self.input_shape = int(T), int(num_classes), tuple(input_shape)
        self.readout = Readout(decay=readout_decay, output="final")
        #: fill ``ModelOutput.stats["membrane"]`` (per spiking-layer μ, σ² of H − V_th; RecDis losses)
        self.record_membrane = False

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
        """Logits, per-step outputs and, with ``record_membrane``, ``stats["membrane"]``: one ``(μ [C], σ² [C])``
        of H − V_th per spiking-layer call (:mod:`spikeforge.neuron.membrane`)."""
        if not self.record_membrane:
            return self._output(x, {})
        with record_membrane(self) as recorder:
            return self._output(x, {"membrane": recorder.stats})

    def _output(self, x: Tensor, stats: dict) -> ModelOutput:
        out = self.forward_features(self.method.enter(self.time_input(x)))
        T = out.shape[0]
        logits = self.readout(out) / self.readout.cumulative_gains(T, out.flow if isinstance(out, Dual) else out)[-1]
        return ModelOutput(logits=logits, steps=steps_of(out) if isinstance(out, Dual) else out, stats=stats)

    def forward(self, x: Tensor) -> Tensor:  # x [B, ...] or [T, B, ...] -> logits [B, K]
        return self.forward_output(x).logits
