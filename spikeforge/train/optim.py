"""Optimizers and learning-rate schedules by name (``OPTIMIZERS``, ``SCHEDULES``).

A schedule is a pure function of the position in the run, so resuming needs no scheduler state:
``lr(epoch, step) = warm-up(step)`` for the first ``warmup_steps`` iterations (linear from
``warmup_lr`` to the base lr; timm's and the DSR code's per-iteration warm-up), else
``shape(epoch, base_lr) · noise(epoch)``, where ``shape`` is a registered per-epoch curve
(``cosine``, ``step``, ``constant``; the torch schedulers' values when stepped once per epoch) and
``noise`` is timm's lr noise (a fixed-seed normal draw per epoch, redrawn until within ±``lr_noise_pct``).
"""
from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from spikeforge.registry import Registry
from spikeforge.train.options import check_options

__all__ = ["OPTIMIZERS", "SCHEDULES", "LRSchedule", "build_optimizer", "build_schedule", "check_sections"]

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")
#: name -> builder ``(epochs, **options) -> ((epoch, base_lr) -> lr)``
SCHEDULES: Registry[Callable[[int, float], float]] = Registry("schedule")


@OPTIMIZERS.register("sgd")
def _sgd(params: Iterable[nn.Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
         nesterov: bool = False, dampening: float = 0.0):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                           dampening=dampening)


@OPTIMIZERS.register("adam")
def _adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


@OPTIMIZERS.register("adamw")
def _adamw(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.01,
           betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


@SCHEDULES.register("cosine")
def _cosine(epochs: int, t_max: int | None = None, eta_min: float = 0.0) -> Callable[[int, float], float]:
    """Cosine annealing from the base lr to ``eta_min`` (absolute) over ``t_max`` epochs (default: the run's),
    then flat (torch's ``CosineAnnealingLR`` stepped per epoch)."""
    period = max(1, int(t_max if t_max is not None else epochs))
    return lambda e, base: eta_min + (base - eta_min) * (1.0 + math.cos(math.pi * min(e, period) / period)) / 2.0


@SCHEDULES.register("step")
def _step(epochs: int, step_size: int = 30, gamma: float = 0.1) -> Callable[[int, float], float]:
    """Multiply by ``gamma`` every ``step_size`` epochs (torch's ``StepLR``)."""
    if int(step_size) < 1:
        raise ValueError(f"schedule 'step': step_size must be >= 1, got {step_size}")
    return lambda e, base: base * float(gamma) ** (e // int(step_size))


@SCHEDULES.register("constant")
def _constant(epochs: int) -> Callable[[int, float], float]:
    return lambda e, base: base


class LRSchedule:
    """Sets the lr of every parameter group from the position in the run; see the module docstring.

    Args:
        optimizer: its groups' ``lr`` at construction are the base lrs.
        shape: ``(epoch, base_lr) -> lr`` (built by a :data:`SCHEDULES` entry).
        epochs: the run's length in epochs (for ``lr_noise`` as a fraction of it).
        steps_per_epoch: iterations per epoch (turns ``warmup_epochs`` into iterations).
        warmup_steps, warmup_epochs: linear warm-up length (iterations; epochs); they add.
        warmup_lr: lr at the first iteration of the warm-up (absolute, like timm's).
        lr_noise: fraction (< 1) or epoch (>= 1) of the run after which noise starts; None = off.
        lr_noise_std, lr_noise_pct: std of the relative noise and its bound; seed: the noise seed.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, shape: Callable[[int, float], float], epochs: int, steps_per_epoch: int,
                 warmup_steps: int = 0, warmup_epochs: int = 0, warmup_lr: float = 0.0, lr_noise: float | None = None,
                 lr_noise_std: float = 1.0, lr_noise_pct: float = 0.67, seed: int = 0) -> None:
        self.optimizer, self.shape = optimizer, shape
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.warmup = int(warmup_steps) + int(warmup_epochs) * int(steps_per_epoch)
        if self.warmup < 0:
            raise ValueError(f"schedule: warm-up length must be >= 0, got {self.warmup}")
        self.warmup_lr = float(warmup_lr)
        self.noise_start = None if lr_noise is None else (lr_noise * epochs if lr_noise < 1 else lr_noise)
        self.noise_std, self.noise_pct, self.seed = float(lr_noise_std), float(lr_noise_pct), int(seed)

    def noise(self, epoch: int) -> float:
        """timm's multiplicative lr noise factor for ``epoch`` (1 before ``lr_noise``)."""
        if self.noise_start is None or epoch < self.noise_start:
            return 1.0
        g = torch.Generator().manual_seed(self.seed + epoch)
        while True:
            n = float(torch.randn(1, generator=g)) * self.noise_std
            if abs(n) < self.noise_pct:
                return 1.0 + n

    def lrs(self, epoch: int, step: int) -> list[float]:
        """The lrs at ``epoch`` (0-based) and run iteration ``step`` (0-based, counted over epochs)."""
        if step < self.warmup:
            return [self.warmup_lr + (b - self.warmup_lr) * step / self.warmup for b in self.base_lrs]
        f = self.noise(epoch)
        return [self.shape(epoch, b) * f for b in self.base_lrs]

    def apply(self, epoch: int, step: int) -> None:
        """Set the optimizer's lrs for the iteration about to run."""
        for group, lr in zip(self.optimizer.param_groups, self.lrs(epoch, step)):
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {"base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lrs = list(state["base_lrs"])


_WRAPPER_KEYS = ("warmup_steps", "warmup_epochs", "warmup_lr", "lr_noise", "lr_noise_std", "lr_noise_pct")


def build_optimizer(params: Iterable[nn.Parameter], config: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer ``config["name"]`` with the other keys as options; unknown names/options raise ValueError."""
    _check_optimizer(config)
    return OPTIMIZERS.build(config, params=params)


def _check_optimizer(config: dict[str, Any]) -> None:
    opts = dict(config)
    name = opts.pop("name")
    check_options(f"optimizer {name!r}", "optim", OPTIMIZERS.lookup(name), opts, skip=("params",))


def _check_schedule(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a ``schedule`` section; returns (the shape's spec: name and options, the :class:`LRSchedule` keys set).
    A warm-up or noise key set to None means its default."""
    spec = {k: v for k, v in config.items() if not (k in _WRAPPER_KEYS and v is None)}
    wrap = {k: spec.pop(k) for k in _WRAPPER_KEYS if k in spec}
    name = spec["name"]
    check_options(f"schedule {name!r}", "schedule", _with_wrapper_keys(SCHEDULES.lookup(name)),
                  {**{k: v for k, v in spec.items() if k != "name"}, **wrap}, skip=("epochs",))
    return spec, wrap


def _with_wrapper_keys(builder: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in whose signature is ``builder``'s plus the warm-up and noise keys of :class:`LRSchedule`."""
    own = inspect.signature(builder).parameters.values()
    extra = [p for n, p in inspect.signature(LRSchedule.__init__).parameters.items() if n in _WRAPPER_KEYS]
    hints = {**typing.get_type_hints(LRSchedule.__init__), **typing.get_type_hints(builder)}

    def stand_in(*args: Any, **kwargs: Any) -> None: ...

    stand_in.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
    stand_in.__annotations__ = {k: v for k, v in hints.items() if k != "return"}
    return stand_in


def build_schedule(optimizer: torch.optim.Optimizer, config: dict[str, Any], epochs: int, steps_per_epoch: int = 1,
                   seed: int = 0) -> LRSchedule:
    """An :class:`LRSchedule` from a ``schedule`` config section; unknown names/options raise ValueError."""
    spec, wrap = _check_schedule(config)
    return LRSchedule(optimizer, SCHEDULES.build(spec, epochs=epochs), epochs, steps_per_epoch, seed=seed, **wrap)


def check_sections(cfg: dict[str, Any]) -> None:
    """Check a resolved config's ``optim`` and ``schedule`` sections before anything is built (fail fast).

    Raises:
        ValueError: an unknown name, an unknown or missing key, or a value of the wrong type, naming the key.
    """
    _check_optimizer(cfg["optim"])
    _check_schedule(cfg["schedule"])
