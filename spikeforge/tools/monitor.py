"""Firing-rate monitors: forward hooks on a model's spiking layers, detached on exit.

:class:`Monitor` attaches to any model without changing it: a forward hook on every spiking neuron
(a :class:`~spikeforge.neuron.node.BaseNode`, the DSR node included) and on every SEW connect
function (:class:`~spikeforge.layers.SEWConnect`). Under ``ssf``/``dsr`` a layer returns a
``Dual(seq, flow)``; the monitor reads the real spike trains from ``seq``, never the flow.

A spike is a non-zero entry of the layer's output (spikes are {0, 1} for the LIF family, {0, V_th}
or {0, V_th/Δt} for DSR neurons; any dtype, ``bool`` included). Memory is bounded: per layer the
monitor keeps one running sum of the shape of one sample's neurons ``[C, ...]`` (float64) and an
element count; ``[T, ...]`` tensors are only kept for the neurons named in ``spike_trains``.

Example:
    >>> with Monitor(model) as mon:
    ...     model(x)
    >>> mon.rates()            # {"sn1": 0.137, ...}: spikes / (T·B·neurons)
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from spikeforge.layers.sew import SEWConnect
from spikeforge.streams.dual import Dual
from spikeforge.neuron.node import BaseNode

__all__ = ["LayerStats", "Monitor", "sew_connects", "spike_windows", "spiking_layers"]

NeuronIndex = int | slice | Sequence[int] | Tensor
"""Which neurons of a layer to record spike trains of: an index into the flattened per-sample neurons."""


def spike_windows(output: Any) -> Iterator[Tensor]:
    """The real ``[T, B, ...]`` sequence of a layer's output, as windows ``[t, B, ...]`` over time.

    A Tensor is one window; a ``Dual`` gives its ``seq`` (read window by window when it is held lazily,
    so nothing of size ``[T, ...]`` is materialised or kept); a tuple gives its first element.
    """
    if isinstance(output, (tuple, list)):
        yield from spike_windows(output[0])
        return
    if isinstance(output, Dual):
        output = output.seq  # a windowed sequence (LazySeq)
    if hasattr(output, "windows"):
        for _, _, window in output.windows():
            yield window
    elif isinstance(output, Tensor):
        yield output
    else:
        raise TypeError(f"Monitor: cannot read a spike sequence from a {type(output).__name__}")


def spiking_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Named spiking neuron modules of ``model`` (``BaseNode`` subclasses), in module order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, BaseNode)}


def sew_connects(model: nn.Module) -> dict[str, nn.Module]:
    """Named SEW connect modules, keyed by their block's name (the parent of ``<block>.connect``)."""
    return {name.rsplit(".", 1)[0] if "." in name else name: m
            for name, m in model.named_modules() if isinstance(m, SEWConnect)}


@dataclass
class LayerStats:
    """Running sums of one monitored quantity.

    Attributes:
        total: ``[*neuron_shape]`` float64, the sum over time steps and samples (spike counts, or values).
        steps: number of ``[B]``-slices summed, i.e. Σ T·B over the calls.
    """

    total: Tensor | None = None
    steps: int = 0
    trains: list[Tensor] = field(default_factory=list)

    def clear(self) -> None:
        self.total, self.steps = None, 0
        self.trains.clear()

    def add(self, values: Tensor, who: str) -> None:
        """Add ``values`` ``[T, B, ...]`` (already reduced to counts/values) to the running sums."""
        s = values.sum(dim=(0, 1), dtype=torch.float64)
        if self.total is None:
            self.total = s
        elif self.total.shape != s.shape:
            raise ValueError(f"Monitor: layer {who!r} changed its per-sample shape from {tuple(self.total.shape)} "
                             f"to {tuple(s.shape)}; call reset() between inputs of different sizes")
        else:
            self.total += s.to(self.total.device)
        self.steps += values.shape[0] * values.shape[1]

    def rate(self) -> float:
        """total / (T·B·neurons); NaN before any input."""
        if self.total is None or self.steps == 0:
            return float("nan")
        return float(self.total.sum()) / (self.steps * self.total.numel())

    def channel_rates(self) -> Tensor:
        """``[C]``: per channel (dim 0 of a sample; each neuron for ``[N]`` layers), averaged over T, B and space."""
        if self.total is None:
            return torch.empty(0, dtype=torch.float64)
        t = self.total.reshape(1) if self.total.dim() == 0 else self.total
        return t.reshape(t.shape[0], -1).mean(dim=1) / self.steps

    def rate_map(self) -> Tensor:
        """``[C, ...]``: per neuron, averaged over T and B."""
        if self.total is None:
            return torch.empty(0, dtype=torch.float64)
        return self.total / self.steps


class Monitor:
    """Record per-layer firing rates of any spikeforge model (bptt, ssf or dsr) through forward hooks.

    Args:
        model: the network; it is not modified (hooks only, removed on exit / :meth:`detach`).
        spike_trains: optional ``{layer name: index}``: record the spike trains of those neurons of
            those layers; ``index`` selects from the flattened per-sample neurons (int, slice, list
            or 1-D tensor). Layer names are the module names in ``model.named_modules()``.

    Rates are spikes / (T·B·neurons), dimensionless in [0, 1], per layer by module name. For SEW
    blocks (keyed by the block name) the rate of the residual spikes A (fraction of non-zero entries)
    and the mean of the block output O (ADD: values 0, 1, 2 in spike units, so it may exceed 1; AND,
    IAND: a firing rate; under dsr spikes carry their amplitude V_th, and O is in those units) are kept apart.

    Raises:
        ValueError: the model has no spiking layer, or a ``spike_trains`` name is not one of them.
    """

    def __init__(self, model: nn.Module, spike_trains: dict[str, NeuronIndex] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Monitor: model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.layers = spiking_layers(model)
        self.blocks = sew_connects(model)
        if not self.layers and not self.blocks:
            raise ValueError(f"Monitor: {type(model).__name__} has no spiking layers (BaseNode) or SEW connects to monitor")
        self.selected = dict(spike_trains or {})
        unknown = sorted(set(self.selected) - set(self.layers))
        if unknown:
            raise ValueError(f"Monitor: spike_trains names unknown layer(s) {', '.join(map(repr, unknown))}; "
                             f"spiking layers are: {', '.join(self.layers)}")
        self._handles: list[Any] = []
        self._stats = {name: LayerStats() for name in self.layers}
        self._a = {name: LayerStats() for name in self.blocks}
        self._o = {name: LayerStats() for name in self.blocks}

    # ------------------------------------------------------------------ attaching
    def attach(self) -> Monitor:
        """Register the hooks (done by ``with``); attaching twice raises."""
        if self._handles:
            raise RuntimeError("Monitor: already attached")
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._neuron_hook(name)))
        for name, module in self.blocks.items():
            self._handles.append(module.register_forward_hook(self._block_hook(name)))
        return self

    def detach(self) -> None:
        """Remove every hook; the recorded sums stay readable."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def reset(self) -> None:
        """Forget everything recorded so far (hooks stay as they are)."""
        for stats in (*self._stats.values(), *self._a.values(), *self._o.values()):
            stats.clear()

    # ------------------------------------------------------------------ hooks
    def _neuron_hook(self, name: str) -> Callable[..., None]:
        stats, index = self._stats[name], self.selected.get(name)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            chosen = []
            with torch.no_grad():
                for window in spike_windows(output):
                    fired = window.detach() != 0
                    stats.add(fired, name)
                    if index is not None:
                        chosen.append(fired.flatten(2)[:, :, index].reshape(*fired.shape[:2], -1).cpu())
            if chosen:
                stats.trains.append(torch.cat(chosen, dim=0))
        return hook

    def _block_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            with torch.no_grad():
                for window in spike_windows(inputs[0]):
                    self._a[name].add(window.detach() != 0, f"{name}.A")
                for window in spike_windows(output):
                    self._o[name].add(window.detach(), f"{name}.O")
        return hook

    # ------------------------------------------------------------------ results
    def rates(self) -> dict[str, float]:
        """``{layer name: spikes / (T·B·neurons)}`` for every spiking layer that has seen input."""
        return {name: s.rate() for name, s in self._stats.items() if s.steps}

    def channel_rates(self) -> dict[str, Tensor]:
        """``{layer name: [C] float64}``: firing rate per channel (dim 2 of ``[T, B, C, ...]``)."""
        return {name: s.channel_rates() for name, s in self._stats.items() if s.steps}

    def rate_maps(self) -> dict[str, Tensor]:
        """``{layer name: [C, ...] float64}``: firing rate per neuron, averaged over T and B."""
        return {name: s.rate_map() for name, s in self._stats.items() if s.steps}

    def block_rates(self) -> dict[str, dict[str, float]]:
        """``{SEW block name: {"A": rate of the residual spikes, "O": mean of the block output}}``."""
        return {name: {"A": self._a[name].rate(), "O": self._o[name].rate()}
                for name in self.blocks if self._a[name].steps}

    def spike_trains(self) -> dict[str, Tensor]:
        """``{layer name: [T, B_total, k] bool}``: the chosen neurons' spikes, calls concatenated along B."""
        return {name: torch.cat(self._stats[name].trains, dim=1)
                for name in self.selected if self._stats[name].trains}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict: per-layer rates, per-block A/O rates and the mean rate over all neurons."""
        spikes = sum(float(s.total.sum()) for s in self._stats.values() if s.steps)
        neurons = sum(s.steps * s.total.numel() for s in self._stats.values() if s.steps)
        return {"rates": self.rates(), "blocks": self.block_rates(),
                "mean_rate": spikes / neurons if neurons else float("nan")}
