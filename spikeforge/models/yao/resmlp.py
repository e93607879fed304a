"""``yao_resmlp12``: the supplement's ResMLP12 ANN and its conversion to a T = 1 SNN (SPEC §7.4).

Layout (supplement "ResMLP12", widths as ``sequencer2d_s``; block internals inferred as standard
ResMLP): stem Conv2d(C, 48, k=2, s=2) → stages of 2/2/6/2 ResMLP blocks at widths 48/96/192/384 with
PatchMerging between them → mean over tokens → Linear(384, K). A block on tokens ``[B, N, d]``:

    x = x + token_mix(affine1(x))          (Linear(N, N) across the N = L² tokens)
    x = x + fc2(act(fc1(affine2(x))))      (channel MLP d → 4d → d)

affine(x) = α·x + β per channel (α = 1, β = 0 at init). No BatchNorm (the paper trains the ANN with
gradient clipping instead). "Modified slightly to facilitate ANN-SNN conversion" is not specified;
our modification: the activation is ReLU (not ResMLP's GELU), so it maps onto a threshold neuron.

**Conversion** (:func:`convert_to_snn`; the paper gives no mechanics — this is the simplest mapping
that keeps the weights): every activation (the ReLU of each block's MLP) becomes one Yao neuron at
T = 1, s = 1[h > 0.5] (decay 0.4, V_th 0.5, strict, rectangular surrogate, starting from 0); every
weight is copied unchanged. The result is then fine-tuned (supp. §5.2: 300 epochs, CE, Adam, wd 1e-4,
lr 1e-3 decayed by 0.1) with ``bptt``.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from spikeforge.methods import Method, get_method
from spikeforge.models.registry import MODELS
from spikeforge.models.yao.base import YaoModel, init_yao_weights
from spikeforge.models.yao.blocks import PatchMerging
from spikeforge.models.yao.neuron import YaoNeuron

__all__ = ["Affine", "ResMLPBlock", "SpikingActivation", "YaoResMLP12", "convert_to_snn"]


class Affine(nn.Module):
    """x·α + β per channel (last dim). Attributes: alpha, beta ``[d]`` (1 and 0 at init)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.alpha + self.beta


class SpikingActivation(nn.Module):
    """An activation replaced by one Yao neuron step: h ``[B, ...]`` → spikes 1[h > V_th] ``[B, ...]`` (mem_in 0)."""

    def __init__(self, method: Method | str = "bptt", neuron: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.neuron = YaoNeuron(get_method(method), neuron)

    def forward(self, h: Tensor) -> Tensor:
        return self.neuron(h)[0]


class ResMLPBlock(nn.Module):
    """Cross-token linear + residual, then channel MLP (×4) + residual. Shape: ``[B, N, d]`` → same."""

    def __init__(self, dim: int, tokens: int, act: nn.Module) -> None:
        super().__init__()
        self.affine1, self.token_mix = Affine(dim), nn.Linear(tokens, tokens)
        self.affine2, self.fc1, self.act, self.fc2 = Affine(dim), nn.Linear(dim, 4 * dim), act, nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mix(self.affine1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.fc2(self.act(self.fc1(self.affine2(x))))


class YaoResMLP12(YaoModel):
    """ResMLP12 (ANN, ``spiking=False``) or its converted T = 1 SNN (``spiking=True``).

    Args:
        num_classes: K (10). img_size: 32 or 64. in_chans: 3. dims, depths: (48, 96, 192, 384), (2, 2, 6, 2).
        spiking: activations are Yao neurons instead of ReLU. neuron: options over the Yao neuron.
        method: ``bptt`` only. T: 1.

    Shape:
        x: ``[B, in_chans, img_size, img_size]`` (or with a leading T = 1). Output: logits ``[B, K]``.
    """

    def __init__(self, num_classes: int = 10, img_size: int = 32, in_chans: int = 3,
                 dims: Sequence[int] = (48, 96, 192, 384), depths: Sequence[int] = (2, 2, 6, 2),
                 spiking: bool = False, neuron: Mapping[str, Any] | None = None,
                 method: Method | str = "bptt", T: int = 1) -> None:
        super().__init__("yao_resmlp12", num_classes, img_size, in_chans, method, T)
        self.spiking = bool(spiking)
        self.config = {"num_classes": num_classes, "img_size": img_size, "in_chans": in_chans,
                       "dims": tuple(dims), "depths": tuple(depths), "neuron": neuron}
        L = img_size // 2
        self.stem = nn.Conv2d(in_chans, dims[0], kernel_size=2, stride=2)
        self.stages, self.merges = nn.ModuleList(), nn.ModuleList()
        for s, (d, n) in enumerate(zip(dims, depths)):
            self.stages.append(nn.Sequential(*[
                ResMLPBlock(d, L * L, SpikingActivation(self.method, neuron) if self.spiking else nn.ReLU())
                for _ in range(n)]))
            if s < len(dims) - 1:
                self.merges.append(PatchMerging(d))
                L //= 2
        self.head = nn.Linear(dims[-1], num_classes)
        init_yao_weights(self, self.head, set())

    def forward_image(self, x: Tensor) -> Tensor:
        x = self.stem(x).permute(0, 2, 3, 1)  # [B, L, L, d]
        for s, stage in enumerate(self.stages):
            x = stage(x.flatten(1, 2)).unflatten(1, x.shape[1:3])
            if s < len(self.merges):
                x = self.merges[s](x)
        return self.head(x.mean(dim=(1, 2)))

    def extra_repr(self) -> str:
        return f"spiking={self.spiking}, img_size={self.img_size}, {super().extra_repr()}"


def convert_to_snn(ann: YaoResMLP12) -> YaoResMLP12:
    """The T = 1 SNN of a trained ``yao_resmlp12`` ANN: each ReLU → one Yao neuron, all weights copied.

    Returns a deep copy of ``ann`` (same dtype, device, training mode) whose blocks' ``act`` is a
    :class:`SpikingActivation`; ``ann`` is left unchanged. Its ``state_dict`` has exactly the ANN's keys
    and values (the neurons hold no parameters).
    """
    if not isinstance(ann, YaoResMLP12):
        raise TypeError(f"convert_to_snn: expected a YaoResMLP12 (yao_resmlp12), got {type(ann).__name__}")
    if ann.spiking:
        raise ValueError("convert_to_snn: the model is already spiking")
    snn = copy.deepcopy(ann)
    for stage in snn.stages:
        for block in stage:
            block.act = SpikingActivation(snn.method, ann.config["neuron"])
    snn.spiking = True
    return snn


@MODELS.register("yao_resmlp12")
def yao_resmlp12(method: Method | str = "bptt", **kwargs: Any) -> YaoResMLP12:
    """Supplement ResMLP12 as an ANN (``spiking=True``: the converted SNN); 4,866,082 parameters at CIFAR-10 (ANN and SNN alike)."""
    return YaoResMLP12(method=method, **kwargs)
