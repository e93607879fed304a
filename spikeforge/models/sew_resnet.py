"""SEW ResNet, Spiking ResNet and Plain Net on the ImageNet layout (Fang et al., NeurIPS 2021; SPEC §7.1).

"Deep Residual Learning in Spiking Neural Networks" (Fang, Yu, Chen, Huang, Masquelier, Tian),
Table 2 / Table 3 (ImageNet), https://arxiv.org/abs/2102.04159; official code
``fangwei123456/Spike-Element-Wise-ResNet`` ``imagenet/sew_resnet.py`` and ``spiking_resnet.py``.

Three families share the torchvision ResNet topology (stride in the 3x3; 18/34 basic blocks
2-2-2-2 / 3-4-6-3; 50/101/152 bottlenecks ×4 expansion 3-4-6-3 / 3-4-23-3 / 3-8-36-3; widths
64/128/256/512), and differ only in the block:

- **SEW** (``sew_resnet*``): every conv→BN is followed by a spiking neuron (SN), the last one
  included, giving spikes A; the shortcut is the block input S, or conv1x1(stride)→BN→SN when the
  shape changes; output g(A, S) with ADD A + S, AND A·S, IAND (1 − A)·S.
- **Spiking ResNet** (``spiking_resnet*``): SN(BN(conv_last(...)) + shortcut(x)): the SN follows the
  addition, the downsample path is conv1x1→BN without SN.
- **Plain Net** (``plain_net*``): the same conv→BN→SN stages, no shortcut.

Stem conv7x7 s2 p3 → BN → SN → maxpool 3 s2 p1 (the stem conv + BN run once on a static image and
are repeated over T); readout adaptive avg-pool per step → FC per step → mean over T (the FC is
linear, so this equals FC of the time mean). IF neurons have no parameters, so with IF the SEW and
Spiking ResNet counts equal torchvision's ResNet counts (SPEC §7.3).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from torch import Tensor, nn

from spikeforge.layers import BatchNormTB, SEWConnect, TimeDistributed
from spikeforge.layers.sew import CONNECTS
from spikeforge.methods import Method
from spikeforge.streams.dual import Dual
from spikeforge.models._common import merge_arch
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS

__all__ = ["ConvBN", "SEWBlock", "SpikingResBlock", "PlainBlock", "ResNetSNN", "init_sew_weights", "IF_NEURON", "FAMILIES",
           "family_connect", "residual_branch"]

IF_NEURON: dict[str, Any] = {"kind": "if", "v_threshold": 1.0, "v_reset": 0.0, "detach_reset": True,
                             "surrogate": {"name": "atan", "alpha": 2.0}}
"""SPEC §7.1 ImageNet neuron: IF, V_th = 1, V_reset = 0, detached reset, ATan α = 2."""

FAMILIES = ("sew", "spiking", "plain")


def family_connect(name: str, family: str, connect: str | None, zero_init_residual: bool) -> str | None:
    """Check a block family's options; the connect function it uses ("add" by default for SEW, None otherwise)."""
    if family not in FAMILIES:
        raise ValueError(f"{name}: family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if family == "sew":
        connect = "add" if connect is None else connect
        if connect not in CONNECTS:
            raise ValueError(f"{name}: connect must be one of {', '.join(CONNECTS)}, got {connect!r}")
    elif connect is not None:
        raise ValueError(f"{name}: connect={connect!r} is a SEW option; {family} blocks have no connect function")
    if family == "plain" and zero_init_residual:
        raise ValueError(f"{name}: zero_init_residual needs a shortcut; a plain block with γ = 0 outputs no spikes")
    return connect
_FAMILY_NAMES = {"sew": "sew_resnet", "spiking": "spiking_resnet", "plain": "plain_net"}
SNFactory = Callable[[], nn.Module]


# --------------------------------------------------------------------------------------------- helpers
def _conv(cin: int, cout: int, k: int, stride: int = 1) -> TimeDistributed:
    """Conv k×k (padding k//2, no bias), applied per step by folding T into the batch."""
    return TimeDistributed(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False))


class ConvBN(nn.Module):
    """conv k×k (stride, no bias) → BN over T·B → optional SN.

    Shape:
        x: ``[T, B, C_in, H, W]`` (or its Dual) → ``[T, B, C_out, H', W']``.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, sn: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, k, stride)
        self.bn = BatchNormTB(cout)
        self.sn = sn

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        x = self.bn(self.conv(x))
        return x if self.sn is None else self.sn(x)


def residual_branch(bottleneck: bool, inplanes: int, planes: int, stride: int, sn: SNFactory, last_sn: bool) -> nn.Sequential:
    """The ResNet residual branch: basic (3x3, 3x3) or bottleneck (1x1, 3x3 with stride, 1x1 to 4·planes)."""
    last = sn() if last_sn else None
    if bottleneck:
        return nn.Sequential(ConvBN(inplanes, planes, 1, 1, sn()), ConvBN(planes, planes, 3, stride, sn()),
                             ConvBN(planes, planes * 4, 1, 1, last))
    return nn.Sequential(ConvBN(inplanes, planes, 3, stride, sn()), ConvBN(planes, planes, 3, 1, last))


# ---------------------------------------------------------------------------------------------- blocks
class SEWBlock(nn.Module):
    """Spike-element-wise residual block: O = g(A, S) (SPEC §7.1).

    A = SN(BN(conv(... SN(BN(conv(x)))))) — an SN after every BN, the last one included; S = x, or
    SN(BN(conv1x1(x))) when ``downsample`` is given. ``g`` is :class:`~spikeforge.layers.SEWConnect`:
    ADD A + S, AND A·S, IAND (1 − A)·S.

    Args:
        residual: the branch (a sequence of :class:`ConvBN` with SNs).
        downsample: conv1x1 → BN → SN for a changed shape, else ``None``.
        connect: ``"add"``, ``"and"`` or ``"iand"``.
    """

    def __init__(self, residual: nn.Sequential, downsample: nn.Module | None, connect: str) -> None:
        super().__init__()
        self.residual = residual
        self.downsample = downsample
        self.connect = SEWConnect(connect)

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        s = x if self.downsample is None else self.downsample(x)
        return self.connect(self.residual(x), s)

    def zero_init(self) -> None:
        """γ = 0 of the last BN so A = SN(β) = 0 and O = S (ADD, IAND); AND also sets β = 1 so A = 1."""
        bn = self.residual[-1].bn
        nn.init.zeros_(bn.weight)
        if self.connect.connect == "and":
            nn.init.ones_(bn.bias)


class SpikingResBlock(nn.Module):
    """Spiking ResNet block: SN(BN(conv_last(...)) + shortcut(x)), shortcut = x or BN(conv1x1(x)) (no SN)."""

    def __init__(self, residual: nn.Sequential, downsample: nn.Module | None, sn: nn.Module) -> None:
        super().__init__()
        self.residual = residual
        self.downsample = downsample
        self.sn = sn

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        s = x if self.downsample is None else self.downsample(x)
        return self.sn(self.residual(x) + s)

    def zero_init(self) -> None:
        """γ = 0 of the last BN: the block starts as SN(shortcut(x)) (torchvision's habit)."""
        nn.init.zeros_(self.residual[-1].bn.weight)


class PlainBlock(nn.Module):
    """Plain block: the conv→BN→SN stages of the residual branch, no shortcut."""

    def __init__(self, residual: nn.Sequential) -> None:
        super().__init__()
        self.residual = residual

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        return self.residual(x)


def init_sew_weights(model: nn.Module, zero_init_residual: bool) -> None:
    """The SEW code's init of ``model`` in place: Kaiming-normal (fan_out, relu) convs, BN γ = 1, β = 0; with
    ``zero_init_residual`` each residual block's last BN γ = 0, so the block starts as its shortcut (helps deep
    nets train, Goyal et al. 2017)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, BatchNormTB):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, (SEWBlock, SpikingResBlock)):
                m.zero_init()


# ----------------------------------------------------------------------------------------------- model
class ResNetSNN(SpikingModel):
    """ResNet-layout SNN of one family: SEW, Spiking ResNet or Plain (SPEC §7.1).

    Args:
        family: ``"sew"``, ``"spiking"`` or ``"plain"``.
        block: ``"basic"`` (18/34) or ``"bottleneck"`` (50/101/152, expansion 4).
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)``.
        num_classes: K (default 1000).
        T: time steps a static image is repeated over (default 4, SEW's ImageNet setting).
        in_channels: input channels (default 3).
        widths: stage widths (default 64, 128, 256, 512).
        connect: SEW connect function ``"add"`` (default), ``"and"``, ``"iand"``; only for ``"sew"``.
        neuron: neuron config (default :data:`IF_NEURON`).
        dsr_neuron: DSRNode config used under ``method="dsr"`` (default ``None``: dsr on the IF with
            hard reset raises, since it cannot take the DSR form).
        zero_init_residual: γ = 0 in each block's last BN (SEW AND: also β = 1), so every residual
            block starts as its shortcut (SEW: O = S). Not offered for ``"plain"`` (no shortcut).
        method: training method or its name.

    Shape:
        x: ``[B, C, H, W]`` static (the stem conv+BN runs once, repeated over T) or ``[T, B, C, H, W]``;
        output logits ``[B, K]``.

    Raises:
        ValueError: unknown family, block or connect; ``connect`` given to a non-SEW family;
            ``zero_init_residual`` for ``"plain"``; a method the neurons cannot take; wrong input.
    """

    def __init__(self, family: str = "sew", block: str = "basic", layers: Sequence[int] = (2, 2, 2, 2),
                 num_classes: int = 1000, T: int = 4, in_channels: int = 3,
                 widths: Sequence[int] = (64, 128, 256, 512), connect: str | None = None,
                 neuron: Mapping[str, Any] | None = None, dsr_neuron: Mapping[str, Any] | None = None,
                 zero_init_residual: bool = False, method: Method | str = "bptt", name: str | None = None) -> None:
        if family not in FAMILIES:
            raise ValueError(f"ResNetSNN: family must be one of {', '.join(FAMILIES)}, got {family!r}")
        name = name or _FAMILY_NAMES[family]
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"{name}: block must be 'basic' or 'bottleneck', got {block!r}")
        connect = family_connect(name, family, connect, zero_init_residual)
        if len(widths) != 4 or len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ValueError(f"{name}: layers and widths must give 4 stages (>= 1 block each), got layers={tuple(layers)}, "
                             f"widths={tuple(widths)}")
        super().__init__(name, T, num_classes, (int(in_channels), None, None), method)
        self.family, self.block, self.layers, self.connect = family, block, tuple(int(n) for n in layers), connect
        self.zero_init_residual = bool(zero_init_residual)
        sn = self.neuron_factory(neuron if neuron is not None else IF_NEURON, dsr_neuron)
        expansion = 4 if block == "bottleneck" else 1

        self.conv1 = _conv(in_channels, widths[0], 7, 2)
        self.bn1 = BatchNormTB(widths[0])
        self.sn1 = sn()
        self.maxpool = TimeDistributed(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        stage_in = [widths[0]] + [w * expansion for w in widths[:-1]]  # input channels of each stage
        stages = [self._make_layer(cin, w, n, 1 if i == 0 else 2, expansion, sn)
                  for i, (cin, w, n) in enumerate(zip(stage_in, widths, layers))]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = TimeDistributed(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1] * expansion, num_classes))
        self.set_head()  # linear head: the logits are the time mean of the per-step FC outputs under every method
        self.reset_parameters()

    def _make_layer(self, cin: int, planes: int, blocks: int, stride: int, expansion: int,
                    sn: SNFactory) -> nn.Sequential:
        """One stage from ``cin`` to ``planes·expansion`` channels: ``blocks`` blocks of the family (the first with
        ``stride``), each SN made by ``sn``."""
        out, cout = [], planes * expansion
        bottleneck = expansion == 4
        for i in range(blocks):
            s = stride if i == 0 else 1
            changes = s != 1 or cin != cout
            if self.family == "sew":
                down = ConvBN(cin, cout, 1, s, sn()) if changes else None
                blk = SEWBlock(residual_branch(bottleneck, cin, planes, s, sn, True), down, self.connect)
            elif self.family == "spiking":
                down = ConvBN(cin, cout, 1, s, None) if changes else None
                blk = SpikingResBlock(residual_branch(bottleneck, cin, planes, s, sn, False), down, sn())
            else:
                blk = PlainBlock(residual_branch(bottleneck, cin, planes, s, sn, True))
            out.append(blk)
            cin = cout
        return nn.Sequential(*out)

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out, relu) convs, BN γ = 1 β = 0, default Linear init; optional zero-init."""
        init_sew_weights(self, self.zero_init_residual)

    def stem(self, x: Tensor | Dual) -> Tensor | Dual:
        """conv7x7 s2 → BN; on a static image (repeated view over T) the conv + BN run once."""
        if isinstance(x, Tensor) and x.shape[0] > 1 and x.stride(0) == 0:
            y = self.bn1(self.conv1(x[:1]))
            return y.expand(x.shape[0], *y.shape[1:])
        return self.bn1(self.conv1(x))

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:  # [T, B, C, H, W] -> [T, B, K]
        x = self.maxpool(self.sn1(self.stem(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.head(x)

    def extra_repr(self) -> str:
        opts = [f"family={self.family!r}", f"block={self.block!r}", f"layers={self.layers}", super().extra_repr()]
        if self.connect is not None:
            opts.append(f"connect={self.connect!r}")
        if self.zero_init_residual:
            opts.append("zero_init_residual=True")
        return ", ".join(opts)


# ----------------------------------------------------------------------------------------------- build
_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _build(variant: str, method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """``variant`` = ``sew_resnet18`` … ``plain_net152``: family and depth from the name."""
    for family, prefix in _FAMILY_NAMES.items():
        if variant.startswith(prefix) and variant[len(prefix):].isdigit():
            depth = int(variant[len(prefix):])
            break
    else:  # pragma: no cover - builders below only pass known names
        raise ValueError(f"unknown ResNet variant {variant!r}")
    block, layers = _DEPTHS[depth]
    kw = merge_arch(variant, {"family": family, "block": block, "layers": layers, "name": variant}, kwargs)
    return ResNetSNN(method=method, **kw)


# -------------------------------------------------------------------------------------------- builders
@MODELS.register("sew_resnet18")
def sew_resnet18(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """SEW-ResNet-18 (Fang et al., NeurIPS 2021); 11,689,512 parameters with IF (= torchvision resnet18)."""
    return _build("sew_resnet18", method, **kwargs)


@MODELS.register("sew_resnet34")
def sew_resnet34(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """SEW-ResNet-34 (Fang et al., NeurIPS 2021); 21,797,672 parameters with IF (= torchvision resnet34)."""
    return _build("sew_resnet34", method, **kwargs)


@MODELS.register("sew_resnet50")
def sew_resnet50(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """SEW-ResNet-50 (Fang et al., NeurIPS 2021); 25,557,032 parameters with IF (= torchvision resnet50)."""
    return _build("sew_resnet50", method, **kwargs)


@MODELS.register("sew_resnet101")
def sew_resnet101(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """SEW-ResNet-101 (Fang et al., NeurIPS 2021); 44,549,160 parameters with IF (= torchvision resnet101)."""
    return _build("sew_resnet101", method, **kwargs)


@MODELS.register("sew_resnet152")
def sew_resnet152(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """SEW-ResNet-152 (Fang et al., NeurIPS 2021); 60,192,808 parameters with IF (= torchvision resnet152)."""
    return _build("sew_resnet152", method, **kwargs)


@MODELS.register("spiking_resnet18")
def spiking_resnet18(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Spiking ResNet-18 (SN after the add; baseline of Fang et al., NeurIPS 2021); 11,689,512 parameters with IF."""
    return _build("spiking_resnet18", method, **kwargs)


@MODELS.register("spiking_resnet34")
def spiking_resnet34(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Spiking ResNet-34 (baseline of Fang et al., NeurIPS 2021); 21,797,672 parameters with IF."""
    return _build("spiking_resnet34", method, **kwargs)


@MODELS.register("spiking_resnet50")
def spiking_resnet50(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Spiking ResNet-50 (baseline of Fang et al., NeurIPS 2021); 25,557,032 parameters with IF."""
    return _build("spiking_resnet50", method, **kwargs)


@MODELS.register("spiking_resnet101")
def spiking_resnet101(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Spiking ResNet-101 (baseline of Fang et al., NeurIPS 2021); 44,549,160 parameters with IF."""
    return _build("spiking_resnet101", method, **kwargs)


@MODELS.register("spiking_resnet152")
def spiking_resnet152(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Spiking ResNet-152 (baseline of Fang et al., NeurIPS 2021); 60,192,808 parameters with IF."""
    return _build("spiking_resnet152", method, **kwargs)


@MODELS.register("plain_net18")
def plain_net18(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Plain Net-18 (no shortcut; Fang et al., NeurIPS 2021 baseline); 11,515,688 parameters with IF."""
    return _build("plain_net18", method, **kwargs)


@MODELS.register("plain_net34")
def plain_net34(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Plain Net-34 (baseline of Fang et al., NeurIPS 2021); 21,623,848 parameters with IF."""
    return _build("plain_net34", method, **kwargs)


@MODELS.register("plain_net50")
def plain_net50(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Plain Net-50 (baseline of Fang et al., NeurIPS 2021); 22,780,456 parameters with IF."""
    return _build("plain_net50", method, **kwargs)


@MODELS.register("plain_net101")
def plain_net101(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Plain Net-101 (baseline of Fang et al., NeurIPS 2021); 41,772,584 parameters with IF."""
    return _build("plain_net101", method, **kwargs)


@MODELS.register("plain_net152")
def plain_net152(method: Method | str = "bptt", **kwargs: Any) -> ResNetSNN:
    """Plain Net-152 (baseline of Fang et al., NeurIPS 2021); 57,416,232 parameters with IF."""
    return _build("plain_net152", method, **kwargs)
