"""The PLIF networks of Fang et al., "Incorporating Learnable Membrane Time Constant to Enhance Learning
of Spiking Neural Networks", ICCV 2021 (supp. Table S1; SPEC §7.2).

| name | input | structure |
|---|---|---|
| ``plif_mnist``, ``plif_fmnist`` | 1×28² | {c128-BN-PLIF-MP2}*2-DP-FC2048-PLIF-DP-FC100-PLIF-vote |
| ``plif_nmnist`` | 2×34² | same |
| ``plif_cifar10`` | 3×32² | {{c256-BN-PLIF}*3-MP2}*2-DP-FC2048-PLIF-DP-FC100-PLIF-vote |
| ``plif_cifar10dvs`` | 2×128² | {c128-BN-PLIF-MP2}*4-DP-FC512-PLIF-DP-FC100-PLIF-vote |
| ``plif_dvsgesture`` | 2×128² | {c128-BN-PLIF-MP2}*5-DP-FC512-PLIF-DP-FC110-PLIF-vote (→ 11) |

Convs 3×3 s1 p1 and both FCs without bias (SpikingJelly's ``parametric_lif_net``); BN over T·B; the last
FC has 10·K neurons and the vote averages each group of 10 (AvgPool1d(10, 10)); DP is dropout with one
mask per sample reused at every step (p = 0.5). The logits are the voted firing rate (readout λ_r = 1),
the quantity the paper's MSE loss compares with the one-hot target.

Neuron: PLIF (SPEC §2), τ0 = 2 (w0 = 0), V_th 1, hard reset to 0, detached reset, ATan α = 2 — one
learnable ``w`` per layer. ``bptt`` trains it; ``ssf`` keeps the spiking output (the loss is on rates)
and freezes ``w`` with a warning; ``dsr`` raises: PLIF neurons cannot take the DSR form (SPEC §5).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from spikeforge.layers import (
    BatchNormTB,
    TimeDistributed,
    TimeFixedDropout,
    VotingLayer,
)
from spikeforge.methods import Method
from spikeforge.streams.dual import Dual
from spikeforge.models._common import PLIF_NEURON, merge_arch
from spikeforge.models.base import SpikingModel
from spikeforge.models.registry import MODELS

__all__ = ["PLIFNet", "PLIF_NEURON"]


# -- blocks --------------------------------------------------------------------------------------------
class ConvBNSpike(nn.Module):
    """``conv3x3 (no bias) → BN over T·B → PLIF``. Shape: ``[T, B, in_ch, H, W]`` → ``[T, B, out_ch, H, W]``."""

    def __init__(self, in_ch: int, out_ch: int, sn: nn.Module) -> None:
        super().__init__()
        self.conv = TimeDistributed(nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False))
        self.bn = BatchNormTB(out_ch)
        self.sn = sn

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:
        return self.sn(self.bn(self.conv(x)))


# -- model ---------------------------------------------------------------------------------------------
class PLIFNet(SpikingModel):
    """A PLIF network of SPEC §7.2.

    Args:
        stages: number of stages (each ends in MaxPool2d(2, 2)); convs_per_stage: conv units per stage.
        channels: conv width (128 or 256); hidden: first FC's width (2048 or 512).
        input_shape: ``(C, H, W)`` of the data set (fixed per data set by the builders).
        T: time steps (builders: 8 static, 10 N-MNIST, 20 DVS). num_classes: K (10; 11 for DVS Gesture).
        method: ``bptt`` or ``ssf`` (``dsr`` raises). neuron: config (default :data:`PLIF_NEURON`).
        voting_size: neurons per class in the last FC (10). dropout: p (0.5).

    Shape:
        x: ``[T, B, C, H, W]`` (or ``[B, C, H, W]``, repeated over T). Output: logits ``[B, K]`` = voted firing rates.
    """

    def __init__(self, stages: int, convs_per_stage: int, channels: int, hidden: int, input_shape: Sequence[int],
                 T: int = 8, num_classes: int = 10, method: Method | str = "bptt",
                 neuron: Mapping[str, Any] | None = None, voting_size: int = 10, dropout: float = 0.5,
                 name: str = "plif_net") -> None:
        super().__init__(name, T, num_classes, input_shape, method)
        neuron = dict(PLIF_NEURON if neuron is None else neuron)
        make_sn = self.neuron_factory(neuron)  # dsr: PLIF raises with the reason
        in_ch, side, layers = int(input_shape[0]), int(input_shape[1]), []
        for _ in range(stages):
            for _ in range(convs_per_stage):
                layers.append(ConvBNSpike(in_ch, channels, make_sn()))
                in_ch = channels
            layers.append(TimeDistributed(nn.MaxPool2d(2, 2)))
            side //= 2
        self.features = nn.Sequential(*layers)
        self.flatten = TimeDistributed(nn.Flatten(1))
        self.dropout1 = TimeFixedDropout(dropout)
        self.fc1 = TimeDistributed(nn.Linear(channels * side * side, hidden, bias=False))
        self.sn1 = make_sn()
        self.dropout2 = TimeFixedDropout(dropout)
        self.fc2 = TimeDistributed(nn.Linear(hidden, num_classes * voting_size, bias=False))
        self.sn2 = make_sn()
        self.vote = TimeDistributed(VotingLayer(voting_size))
        self.set_head()  # the logits are the voted firing rates (λ_r = 1) under every method

    def forward_features(self, x: Tensor | Dual) -> Tensor | Dual:
        x = self.dropout1(self.flatten(self.features(x)))
        x = self.dropout2(self.sn1(self.fc1(x)))
        return self.vote(self.sn2(self.fc2(x)))


# -- builders ------------------------------------------------------------------------------------------
_ARCH = {
    "plif_mnist": dict(stages=2, convs_per_stage=1, channels=128, hidden=2048, input_shape=(1, 28, 28)),
    "plif_fmnist": dict(stages=2, convs_per_stage=1, channels=128, hidden=2048, input_shape=(1, 28, 28)),
    "plif_nmnist": dict(stages=2, convs_per_stage=1, channels=128, hidden=2048, input_shape=(2, 34, 34)),
    "plif_cifar10": dict(stages=2, convs_per_stage=3, channels=256, hidden=2048, input_shape=(3, 32, 32)),
    "plif_cifar10dvs": dict(stages=4, convs_per_stage=1, channels=128, hidden=512, input_shape=(2, 128, 128)),
    "plif_dvsgesture": dict(stages=5, convs_per_stage=1, channels=128, hidden=512, input_shape=(2, 128, 128)),
}
_DEFAULTS = {"plif_mnist": dict(T=8), "plif_fmnist": dict(T=8), "plif_nmnist": dict(T=10), "plif_cifar10": dict(T=8),
             "plif_cifar10dvs": dict(T=20), "plif_dvsgesture": dict(T=20, num_classes=11)}


def _build(variant: str, method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    kwargs = {**_DEFAULTS[variant], **kwargs}
    return PLIFNet(method=method, **merge_arch(variant, dict(_ARCH[variant], name=variant), kwargs))


@MODELS.register("plif_mnist")
def plif_mnist(method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    """PLIF net for MNIST (Fang et al. ICCV 2021, T = 8): 13,198,980 params (incl. 4 PLIF w)."""
    return _build("plif_mnist", method, **kwargs)


@MODELS.register("plif_fmnist")
def plif_fmnist(method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    """PLIF net for Fashion-MNIST (Fang et al. ICCV 2021, T = 8): 13,198,980 params (incl. 4 PLIF w)."""
    return _build("plif_fmnist", method, **kwargs)


@MODELS.register("plif_nmnist")
def plif_nmnist(method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    """PLIF net for N-MNIST 2×34² (Fang et al. ICCV 2021, T = 10): 17,132,292 params (incl. 4 PLIF w)."""
    return _build("plif_nmnist", method, **kwargs)


@MODELS.register("plif_cifar10")
def plif_cifar10(method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    """PLIF net for CIFAR-10 (Fang et al. ICCV 2021, T = 8): 36,718,344 params (incl. 8 PLIF w)."""
    return _build("plif_cifar10", method, **kwargs)


@MODELS.register("plif_cifar10dvs")
def plif_cifar10dvs(method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    """PLIF net for CIFAR10-DVS 2×128² (Fang et al. ICCV 2021, T = 20): 4,691,206 params (incl. 6 PLIF w)."""
    return _build("plif_cifar10dvs", method, **kwargs)


@MODELS.register("plif_dvsgesture")
def plif_dvsgesture(method: Method | str = "bptt", **kwargs: Any) -> PLIFNet:
    """PLIF net for DVS128 Gesture 2×128² (Fang et al. ICCV 2021, T = 20, 11 classes): 1,698,311 params
    (incl. 7 PLIF w)."""
    return _build("plif_dvsgesture", method, **kwargs)
