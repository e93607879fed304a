"""Yao et al. (ACML 2023) windowed spiking token-mixer networks at T = 1 (SPEC §7.4 "Network").

The code's ``sequencer2d_s`` layout: stem Conv2d(C, 48, k=2, s=2) → four stages of widths
48/96/192/384 and depths 2/2/6/2 (12 blocks, map sides L = H/2, H/4, H/8, H/16), PatchMerging after
stages 0–2, mean over the map → Linear(384, K). Block k of the network (counted from 0) uses
quadrant windows when k is even and dilated windows when k is odd, except in the last stage, which
runs quadrants only (the code's global ``indicator`` turned into per-block flags). Recurrent cells
carry a membrane map ``[B, L, L, out_dim]`` from block to block (zero at the first block; through a
learned PatchMerging(out_dim) between stages), the CNN cell none.

Presets (``PRESETS``): ``code`` = the CIFAR-10 files: ``sin`` fusion, no region threshold, Bernoulli
encoding; ``paper`` = the paper's text: ``sin`` fusion, Th_R = 0.1 in every dilated block, Bernoulli.
Explicit ``fusion``/``region_threshold``/``encode`` override the preset (the code's CIFAR-100 CNN
file: ``fusion="mean", region_threshold=0.2``; ``region_threshold="off"`` turns it off).

Parameter counts (CIFAR-10, every module runs): lstm 14,925,466 (= the code's thop figure; its
30,630,298 includes 9 PatchMergings it never calls), cnn 13,885,402 (the code's 26,843,098 adds an
unused backward cell and Conv1d per block), rnn 5,646,298, birnn 8,429,338, gru 12,760,090.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from spikeforge.methods import Method
from spikeforge.models._common import merge_arch
from spikeforge.models.registry import MODELS
from spikeforge.models.yao.base import YaoModel, init_yao_weights
from spikeforge.models.yao.blocks import Mlp, PatchMerging, WindowMixer, YaoBlock
from spikeforge.models.yao.cells import CELLS, SpikingCell
from spikeforge.models.yao.encoding import Encoder, get_encoder
from spikeforge.models.yao.fusions import Fusion, get_fusion
from spikeforge.registry import lookup_in

__all__ = ["PRESETS", "YaoSNN", "block_kinds"]

#: preset name -> the options it fixes (explicit arguments win)
PRESETS: dict[str, dict[str, Any]] = {
    "code": {"fusion": "sin", "region_threshold": None, "encode": "bernoulli"},
    "paper": {"fusion": "sin", "region_threshold": 0.1, "encode": "bernoulli"},
}


def block_kinds(depths: Sequence[int]) -> list[list[str]]:
    """Window kind of every block, per stage: quadrant for even global block index, dilated for odd;
    the last stage quadrant only."""
    kinds, k = [], 0
    for stage, depth in enumerate(depths):
        last = stage == len(depths) - 1
        kinds.append(["quadrant" if last or (k + i) % 2 == 0 else "dilated" for i in range(depth)])
        k += depth
    return kinds


class YaoSNN(YaoModel):
    """Sequencer2D-style SNN with a windowed spiking token mixer.

    Args:
        cell: a ``CELLS`` name (``lstm``, ``cnn``, ``rnn``, ``birnn``, ``gru``).
        num_classes: K (10). img_size: H = W (32; 64 for Tiny-ImageNet). in_chans: 3.
        dims, depths: stage widths (48, 96, 192, 384) and block counts (2, 2, 6, 2); the cell's hidden
            size h equals the stage width.
        preset: ``"code"`` or ``"paper"`` (see the module docstring).
        fusion: a ``FUSIONS`` name or mapping (``{"name": "linear", "alpha": 0.5}``); None = the preset's.
        region_threshold: Th_R after dilated condense; a float, ``"off"``, or None = the preset's.
        encode: an ``ENCODERS`` name or mapping (``bernoulli``, ``threshold``) or instance; None = the preset's.
        mlp_ratio: MLP hidden width / d (3). drop_rate: MLP dropout. drop_path_rate: stochastic depth,
            linear over the blocks from 0.
        neuron: options over the Yao neuron (decay 0.4, V_th 0.5, strict, rect).
        batch_windows: run the four windows through the LSTM/convs as one batch (same values).
        method: ``bptt`` only (T = 1). T: 1.

    Shape:
        x: ``[B, in_chans, img_size, img_size]`` (or with a leading T = 1). Output: logits ``[B, K]``.
    """

    def __init__(self, cell: str = "lstm", num_classes: int = 10, img_size: int = 32, in_chans: int = 3,
                 dims: Sequence[int] = (48, 96, 192, 384), depths: Sequence[int] = (2, 2, 6, 2),
                 preset: str = "code", fusion: str | Mapping[str, Any] | Fusion | None = None,
                 region_threshold: float | str | None = None,
                 encode: str | Mapping[str, Any] | Encoder | None = None, mlp_ratio: float = 3.0,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0, neuron: Mapping[str, Any] | None = None,
                 batch_windows: bool = True, method: Method | str = "bptt", T: int = 1) -> None:
        super().__init__(f"yao_{cell}_snn", num_classes, img_size, in_chans, method, T)
        dims, depths = [int(d) for d in dims], [int(n) for n in depths]
        if len(dims) != 4 or len(depths) != 4 or min(dims) < 1 or min(depths) < 1:
            raise ValueError(f"{self.name}: dims and depths need 4 positive entries (one per stage), "
                             f"got dims={dims}, depths={depths}")
        if any(b != 2 * a for a, b in pairwise(dims)):
            raise ValueError(f"{self.name}: PatchMerging doubles the width; dims must double stage by stage, got {dims}")
        opts = lookup_in("yao preset", PRESETS, preset)
        self.preset = preset
        self.fusion = get_fusion(fusion if fusion is not None else opts["fusion"])
        self.encoder = get_encoder(encode if encode is not None else opts["encode"])
        self.region_threshold = _threshold(opts["region_threshold"] if region_threshold is None else region_threshold)
        kinds = block_kinds(depths)
        rates = torch.linspace(0, float(drop_path_rate), sum(depths)).tolist()

        def make_cell(d: int) -> SpikingCell:
            return lookup_in("yao cell", CELLS, cell)(d=d, h=d, method=self.method, neuron=neuron,
                                                      batch_windows=batch_windows)

        self.carries_map = make_cell(1).carries_map  # a probe: recurrent cells carry a membrane map
        self.stem = nn.Conv2d(in_chans, dims[0], kernel_size=2, stride=2)
        self.stages, self.merges, self.map_merges = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        mlp_linears: set[nn.Module] = set()
        k = 0
        for s, (d, stage_kinds) in enumerate(zip(dims, kinds)):
            blocks = nn.ModuleList()
            for kind in stage_kinds:
                c = make_cell(d)
                mlp = Mlp(d, mlp_ratio, drop_rate)
                mlp_linears |= {mlp.fc1, mlp.fc2}
                blocks.append(YaoBlock(WindowMixer(d, c, kind, self.fusion, self.encoder, self.region_threshold),
                                       mlp, rates[k]))
                k += 1
            self.stages.append(blocks)
            if s < len(dims) - 1:
                self.merges.append(PatchMerging(d))
                if self.carries_map:
                    self.map_merges.append(PatchMerging(c.out_dim))
        self.head = nn.Linear(dims[-1], num_classes)
        init_yao_weights(self, self.head, mlp_linears)

    def forward_image(self, x: Tensor) -> Tensor:
        x = self.stem(x).permute(0, 2, 3, 1)  # [B, L, L, d] channels-last
        mem_map = None
        if self.carries_map:
            first = self.stages[0][0].mixer.cell.out_dim
            mem_map = x.new_zeros(*x.shape[:3], first)
        for s, blocks in enumerate(self.stages):
            for block in blocks:
                x, mem_map = block(x, mem_map)
            if s < len(self.merges):
                x = self.merges[s](x)
                if self.carries_map:
                    mem_map = self.map_merges[s](mem_map)
        return self.head(x.mean(dim=(1, 2)))

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}, img_size={self.img_size}, {super().extra_repr()}"


def _threshold(value: float | str | None) -> float | None:
    if value is None or value == "off":
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"region_threshold must be a number in [0, 1), 'off' or None, got {value!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"region_threshold must lie in [0, 1), got {value}")
    return value


def _build(arch_cell: str, method: Method | str = "bptt", **kwargs: Any) -> YaoSNN:
    """The ``yao_<cell>_snn`` variant: user kwargs over the fixed cell (a different ``cell`` raises)."""
    return YaoSNN(**merge_arch(f"yao_{arch_cell}_snn", {"cell": arch_cell}, kwargs), method=method)


@MODELS.register("yao_lstm_snn")
def yao_lstm_snn(method: Method | str = "bptt", **kwargs: Any) -> YaoSNN:
    """Yao et al. LSTM-SNN (bidirectional LSTM cell); 14,925,466 parameters at CIFAR-10."""
    return _build("lstm", method, **kwargs)


@MODELS.register("yao_cnn_snn")
def yao_cnn_snn(method: Method | str = "bptt", **kwargs: Any) -> YaoSNN:
    """Yao et al. CNN-SNN (two conv3x3 cell); 13,885,402 parameters at CIFAR-10."""
    return _build("cnn", method, **kwargs)


@MODELS.register("yao_rnn_snn")
def yao_rnn_snn(method: Method | str = "bptt", **kwargs: Any) -> YaoSNN:
    """Supplement Table 2 "RNN" (unidirectional tanh RNN cell, inferred); 5,646,298 parameters at CIFAR-10."""
    return _build("rnn", method, **kwargs)


@MODELS.register("yao_birnn_snn")
def yao_birnn_snn(method: Method | str = "bptt", **kwargs: Any) -> YaoSNN:
    """Supplement Table 2 "Bi-RNN" (bidirectional tanh RNN cell, inferred); 8,429,338 parameters at CIFAR-10."""
    return _build("birnn", method, **kwargs)


@MODELS.register("yao_gru_snn")
def yao_gru_snn(method: Method | str = "bptt", **kwargs: Any) -> YaoSNN:
    """Supplement Table 2 "GRU" (bidirectional GRU cell, inferred); 12,760,090 parameters at CIFAR-10."""
    return _build("gru", method, **kwargs)
