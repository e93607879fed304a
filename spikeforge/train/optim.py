"""Optimizers and learning-rate schedules by name (``OPTIMIZERS``, ``SCHEDULES``)."""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from spikeforge.registry import Registry

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_optimizer", "build_schedule"]

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")
SCHEDULES: Registry[torch.optim.lr_scheduler.LRScheduler] = Registry("schedule")


@OPTIMIZERS.register("sgd")
def _sgd(params: Iterable[nn.Parameter], lr: float, momentum: float = 0.9, weight_decay: float = 0.0, nesterov: bool = False):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


@OPTIMIZERS.register("adam")
def _adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0, momentum: float | None = None):
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.01, momentum: float | None = None):
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


@SCHEDULES.register("cosine")
def _cosine(optimizer: torch.optim.Optimizer, epochs: int, eta_min: float = 0.0):
    """Cosine annealing over ``epochs``, stepped once per epoch (η_min 0 as TET/DSR)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=eta_min)


@SCHEDULES.register("step")
def _step(optimizer: torch.optim.Optimizer, epochs: int, step_size: int = 30, gamma: float = 0.1):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


@SCHEDULES.register("constant")
def _constant(optimizer: torch.optim.Optimizer, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def build_optimizer(params: Iterable[nn.Parameter], config: dict[str, Any]) -> torch.optim.Optimizer:
    opts = dict(config)
    name = opts.pop("name")
    try:
        return OPTIMIZERS.lookup(name)(params, **opts)
    except TypeError as err:
        raise ValueError(f"optimizer {name!r}: bad option in {opts}: {err}") from None


def build_schedule(optimizer: torch.optim.Optimizer, config: dict[str, Any], epochs: int):
    opts = dict(config)
    name = opts.pop("name")
    try:
        return SCHEDULES.lookup(name)(optimizer, epochs, **opts)
    except TypeError as err:
        raise ValueError(f"schedule {name!r}: bad option in {opts}: {err}") from None
