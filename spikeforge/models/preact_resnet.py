"""PreAct-ResNet-18 (DSR layout) and PreAct-ResNet-20/32/44/56/110 for CIFAR 3×32×32, and PreAct-ResNet-18
with an ImageNet stem (SPEC §5 "Networks", §7.3, §9 ``dsr-if-imagenet``).

Meng et al., "Training High-Performance Low-Latency Spiking Neural Networks by Differentiation on Spike
Representation", CVPR 2022; code qymeng94/DSR ``cifar/modules/preresnet.py::resnet18_{lif,if}`` (supp.
Table S1 for the 20..110 depths, which the code lacks: that layout is inferred, SPEC §7.3).

- Stem ``conv3x3 3→w0`` (no bias), no BN or neuron after it. The ImageNet variant
  (``preact_resnet18_imagenet``, DSR supp. Table S3) has ``conv7x7 s2 p3 3→64`` (no bias) → ``MaxPool 3 s2 p1``
  and an ``AdaptiveAvgPool2d(1)`` head instead of AvgPool2d(4); the code has no ImageNet net, so this stem and
  head are assumed (torchvision's ResNet stem; SPEC §9).
- :class:`PreActBlock`: ``a = SN(BN(x)); h = conv3x3(a, s); h = conv3x3(Dropout(SN(BN(h)))); out = h + sc(a)``;
  block convs have bias; sc = conv1x1(s) with bias (no BN) when the shape changes, else ``a`` itself.
- Head: ``BN2d → SN → AvgPool → SN → Flatten → Dropout → Linear(bias) → BN1d → SN``; the logits are the
  last neuron's representation o (DSR-IF: rate; DSR-LIF: β-weighted rate), the readout's decay set to
  that neuron's λ (SPEC §5, ``SpikingModel`` docstring).

Neurons by method: ``dsr`` builds DSR neurons from ``dsr_neuron`` (default DSR-LIF with the official
code's preset for T); ``bptt`` and ``ssf`` build the plain ``neuron`` config (default TET's LIF, SPEC
§6.3: decay 0.5, V_th 1, strict firing, hard reset to 0, reset not detached, triangle surrogate γ = 1 —
SSF runs TET and RecDis on this layout with their neurons swapped in, SPEC §7.3). Under ``ssf`` the
output neuron becomes a non-spiking readout (SPEC §7.3, §4 "Output layer"): the head ends at BN1d and
the logits are the final potential of a readout with the neurons' λ (divided by W).
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
    default_dsr_neuron,
    merge_arch,
    neuron_decay,
)
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS

__all__ = ["STEMS", "PreActBlock", "PreActResNet"]


# -- helpers -------------------------------------------------------------------------------------------
def conv3x3(in_ch: int, out_ch: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=bias)


def cifar_stem(in_ch: int, out_ch: int) -> tuple[nn.Module, nn.Module]:
    """DSR's CIFAR stem: conv3x3 s1 (no bias), no pooling. ``[T, B, in_ch, H, W]`` → ``[T, B, out_ch, H, W]``."""
    return TimeDistributed(conv3x3(in_ch, out_ch, bias=False)), nn.Identity()


def imagenet_stem(in_ch: int, out_ch: int) -> tuple[nn.Module, nn.Module]:
    """ImageNet stem (assumed, torchvision's): conv7x7 s2 p3 (no bias) → MaxPool 3 s2 p1, no BN or neuron
    (the blocks pre-activate). ``[T, B, in_ch, H, W]`` → ``[T, B, out_ch, ⌈H/4⌉, ⌈W/4⌉]``."""
    conv = nn.Conv2d(in_ch, out_ch, kernel_size=7, stride=2, padding=3, bias=False)
    return TimeDistributed(conv), TimeDistributed(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


#: stem name -> builder of (conv, pool) from (in_ch, out_ch)
STEMS: dict[str, Callable[[int, int], tuple[nn.Module, nn.Module]]] = {"cifar": cifar_stem, "imagenet": imagenet_stem}


# -- blocks --------------------------------------------------------------------------------------------
class PreActBlock(nn.Module):
    """DSR's pre-activation basic block.

    ``a = SN1(BN1(x)); h = conv2(Dropout(SN2(BN2(conv1(a))))); out = h + sc(a)``.

    Args:
        in_ch, out_ch: channels; stride: of conv1 and the shortcut.
        make_sn: builds one spiking layer (the model's method decides its kind).
        dropout: p of the time-fixed dropout before conv2 (default 0, as the code).

    Shape:
        ``[T, B, in_ch, H, W]`` (or its Dual) → ``[T, B, out_ch, H/stride, W/stride]``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, make_sn: Callable[[], nn.Module],
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = BatchNormTB(in_ch)
        self.sn1 = make_sn()
        self.conv1 = TimeDistributed(conv3x3(in_ch, out_ch, stride))
        self.bn2 = BatchNormTB(out_ch)
        self.sn2 = make_sn()
        self.dropout = TimeFixedDropout(dropout)
        self.conv2 = TimeDistributed(conv3x3(out_ch, out_ch, 1))
        self.shortcut = (TimeDistributed(nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride))
                         if stride != 1 or in_ch != out_ch else None)

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        a = self.sn1(self.bn1(x))
        h = self.conv2(self.dropout(self.sn2(self.bn2(self.conv1(a)))))
        return h + (a if self.shortcut is None else self.shortcut(a))


# -- model ---------------------------------------------------------------------------------------------
class PreActResNet(SpikingModel):
    """Spiking PreAct-ResNet, DSR layout (SPEC §5, §7.3).

    Args:
        blocks: blocks per stage, e.g. ``(2, 2, 2, 2)`` (18) or ``(n, n, n)`` (6n+2).
        widths: channels per stage, e.g. ``(64, 128, 256, 512)`` or ``(16, 32, 64)``; the stem has
            ``widths[0]``; the first stage has stride 1, every other stride 2.
        pool: kernel of the head's AvgPool2d (4 for 18 at 32², 8 for 20..110); ``None``: AdaptiveAvgPool2d(1)
            (any input size).
        T: time steps (default 20, DSR's CIFAR setting).
        num_classes: K (default 10).
        method: ``bptt``, ``ssf`` or ``dsr`` (or a Method).
        neuron: neuron config under bptt/ssf (default :data:`DSR_LAYOUT_NEURON`).
        dsr_neuron: DSRNode config under dsr (default :func:`default_dsr_neuron` of T; ``{"kind": "if"}``
            for DSR-IF).
        dropout: p of the blocks' dropout (default 0); head_dropout: p before the FC (default 0).
        input_shape: ``(3, 32, 32)``; ``(3, None, None)`` for any size (with ``pool=None``).
        stem: a :data:`STEMS` name: ``"cifar"`` (conv3x3, default) or ``"imagenet"`` (conv7x7 s2 + max-pool 3 s2).
        name: registry name (messages).

    Shape:
        x: ``[B, *input_shape]`` (repeated over T) or ``[T, B, *input_shape]``. Output: logits ``[B, K]``.

    Raises:
        ValueError: bad sizes, an unknown stem, a method the neuron config cannot take (e.g. PLIF under dsr),
            a wrong input.
    """

    def __init__(self, blocks: Sequence[int], widths: Sequence[int], pool: int | None, T: int = 20,
                 num_classes: int = 10, method: Method | str = "bptt", neuron: Mapping[str, Any] | None = None,
                 dsr_neuron: Mapping[str, Any] | None = None, dropout: float = 0.0, head_dropout: float = 0.0,
                 input_shape: Sequence[int | None] = (3, 32, 32), stem: str = "cifar",
                 name: str = "preact_resnet") -> None:
        super().__init__(name, T, num_classes, input_shape, method)
        if len(blocks) != len(widths) or not blocks or any(int(b) < 1 for b in blocks):
            raise ValueError(f"{name}: blocks and widths must be equally long and blocks >= 1, got {blocks}, {widths}")
        if stem not in STEMS:
            raise ValueError(f"{name}: stem must be one of {', '.join(sorted(STEMS))}, got {stem!r}")
        self.stem = stem
        neuron = dict(DSR_LAYOUT_NEURON if neuron is None else neuron)
        dsr_neuron = dict(default_dsr_neuron(self.T) if dsr_neuron is None else dsr_neuron)
        make_sn = self.neuron_factory(neuron, dsr_neuron)
        in_ch = int(input_shape[0])
        self.conv1, self.maxpool = STEMS[stem](in_ch, widths[0])
        stages, ch = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            layers = []
            for j in range(int(n)):
                layers.append(PreActBlock(ch, w, 2 if (i > 0 and j == 0) else 1, make_sn, dropout))
                ch = w
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.bn1 = BatchNormTB(ch)
        self.sn1 = make_sn()
        self.pool = TimeDistributed(nn.AvgPool2d(pool) if pool is not None else nn.AdaptiveAvgPool2d(1))
        self.sn2 = make_sn()
        self.flatten = TimeDistributed(nn.Flatten(1))
        self.drop = TimeFixedDropout(head_dropout)
        self.fc = TimeDistributed(nn.Linear(ch, num_classes))
        self.bn2 = BatchNormTB(num_classes)
        # the method decides the output layer: a neuron whose rate (bptt) or representation o (dsr) is the
        # logits, or none and a readout with the neurons' λ (ssf, SPEC §7.3)
        self.sn3 = self.set_head(neuron_decay(self.sn2), make_sn)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The DSR code's init: Kaiming-normal (fan_out) convs, BN2d γ = 1 and β = 0, FC bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        x = self.layers(self.maxpool(self.conv1(x)))
        x = self.sn2(self.pool(self.sn1(self.bn1(x))))
        return self.sn3(self.bn2(self.fc(self.drop(self.flatten(x)))))


# -- builders ------------------------------------------------------------------------------------------
_ARCH = {
    "preact_resnet18": {"blocks": (2, 2, 2, 2), "widths": (64, 128, 256, 512), "pool": 4},
    "preact_resnet18_imagenet": {"blocks": (2, 2, 2, 2), "widths": (64, 128, 256, 512), "pool": None,
                                 "stem": "imagenet", "input_shape": (3, None, None)},
    **{f"preact_resnet{6 * n + 2}": {"blocks": (n, n, n), "widths": (16, 32, 64), "pool": 8} for n in (3, 5, 7, 9, 18)},
}


#: a variant's defaults, under the user's kwargs (the rest default as in :class:`PreActResNet`)
_DEFAULTS: dict[str, dict[str, Any]] = {"preact_resnet18_imagenet": {"num_classes": 1000, "T": 50}}


def _build(variant: str, method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """Defaults < user kwargs < fixed arch args (a conflicting arch value raises)."""
    arch = {"input_shape": (3, 32, 32), "stem": "cifar", **_ARCH[variant], "name": variant}
    return PreActResNet(method=method, **merge_arch(variant, arch, {**_DEFAULTS.get(variant, {}), **kwargs}))


@MODELS.register("preact_resnet18")
def preact_resnet18(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-18, DSR (Meng et al. CVPR 2022); CIFAR-10: 11,176,926 params, 11,176,945 under dsr (+19 V_th)."""
    return _build("preact_resnet18", method, **kwargs)


@MODELS.register("preact_resnet18_imagenet")
def preact_resnet18_imagenet(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-18 with an ImageNet stem and adaptive-pool head (DSR supp. Table S3; stem and head assumed),
    default T = 50, K = 1000; ImageNet: 11,694,456 params, 11,694,475 under dsr (+19 V_th)."""
    return _build("preact_resnet18_imagenet", method, **kwargs)


@MODELS.register("preact_resnet20")
def preact_resnet20(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-20 (DSR supp. Table S1, layout inferred); CIFAR-10: 273,091 params under dsr (incl. 21 V_th)."""
    return _build("preact_resnet20", method, **kwargs)


@MODELS.register("preact_resnet32")
def preact_resnet32(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-32 (DSR supp. Table S1, layout inferred); CIFAR-10: 467,983 params under dsr (incl. 33 V_th)."""
    return _build("preact_resnet32", method, **kwargs)


@MODELS.register("preact_resnet44")
def preact_resnet44(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-44 (DSR supp. Table S1, layout inferred); CIFAR-10: 662,875 params under dsr (incl. 45 V_th)."""
    return _build("preact_resnet44", method, **kwargs)


@MODELS.register("preact_resnet56")
def preact_resnet56(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-56 (DSR supp. Table S1, layout inferred); CIFAR-10: 857,767 params under dsr (incl. 57 V_th)."""
    return _build("preact_resnet56", method, **kwargs)


@MODELS.register("preact_resnet110")
def preact_resnet110(method: Method | str = "bptt", **kwargs: Any) -> PreActResNet:
    """PreAct-ResNet-110 (DSR supp. Table S1, layout inferred); CIFAR-10: 1,734,781 params under dsr
    (incl. 111 V_th)."""
    return _build("preact_resnet110", method, **kwargs)
