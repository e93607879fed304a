"""Energy estimate: synaptic operations per layer on neuromorphic hardware, and the ANN's MACs.

Per conv/linear layer, from the inputs it actually receives while the model runs on ``x``:

- **spike-like input** (every value a non-negative integer: spikes, SEW-ADD sums): an input of value
  v at a position feeding n outputs costs v·n accumulates (SOPs). n is counted exactly, border effects
  of stride and padding included: SOPs = Σ conv(x, 1), the layer's geometry with all-one weights;
  a linear layer's n is ``out_features``.
- **any other input** (a static image on the first conv, an average-pool output, DSR's V_th/Δt
  spikes): multiply-accumulates, MACs = outputs × fan-in (C_in/groups · k_h · k_w for a conv, i.e. a
  dense layer, padded taps included).

The ANN of the same architecture runs every synaptic layer once per sample with MACs = outputs per
step × fan-in. Bias additions, BN (foldable), pooling and the neurons' own updates are not counted.

Energy per operation (45 nm CMOS, 32-bit floating point), from M. Horowitz, "Computing's energy problem
(and what we can do about it)", IEEE ISSCC 2014, pp. 10-14: an add costs 0.9 pJ (one accumulate, AC),
a multiply 3.7 pJ, so a multiply-accumulate costs 3.7 + 0.9 = 4.6 pJ (MAC). Both are arguments.

Counts follow what runs: a static image repeated over T that the layers compute once (an expanded
view, see :func:`~spikeforge.layers.seq_to_ann`) costs its first layer's MACs once, as an encoder would.
All counts are per sample: totals over the run divided by the batch size B of ``x``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["E_AC_PJ", "E_MAC_PJ", "EnergyReport", "LayerEnergy", "count_energy", "is_spike_like", "synaptic_ops"]

E_AC_PJ = 0.9  #: pJ per accumulate, 45 nm, 32-bit float add (Horowitz, ISSCC 2014)
E_MAC_PJ = 4.6  #: pJ per multiply-accumulate, 45 nm, 32-bit float mult 3.7 + add 0.9 (Horowitz, ISSCC 2014)
_CONVS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


@dataclass
class LayerEnergy:
    """One conv/linear layer's operations per sample: SOPs and MACs of the SNN, MACs of the ANN."""

    name: str
    kind: str  # "SOP" (spike-like input) or "MAC"
    sops: float = 0.0
    macs: float = 0.0
    ann_macs: float = 0.0
    energy_pj: float = 0.0
    ann_energy_pj: float = 0.0


@dataclass
class EnergyReport:
    """Per-layer and total operations and energy per sample, with the constants used (pJ per op)."""

    layers: list[LayerEnergy] = field(default_factory=list)
    e_ac_pj: float = E_AC_PJ
    e_mac_pj: float = E_MAC_PJ

    def total(self, key: str) -> float:
        return sum(getattr(layer, key) for layer in self.layers)

    @property
    def energy_pj(self) -> float:
        return self.total("energy_pj")

    @property
    def ann_energy_pj(self) -> float:
        return self.total("ann_energy_pj")

    def to_dict(self) -> dict[str, Any]:
        keys = ("sops", "macs", "ann_macs", "energy_pj", "ann_energy_pj")
        return {"layers": [asdict(layer) for layer in self.layers], "total": {k: self.total(k) for k in keys},
                "e_ac_pj": self.e_ac_pj, "e_mac_pj": self.e_mac_pj,
                "snn_over_ann": self.energy_pj / self.ann_energy_pj if self.ann_energy_pj else float("nan")}


def is_spike_like(x: Tensor) -> bool:
    """True when every entry of ``x`` is a non-negative integer (bool spikes included)."""
    if x.dtype == torch.bool:
        return True
    if not x.is_floating_point():
        return bool((x >= 0).all())
    return bool(((x >= 0) & (x == torch.round(x))).all())


def synaptic_ops(module: nn.Module, x: Tensor) -> float:
    """Σ over input entries of value × fan-out for ``module`` (conv or linear) on the batch ``x`` ``[N, ...]``."""
    if isinstance(module, nn.Linear):
        return float(x.double().sum()) * module.out_features
    conv = next(fn for cls, fn in _CONVS.items() if isinstance(module, cls))  # QAT-parametrized subclasses too
    ones = torch.ones(module.weight.shape, dtype=torch.float64, device=x.device)
    if module.padding_mode != "zeros":
        raise ValueError(f"count_energy: padding_mode={module.padding_mode!r} is not counted; only zero padding")
    out = conv(x.double(), ones, None, module.stride, module.padding, module.dilation, module.groups)
    return float(out.sum())


def _fan_in(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.weight[0].numel()


def count_energy(model: nn.Module, x: Tensor, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> EnergyReport:
    """Run ``model`` on ``x`` (no gradient, modes unchanged) and count its synaptic operations per sample.

    Args:
        model: any module; its conv/linear layers (``nn.Conv1d/2d/3d``, ``nn.Linear``, wrapped or not) are counted.
        x: the model's input, ``[B, ...]`` static or ``[T, B, ...]``; B is taken from a zoo model's
            ``time_input`` (else dim 1 of a time-first ``x``).
        e_ac_pj, e_mac_pj: energy per accumulate / multiply-accumulate in pJ (default 0.9 / 4.6, 45 nm).

    Returns:
        :class:`EnergyReport` with one :class:`LayerEnergy` per layer that ran, in call order.

    A layer called several times per forward adds up its counts; a layer that saw any non-spike input
    is reported as kind ``"MAC"``.

    Raises:
        ValueError: a negative energy constant, or a conv with non-zero padding mode.
    """
    if not (e_ac_pj >= 0 and e_mac_pj >= 0):
        raise ValueError(f"count_energy: e_ac_pj and e_mac_pj must be >= 0 pJ, got {e_ac_pj}, {e_mac_pj}")
    batch = model.time_input(x).shape[1] if hasattr(model, "time_input") else x.shape[1]
    report = EnergyReport(e_ac_pj=float(e_ac_pj), e_mac_pj=float(e_mac_pj))
    rows: dict[str, LayerEnergy] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            inp = inputs[0]
            row = rows.get(name)
            if row is None:
                row = rows[name] = LayerEnergy(name, "SOP")
                row.ann_macs = output[0].numel() * _fan_in(module)  # one step of the ANN, per sample
                report.layers.append(row)
            if is_spike_like(inp):
                row.sops += synaptic_ops(module, inp)
            else:
                row.kind = "MAC"
                row.macs += output.numel() * _fan_in(module)
        return hook

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, *_CONVS))]
    handles = [m.register_forward_hook(hook_for(n)) for n, m in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    for row in report.layers:
        row.sops, row.macs = row.sops / batch, row.macs / batch
        row.energy_pj = row.sops * e_ac_pj + row.macs * e_mac_pj
        row.ann_energy_pj = row.ann_macs * e_mac_pj
    return report
