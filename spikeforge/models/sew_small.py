"""The small SEW networks: DVS Gesture 7B-Net, CIFAR10-DVS Wide-7B-Net, CIFAR-10 lightweight (SPEC §7.1).

"Deep Residual Learning in Spiking Neural Networks" (Fang et al., NeurIPS 2021), Table 4 / Table 5
and the appendix networks; official code ``fangwei123456/Spike-Element-Wise-ResNet``
``dvsgesture/smodels.py`` and ``cifar10dvs/smodels.py``.

- **7B-Net** (DVS128 Gesture, ``[T, B, 2, 128, 128]``): c32k3s1-BN-PLIF-{SEW Block(c32)-MPk2s2}*7-FC11.
- **Wide-7B-Net** (CIFAR10-DVS, ``[T, B, 2, 128, 128]``): c64k3s1-BN-PLIF-{SEW Block(c64)-MPk2s2}*4
  -c128k3s1-BN-PLIF-{SEW Block(c128)-MPk2s2}*3-FC10.
- **CIFAR-10 lightweight** (``[B, 3, 32, 32]``): c32k3s1-BN-IF-{{SEW Block(c32k3s1)}*2-MPk2s2}*5-FC10, ADD.

A SEW Block(c) is conv3x3-BN-SN-conv3x3-BN-SN giving A, output g(A, S) with S the block input. The
baselines of supp. Table S2 swap the block (``family``; the official code's ``BasicBlock`` and ``PlainBlock``):
**Spiking** SN(BN(conv3x3(SN(BN(conv3x3(S))))) + S), the SN after the addition; **Plain**
conv3x3-BN-SN-conv3x3-BN-SN, no shortcut. Each has two SNs per block, so the parameter count does not
depend on the family. The paper's stem/transition conv is 3x3; the official code uses 1x1 (``up_kernel=1``).
Readout: flatten → FC per step → mean over T. Neurons: PLIF (τ0 = 2) on the DVS nets, IF on CIFAR-10;
V_th = 1, V_reset = 0, detached reset, ATan α = 2.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from spikeforge.layers import TimeDistributed
from spikeforge.methods import Method
from spikeforge.streams.dual import Dual
from spikeforge.models._common import PLIF_NEURON, merge_arch
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS
from spikeforge.models.sew_resnet import (
    IF_NEURON,
    ConvBN,
    PlainBlock,
    SEWBlock,
    SNFactory,
    SpikingResBlock,
    family_connect,
    init_sew_weights,
    residual_branch,
)

__all__ = ["BLOCKS", "PLIF_NEURON", "SEWSmallNet"]


# ---------------------------------------------------------------------------------------------- blocks
def sew_block(channels: int, sn: SNFactory, connect: str | None) -> SEWBlock:
    """SEW Block(c): A = SN(BN(conv3x3(SN(BN(conv3x3(S)))))), O = g(A, S). ``[T, B, c, H, W]`` → same."""
    return SEWBlock(residual_branch(False, channels, channels, 1, sn, True), None, connect)


def spiking_block(channels: int, sn: SNFactory, connect: str | None) -> SpikingResBlock:
    """Spiking ResNet block(c): SN(BN(conv3x3(SN(BN(conv3x3(S))))) + S). ``[T, B, c, H, W]`` → same."""
    return SpikingResBlock(residual_branch(False, channels, channels, 1, sn, False), None, sn())


def plain_block(channels: int, sn: SNFactory, connect: str | None) -> PlainBlock:
    """Plain block(c): SN(BN(conv3x3(SN(BN(conv3x3(S)))))), no shortcut. ``[T, B, c, H, W]`` → same."""
    return PlainBlock(residual_branch(False, channels, channels, 1, sn, True))


#: family -> builder of one block from (channels, SN factory, connect); keys are ``sew_resnet.FAMILIES``
BLOCKS: dict[str, Callable[[int, SNFactory, str | None], nn.Module]] = {
    "sew": sew_block, "spiking": spiking_block, "plain": plain_block}


# ----------------------------------------------------------------------------------------------- model
class SEWSmallNet(SpikingModel):
    """A plain stack of SEW (or Spiking / Plain) blocks and 2x2 max-pools with a linear head (the SEW DVS /
    CIFAR nets).

    Args:
        stages: ``((channels, blocks_per_group, groups), ...)``; each stage starts with an up-conv
            (k = ``up_kernel``) → BN → SN when the channel count changes (the first stage's is the
            stem), then ``groups`` times {``blocks_per_group`` blocks, MPk2s2}.
        in_channels: input channels (2 for DVS, 3 for CIFAR-10).
        input_size: input height = width; the FC takes channels·(input_size / 2^pools)².
        num_classes: K. T: time steps (a static input is repeated over them).
        family: the block, a :data:`BLOCKS` name: ``"sew"`` (default), ``"spiking"`` (Spiking ResNet) or
            ``"plain"`` (no shortcut), SEW supp. Table S2.
        connect: ``"add"`` (default for ``"sew"``), ``"and"``, ``"iand"``; only for ``"sew"``.
        neuron: neuron config; dsr_neuron: DSRNode config for ``method="dsr"`` (default ``None``: raises).
        up_kernel: stem / transition conv size, 3 (paper, default) or 1 (official code).
        zero_init_residual: γ = 0 in each block's last BN (SEW AND: also β = 1), so SEW blocks start as
            O = S and Spiking blocks as SN(S); not offered for ``"plain"`` (no shortcut).

    Shape:
        x: ``[T, B, in_channels, input_size, input_size]`` (or ``[B, ...]`` static); logits ``[B, K]``.

    Raises:
        ValueError: unknown family or connect, ``connect`` for a non-SEW family, ``zero_init_residual`` for
            ``"plain"``, ``up_kernel`` not 1 or 3, ``input_size`` smaller than 2^pools, a method the neurons
            cannot take, wrong input shape.
    """

    def __init__(self, name: str, stages: Sequence[tuple[int, int, int]], in_channels: int, input_size: int,
                 num_classes: int, T: int, family: str = "sew", connect: str | None = None,
                 neuron: Mapping[str, Any] | None = None, dsr_neuron: Mapping[str, Any] | None = None,
                 up_kernel: int = 3, zero_init_residual: bool = False, method: Method | str = "bptt") -> None:
        connect = family_connect(name, family, connect, zero_init_residual)
        if up_kernel not in (1, 3):
            raise ValueError(f"{name}: up_kernel must be 3 (paper) or 1 (official code), got {up_kernel!r}")
        pools = sum(groups for _, _, groups in stages)
        if int(input_size) < 2 ** pools:
            raise ValueError(f"{name}: input_size must be >= 2^{pools} = {2 ** pools} ({pools} 2x2 max-pools), got {input_size}")
        super().__init__(name, T, num_classes, (int(in_channels), int(input_size), int(input_size)), method)
        self.family, self.connect = family, connect
        self.up_kernel, self.zero_init_residual = up_kernel, bool(zero_init_residual)
        make_block = BLOCKS[family]
        sn = self.neuron_factory(neuron if neuron is not None else PLIF_NEURON, dsr_neuron)
        layers: list[nn.Module] = []
        cin, size = int(in_channels), int(input_size)
        for channels, blocks, groups in stages:
            if channels != cin:
                layers.append(ConvBN(cin, channels, up_kernel, 1, sn()))
                cin = channels
            for _ in range(groups):
                layers.extend(make_block(channels, sn, connect) for _ in range(blocks))
                layers.append(TimeDistributed(nn.MaxPool2d(2, 2)))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.head = TimeDistributed(nn.Flatten(), nn.Linear(cin * size * size, num_classes))
        self.set_head()  # linear head: the logits are the time mean of the per-step FC outputs under every method
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out) convs, BN γ = 1 β = 0; optional zero-init of each block's last BN."""
        init_sew_weights(self, self.zero_init_residual)

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:  # [T, B, C, H, W] -> [T, B, K]
        return self.head(self.features(x))

    def extra_repr(self) -> str:
        opts = [super().extra_repr()]
        if self.family != "sew":
            opts.append(f"family={self.family!r}")
        if self.connect is not None:
            opts.append(f"connect={self.connect!r}")
        if self.up_kernel != 3:
            opts.append(f"up_kernel={self.up_kernel}")
        if self.zero_init_residual:
            opts.append("zero_init_residual=True")
        return ", ".join(opts)


_ARCHS: dict[str, dict[str, Any]] = {
    "sew_7b_gesture": {"stages": ((32, 1, 7),), "in_channels": 2},
    "sew_wide7b_cifar10dvs": {"stages": ((64, 1, 4), (128, 1, 3)), "in_channels": 2},
    "sew_cifar10_small": {"stages": ((32, 2, 5),), "in_channels": 3},
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "sew_7b_gesture": {"num_classes": 11, "T": 16, "input_size": 128, "neuron": PLIF_NEURON},
    "sew_wide7b_cifar10dvs": {"num_classes": 10, "T": 16, "input_size": 128, "neuron": PLIF_NEURON},
    "sew_cifar10_small": {"num_classes": 10, "T": 4, "input_size": 32, "neuron": IF_NEURON},
}


def _build(variant: str, method: Method | str = "bptt", **kwargs: Any) -> SEWSmallNet:
    """Defaults < user kwargs < fixed arch args (a conflicting arch value raises)."""
    kw = merge_arch(variant, {**_ARCHS[variant], "name": variant}, {**_DEFAULTS[variant], **kwargs})
    return SEWSmallNet(method=method, **kw)


@MODELS.register("sew_7b_gesture")
def sew_7b_gesture(method: Method | str = "bptt", **kwargs: Any) -> SEWSmallNet:
    """7B-Net, DVS128 Gesture (Fang et al., NeurIPS 2021); ``family="spiking"|"plain"`` for the supp. Table S2
    baselines; 130,938 parameters in every family (PLIF w incl.; 130,426 with up_kernel=1)."""
    return _build("sew_7b_gesture", method, **kwargs)


@MODELS.register("sew_wide7b_cifar10dvs")
def sew_wide7b_cifar10dvs(method: Method | str = "bptt", **kwargs: Any) -> SEWSmallNet:
    """Wide-7B-Net, CIFAR10-DVS (Fang et al., NeurIPS 2021); 1,258,778 parameters (PLIF w incl.)."""
    return _build("sew_wide7b_cifar10dvs", method, **kwargs)


@MODELS.register("sew_cifar10_small")
def sew_cifar10_small(method: Method | str = "bptt", **kwargs: Any) -> SEWSmallNet:
    """CIFAR-10 lightweight SEW net, ADD (Fang et al., NeurIPS 2021); 186,858 parameters with IF."""
    return _build("sew_cifar10_small", method, **kwargs)
