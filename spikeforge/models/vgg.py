"""VGG-11 (DSR layout) and VGGSNN (TET) for DVS-CIFAR10 at 2×48×48 (SPEC §5 "Networks", §6.3, §7.3).

- ``vgg11_dvs``: DSR code ``cifar/modules/vgg.py::vgg11_{lif,if}`` (Meng et al. CVPR 2022). Units
  ``conv3x3 (bias) → BN → SN → Dropout(0.1)``: [64 AP] [128 AP] [256 256 AP] [512 512 AP] [512 512 AP]
  (48 → 1), ``AdaptiveAvgPool(7) → Flatten → FC 25088→K → BN1d → SN``; logits = the output neuron's
  representation o (readout λ_r = its λ). Init as the code: Kaiming-normal (fan_out) convs with zero bias,
  FC weight N(0, 0.01²) with zero bias. Dropout: one mask per sample, fixed over time (DESIGN "Dropout";
  the code's ``nn.Dropout`` on the T·B batch draws one per step).
- ``vggsnn_dvs``: TET ``models/VGG_models.py::VGGSNN`` (Deng et al. ICLR 2022). ``conv3x3 (bias) → BN → SN``:
  64, 128, AP, 256, 256, AP, 512, 512, AP, 512, 512, AP (48 → 3), ``flatten → FC 4608→K``, no output
  neuron (per-step outputs are TET's O_t; logits their mean). Kaiming-normal (fan_out) convs.

Neurons: under ``dsr`` (vgg11_dvs only) DSR neurons from ``dsr_neuron`` (default DSR-LIF, the official
preset for T); under ``bptt``/``ssf`` the ``neuron`` config: vgg11_dvs's default is the DSR layouts' LIF
(λ = 0.95, V_th 1, hard reset; SSF supp. Table S2), vggsnn_dvs's TET's LIF (SPEC §6.3: decay 0.5, V_th 1,
strict, hard reset, reset not detached, triangle γ = 1). Under ``ssf`` vgg11_dvs's output neuron becomes
a non-spiking readout with the neurons' λ; vggsnn_dvs's readout takes the neurons' λ. ``vggsnn_dvs`` under
``dsr`` raises (hard-reset neurons).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from spikeforge.layers import BatchNormTB, TimeDistributed, TimeFixedDropout
from spikeforge.methods import Method
from spikeforge.streams.dual import Dual
from spikeforge.models._common import (
    DSR_LAYOUT_NEURON,
    TET_NEURON,
    default_dsr_neuron,
    merge_arch,
    neuron_decay,
)
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS

__all__ = ["VGG11DVS", "VGGSNN"]

VGG11_CFG = ((64, "M"), (128, "M"), (256, 256, "M"), (512, 512, "M"), (512, 512, "M"))
VGGSNN_CFG = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


# -- blocks --------------------------------------------------------------------------------------------
class ConvUnit(nn.Module):
    """``conv3x3 (bias) → BN over T·B → SN → Dropout(p)`` (time-fixed mask; identity at p = 0).

    Shape: ``[T, B, in_ch, H, W]`` (or its Dual) → ``[T, B, out_ch, H, W]``.
    """

    def __init__(self, in_ch: int, out_ch: int, sn: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = TimeDistributed(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.bn = BatchNormTB(out_ch)
        self.sn = sn
        self.dropout = TimeFixedDropout(dropout)

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        return self.dropout(self.sn(self.bn(self.conv(x))))


def _features(cfg: Sequence[Any], in_ch: int, make_sn: Callable[[], nn.Module],
              dropout: float) -> tuple[nn.Sequential, int, int]:
    """Units and AP2 layers from ``cfg`` (ints = channels, "M" = AvgPool2d(2, 2)); returns (layers, C, pools)."""
    layers, pools = [], 0
    for v in cfg:
        if v == "M":
            layers.append(TimeDistributed(nn.AvgPool2d(2, 2)))
            pools += 1
        else:
            layers.append(ConvUnit(in_ch, v, make_sn(), dropout))
            in_ch = v
    return nn.Sequential(*layers), in_ch, pools


def _flatten(cfg: Sequence[Any]) -> list[Any]:
    return [v for group in cfg for v in (group if isinstance(group, tuple) else (group,))]


# -- models --------------------------------------------------------------------------------------------
class VGG11DVS(SpikingModel):
    """Spiking VGG-11, DSR layout (SPEC §5, §7.3).

    Args:
        T: time steps (default 20; SPEC §9 ``dsr-vgg11-dvscifar10``). num_classes: K (default 10).
        method: ``bptt``, ``ssf`` or ``dsr``.
        neuron: config under bptt/ssf (default ``DSR_LAYOUT_NEURON``, LIF λ 0.95); dsr_neuron: DSRNode config
            under dsr (default DSR-LIF with the official preset for T; ``{"kind": "if"}`` for DSR-IF).
        dropout: p after every conv unit (default 0.1, as the code).
        input_shape: ``(2, 48, 48)``.

    Shape:
        x: ``[T, B, 2, 48, 48]`` (or ``[B, 2, 48, 48]``, repeated over T). Output: logits ``[B, K]``.
    """

    def __init__(self, T: int = 20, num_classes: int = 10, method: Method | str = "bptt",
                 neuron: Mapping[str, Any] | None = None, dsr_neuron: Mapping[str, Any] | None = None,
                 dropout: float = 0.1, input_shape: Sequence[int] = (2, 48, 48), name: str = "vgg11_dvs") -> None:
        super().__init__(name, T, num_classes, input_shape, method)
        neuron = dict(DSR_LAYOUT_NEURON if neuron is None else neuron)
        dsr_neuron = dict(default_dsr_neuron(self.T) if dsr_neuron is None else dsr_neuron)
        make_sn = self.neuron_factory(neuron, dsr_neuron)
        self.features, ch, _ = _features(_flatten(VGG11_CFG), int(input_shape[0]), make_sn, dropout)
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(1))
        self.fc = TimeDistributed(nn.Linear(ch * 7 * 7, num_classes))
        self.bn = BatchNormTB(num_classes)
        self.sn = self.set_head(neuron_decay(self.features[0].sn), make_sn)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The DSR code's init: Kaiming-normal (fan_out) convs, zero biases, FC weight N(0, 0.01²)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        return self.sn(self.bn(self.fc(self.pool(self.features(x)))))


class VGGSNN(SpikingModel):
    """TET's VGGSNN (SPEC §6.3, §7.3).

    Args:
        T: time steps (default 10, TET's DVS-CIFAR10 setting). num_classes: K (default 10).
        method: ``bptt`` or ``ssf`` (``dsr`` raises: hard-reset neurons).
        neuron: neuron config (default TET's LIF).
        input_shape: ``(2, 48, 48)`` (the FC's 512·3·3 inputs fix H = W = 48).

    Shape:
        x: ``[T, B, 2, 48, 48]`` (or ``[B, 2, 48, 48]``). Output: logits ``[B, K]``; ``forward_output(x).steps``:
        the per-step outputs ``[T, B, K]`` for TET's loss.
    """

    def __init__(self, T: int = 10, num_classes: int = 10, method: Method | str = "bptt",
                 neuron: Mapping[str, Any] | None = None, input_shape: Sequence[int] = (2, 48, 48),
                 name: str = "vggsnn_dvs") -> None:
        super().__init__(name, T, num_classes, input_shape, method)
        neuron = dict(TET_NEURON if neuron is None else neuron)
        make_sn = self.neuron_factory(neuron)
        self.features, ch, pools = _features(VGGSNN_CFG, int(input_shape[0]), make_sn, 0.0)
        side = int(input_shape[1]) // 2 ** pools
        self.flatten = TimeDistributed(nn.Flatten(1))
        self.fc = TimeDistributed(nn.Linear(ch * side * side, num_classes))
        self.set_head(neuron_decay(self.features[0].sn))  # no output neuron; under ssf λ_r = the neurons' λ
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        return self.fc(self.flatten(self.features(x)))


# -- builders ------------------------------------------------------------------------------------------
def _build(variant: str, method: Method | str = "bptt", **kwargs: Any) -> SpikingModel:
    cls = {"vgg11_dvs": VGG11DVS, "vggsnn_dvs": VGGSNN}[variant]
    return cls(method=method, **merge_arch(variant, dict(input_shape=(2, 48, 48), name=variant), kwargs))


@MODELS.register("vgg11_dvs")
def vgg11_dvs(method: Method | str = "bptt", **kwargs: Any) -> VGG11DVS:
    """VGG-11, DSR (Meng et al. CVPR 2022), DVS-CIFAR10 2×48×48: 9,476,318 params, 9,476,327 under dsr (+9 V_th)."""
    return _build("vgg11_dvs", method, **kwargs)


@MODELS.register("vggsnn_dvs")
def vggsnn_dvs(method: Method | str = "bptt", **kwargs: Any) -> VGGSNN:
    """VGGSNN, TET (Deng et al. ICLR 2022), DVS-CIFAR10 2×48×48: 9,271,498 params."""
    return _build("vggsnn_dvs", method, **kwargs)
