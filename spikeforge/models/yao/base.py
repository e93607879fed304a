"""What Yao et al.'s networks share: one time step, the method check, the stem/head and the init.

The paper trains at the minimum latency T = 1 (the code hard-codes ``time_step = 1``). One-step
methods are refused: ``ssf`` and ``dsr`` replace BPTT by a gradient through a firing rate averaged
over T steps; at T = 1 that rate is a single binary spike, so their approximation error is as large
as the signal (SSF's bound |FO − clamp(FI)| < 1/T is 1), and at one step BPTT with the surrogate is
itself already a one-step backward — there is nothing to save.
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from spikeforge.methods import Method, get_method
from spikeforge.streams.dual import Dual
from spikeforge.models.base import SpikingModel

__all__ = ["YaoModel", "init_yao_weights", "lecun_normal_"]


class YaoModel(SpikingModel):
    """Base of ``yao_*``: a static image ``[B, C, H, W]`` (or ``[1, B, C, H, W]``) → logits ``[B, K]`` at T = 1.

    Args:
        name: registry name; num_classes: K; img_size: H = W (a multiple of 32: 32 CIFAR, 64 Tiny-ImageNet);
        in_chans: C; method: ``bptt`` (others raise, see the module docstring); T: must be 1.
    """

    def __init__(self, name: str, num_classes: int, img_size: int, in_chans: int,
                 method: Method | str = "bptt", T: int = 1) -> None:
        m = get_method(method)
        if m.min_T > 1:
            raise ValueError(
                f"{name}: method={m.name!r} cannot train this model: it runs at T=1 (SPEC §7.4), and {m.name} "
                f"needs T >= {m.min_T}: its gradient follows a firing rate averaged over T steps, which at one "
                "step is a single binary spike (approximation error as large as the signal); use method='bptt'")
        if int(T) != 1:
            raise ValueError(f"{name}: T must be 1 (the paper's and the code's single time step), got T={T}")
        if int(img_size) < 32 or int(img_size) % 32:
            raise ValueError(f"{name}: img_size must be a multiple of 32 (stem /2, three PatchMergings /8, "
                             f"dilated windows need L % 4 == 0 up to stage 2), got {img_size}")
        super().__init__(name, 1, num_classes, (in_chans, int(img_size), int(img_size)), m)
        self.img_size = int(img_size)
        self.set_head()  # one step: the logits are the head's output (λ_r = 1)

    def forward_image(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` → logits ``[B, K]``."""
        raise NotImplementedError

    def forward_features(self, x: Tensor | Dual) -> Tensor:
        if x.shape[0] != 1:
            raise ValueError(f"{self.name}: runs one time step; expected [1, B, C, H, W] or [B, C, H, W], "
                             f"got {tuple(x.shape)}")
        return self.forward_image(x[0]).unsqueeze(0)


def lecun_normal_(weight: Tensor) -> Tensor:
    """LeCun normal as timm's ``lecun_normal_``: truncated at ±2σ, σ = sqrt(1/fan_in)/0.8796 (so the variance is 1/fan_in)."""
    fan_in = weight[0].numel()
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    return nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def init_yao_weights(model: nn.Module, head: nn.Linear, mlp_linears: set[nn.Module]) -> None:
    """Sequencer2D's init (SPEC §7.4): head W = b = 0; Linear xavier-uniform, bias 0 (MLP-branch biases
    N(0, 1e-6)); Conv LeCun normal, bias 0; recurrent nets U(±1/√h) (PyTorch's default, kept)."""
    for module in model.modules():
        if module is head:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                if module in mlp_linears:
                    nn.init.normal_(module.bias, std=1e-6)
                else:
                    nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            lecun_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
