"""ResNet-19 (tdBN, Zheng et al. AAAI 2021), TET code layout (SPEC §6.2, §7.3).

Reference: TET ``models/resnet_models.py::resnet19`` (brain-intelligence-lab/temporal_efficient_training),
post-activation:

- stem ``conv3x3 in→stem (no bias) → BN → SN`` (stem 64 as the TET code; ``stem_channels=128`` gives the
  tdBN paper's table, with an identity first shortcut);
- :class:`BasicBlock`: ``conv3x3(s) → BN → SN → conv3x3 → BN → (+ sc) → SN``, sc = ``conv1x1(s) → BN``
  (no neuron) when the shape changes, else the block input; convs have no bias;
- stages 128×3 (s1), 256×3 (s2), 512×2 (s2);
- head: ``AdaptiveAvgPool(1) → flatten → FC 512→256 → SN → FC 256→K``; no output neuron: the per-step
  FC outputs are TET's O_t and the logits their time mean (readout λ_r = 1).

``tdbn=True`` replaces every BN by tdBN (SPEC §6.2) normalising to α·V_th, α = 1/√2 on bn2 and the
downsample BN (summed with a shortcut), α = 1 elsewhere; V_th is the neurons' threshold. TET's own
"tdBatchNorm" is plain BN (the default here, ``tdbn=False``).

Neurons: TET's LIF (SPEC §6.3: decay 0.5, V_th 1, strict firing, hard reset to 0, reset not detached,
triangle surrogate γ = 1) by default; with ``tdbn=True`` the tdBN neuron (SPEC §6.2: the same LIF with
the rectangular surrogate a = 1, decay 0.9 and V_th 1 as SSF's baseline — the paper's own values are
unverified). Under ``ssf`` the readout integrates the FC outputs with the neurons' λ (SSF's final
membrane potential of a non-spiking output layer). Under ``dsr`` (not a DSR-paper setting; used for the
methods benchmark) every neuron is DSR-IF and the logits stay the time mean of the FC outputs.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from torch import Tensor, nn

from spikeforge.layers import BatchNormTB, TdBN, TimeDistributed
from spikeforge.methods import Method
from spikeforge.streams.dual import Dual
from spikeforge.models._common import TET_NEURON, merge_arch, neuron_decay
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS

__all__ = ["BasicBlock", "ResNet19", "TDBN_NEURON"]

#: tdBN's neuron (SPEC §6.2): LIF 6.1 with the rectangular surrogate; decay and V_th as SSF's baseline
TDBN_NEURON: dict[str, Any] = {"kind": "lif", "decay": 0.9, "v_threshold": 1.0, "v_reset": 0.0, "strict": True,
                               "detach_reset": False, "surrogate": {"name": "rect", "alpha": 1.0}}


# -- helpers -------------------------------------------------------------------------------------------
def _bn_factory(tdbn: bool, v_threshold: float) -> Callable[[int, float], nn.Module]:
    """``make_bn(C, alpha)``: BatchNormTB (alpha ignored), or TdBN(C, alpha, V_th) with ``tdbn``."""
    if tdbn:
        return lambda c, alpha=1.0: TdBN(c, alpha=alpha, v_threshold=v_threshold)
    return lambda c, alpha=1.0: BatchNormTB(c)


# -- blocks --------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """Post-activation basic block: ``SN(BN2(conv2(SN(BN1(conv1(x))))) + sc(x))``.

    Args:
        in_ch, out_ch, stride: as torchvision's BasicBlock.
        make_sn: builds one spiking layer; make_bn: ``(C, alpha) -> BN`` (alpha used by tdBN only).

    Shape:
        ``[T, B, in_ch, H, W]`` (or its Dual) → ``[T, B, out_ch, H/stride, W/stride]``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, make_sn: Callable[[], nn.Module],
                 make_bn: Callable[..., nn.Module]) -> None:
        super().__init__()
        shortcut_alpha = 1.0 / math.sqrt(2.0)
        self.conv1 = TimeDistributed(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False))
        self.bn1 = make_bn(out_ch)
        self.sn1 = make_sn()
        self.conv2 = TimeDistributed(nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False))
        self.bn2 = make_bn(out_ch, shortcut_alpha)
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(TimeDistributed(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)),
                                            make_bn(out_ch, shortcut_alpha))
        else:
            self.downsample = None
        self.sn2 = make_sn()

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        h = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
        return self.sn2(h + (x if self.downsample is None else self.downsample(x)))


#: DSR-IF with the official code's IF preset (SPEC §5)
DSR_IF: dict[str, Any] = {"kind": "if"}


# -- model ---------------------------------------------------------------------------------------------
class ResNet19(SpikingModel):
    """Spiking ResNet-19 (TET code layout; SPEC §6.2, §7.3).

    Args:
        T: time steps (default 4, TET's CIFAR setting; SPEC §9 uses 6 for tdBN).
        num_classes: K (default 10).
        method: ``bptt``, ``ssf`` or ``dsr``.
        neuron: neuron config under bptt/ssf (default TET's LIF; with ``tdbn=True`` :data:`TDBN_NEURON`).
        dsr_neuron: the DSRNode config under dsr (default DSR-IF with the official code's IF preset: V_th
            init 6, lower bound 0.01, α 0.5; the ResNet-19 layout is not in the DSR paper — our extension).
        stem_channels: 64 (TET code) or 128 (tdBN table).
        tdbn: tdBN with α·V_th scaling (α = 1/√2 before the residual add) instead of plain BN over T·B.
        input_shape: ``(C, H, W)``, default ``(3, 32, 32)``; DVS ``(2, 48, 48)``. The count depends on C
            only (global pooling).
        widths, blocks: stages (default ``(128, 256, 512)``, ``(3, 3, 2)``); hidden: FC width (256).

    Shape:
        x: ``[B, C, H, W]`` (repeated over T) or ``[T, B, C, H, W]``. Output: logits ``[B, K]``;
        ``forward_output(x).steps``: TET's per-step outputs ``[T, B, K]``.
    """

    def __init__(self, T: int = 4, num_classes: int = 10, method: Method | str = "bptt",
                 neuron: Mapping[str, Any] | None = None, dsr_neuron: Mapping[str, Any] | None = None,
                 stem_channels: int = 64, tdbn: bool = False,
                 input_shape: Sequence[int] = (3, 32, 32), widths: Sequence[int] = (128, 256, 512),
                 blocks: Sequence[int] = (3, 3, 2), hidden: int = 256, name: str = "resnet19") -> None:
        super().__init__(name, T, num_classes, input_shape, method)
        if len(input_shape) != 3:
            raise ValueError(f"{name}: input_shape must be (C, H, W), got {tuple(input_shape)}")
        if len(widths) != len(blocks):
            raise ValueError(f"{name}: widths and blocks must be equally long, got {widths}, {blocks}")
        neuron = dict((TDBN_NEURON if tdbn else TET_NEURON) if neuron is None else neuron)
        self.tdbn = bool(tdbn)
        make_bn = _bn_factory(self.tdbn, float(neuron.get("v_threshold", 1.0)))
        dsr_neuron = dict(DSR_IF if dsr_neuron is None else dsr_neuron)
        make_sn = self.neuron_factory(neuron, dsr_neuron)
        self.conv1 = TimeDistributed(nn.Conv2d(int(input_shape[0]), stem_channels, 3, 1, 1, bias=False))
        self.bn1 = make_bn(stem_channels)
        self.sn1 = make_sn()
        stages, ch = [], stem_channels
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(int(n)):
                layers.append(BasicBlock(ch, w, 2 if (i > 0 and j == 0) else 1, make_sn, make_bn))
                ch = w
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.fc1 = TimeDistributed(nn.Linear(ch, hidden))
        self.sn2 = make_sn()
        self.fc2 = TimeDistributed(nn.Linear(hidden, num_classes))
        # no output neuron: per-step outputs are TET's O_t; under ssf the readout has the neurons' λ
        self.set_head(neuron_decay(self.sn2))

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        x = self.layers(self.sn1(self.bn1(self.conv1(x))))
        return self.fc2(self.sn2(self.fc1(self.pool(x))))


# -- builders ------------------------------------------------------------------------------------------
def _build(variant: str, method: Method | str = "bptt", **kwargs: Any) -> ResNet19:
    arch = dict(widths=(128, 256, 512), blocks=(3, 3, 2), hidden=256, name=variant)
    return ResNet19(method=method, **merge_arch(variant, arch, kwargs))


@MODELS.register("resnet19")
def resnet19(method: Method | str = "bptt", **kwargs: Any) -> ResNet19:
    """ResNet-19 (tdBN, Zheng et al. AAAI 2021; TET code layout). CIFAR-10: 12,630,858 params (stem 64);
    ``stem_channels=128``: 12,697,994; DVS (2 ch): 12,630,282 / 12,696,842."""
    return _build("resnet19", method, **kwargs)
