"""Optimizers and schedules: hand-computed learning rates (warm-up, cosine, step, lr noise), bad options."""
import math
import re

import pytest
import torch

from spikeforge.train.optim import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_schedule,
)


def _opt(lr=0.1, name="sgd", **kw):
    return build_optimizer([torch.nn.Parameter(torch.zeros(2))], {"name": name, "lr": lr, **kw})


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_and_rejects_unknown_options(name):
    opt = _opt(name=name, weight_decay=1e-4)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match=rf"optimizer '{name}' has no option optim.learning_rate; valid: optim.lr"):
        _opt(name=name, learning_rate=1)


def test_unknown_names():
    with pytest.raises(ValueError, match="optimizer 'rmsprop' is not registered; choose one of: adam, adamw, sgd"):
        _opt(name="rmsprop")
    with pytest.raises(ValueError, match="schedule 'poly' is not registered"):
        build_schedule(_opt(), {"name": "poly"}, 10)
    with pytest.raises(ValueError, match="schedule 'cosine' has no option schedule.gamma; valid: schedule.t_max"):
        build_schedule(_opt(), {"name": "cosine", "gamma": 0.1}, 10)


def test_cosine_with_iteration_warmup():
    """Warm-up 4 iterations from 0.01 to 0.1: 0.01, 0.0325, 0.055, 0.0775; then cosine per epoch (T_max 10)."""
    s = build_schedule(_opt(0.1), {"name": "cosine", "warmup_steps": 4, "warmup_lr": 0.01}, epochs=10, steps_per_epoch=3)
    assert [s.lrs(0, i)[0] for i in range(4)] == pytest.approx([0.01, 0.0325, 0.055, 0.0775], abs=1e-15)
    assert s.lrs(1, 4)[0] == pytest.approx(0.05 * (1 + math.cos(math.pi / 10)), abs=1e-15)
    assert s.lrs(5, 15)[0] == pytest.approx(0.05, abs=1e-15)
    assert s.lrs(10, 30)[0] == pytest.approx(0.0, abs=1e-15)


def test_cosine_matches_torch_per_epoch_and_eta_min():
    opt, ref_opt = _opt(0.1), _opt(0.1)
    s = build_schedule(opt, {"name": "cosine", "t_max": 7, "eta_min": 0.001}, epochs=20)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=7, eta_min=0.001)
    for epoch in range(7):
        s.apply(epoch, 10**6)
        assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12)
        ref_opt.step()  # no gradients: a no-op, keeps torch from warning about the order
        ref.step()


def test_step_and_warmup_epochs():
    s = build_schedule(_opt(0.1), {"name": "step", "step_size": 2, "gamma": 0.5, "warmup_epochs": 1}, epochs=6,
                       steps_per_epoch=5)
    assert s.warmup == 5 and s.lrs(0, 0)[0] == 0.0 and s.lrs(0, 4)[0] == pytest.approx(0.08)
    assert [s.lrs(e, 100)[0] for e in range(6)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert build_schedule(_opt(0.1), {"name": "constant"}, 6).lrs(5, 99) == [0.1]


def test_lr_noise_starts_late_stays_bounded_and_is_reproducible():
    cfg = {"name": "constant", "lr_noise": 0.5, "lr_noise_std": 1.0, "lr_noise_pct": 0.1}
    s = build_schedule(_opt(1.0), cfg, epochs=10, seed=3)
    lrs = [s.lrs(e, 10**6)[0] for e in range(10)]
    assert lrs[:5] == [1.0] * 5
    assert all(0.9 < lr < 1.1 for lr in lrs[5:]) and len(set(lrs[5:])) == 5
    assert lrs == [build_schedule(_opt(1.0), cfg, epochs=10, seed=3).lrs(e, 10**6)[0] for e in range(10)]


def test_schedules_registry_names():
    assert SCHEDULES.names() == ["constant", "cosine", "step"]


@pytest.mark.parametrize("config, message", [
    ({"name": "adam", "lr": 1e-3, "foo": 1}, "optimizer 'adam' has no option optim.foo; valid: optim.lr, optim.weight_decay"),
    ({"name": "sgd"}, "optimizer 'sgd' needs optim.lr"),
    ({"name": "adam", "lr": "abc"}, "optimizer 'adam': optim.lr must be a number, got 'abc'"),
    ({"name": "sgd", "lr": 0.1, "nesterov": "yes"}, "optimizer 'sgd': optim.nesterov must be true or false, got 'yes'"),
])
def test_optimizer_options_name_the_key_not_the_builder(config, message):
    """no internal names (`_adam() got an unexpected keyword argument`), no `'<=' not supported`."""
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build_optimizer([torch.nn.Parameter(torch.zeros(2))], config)
    assert "_adam" not in str(err.value) and "_sgd" not in str(err.value)


def test_schedule_options_are_checked_with_the_warmup_keys():
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], {"name": "adam", "lr": 1e-3})
    with pytest.raises(ValueError, match=re.escape("schedule 'step' has no option schedule.foo; valid: schedule.step_size, "
                                                   "schedule.gamma, schedule.warmup_steps")):
        build_schedule(opt, {"name": "step", "foo": 1}, 10)
    with pytest.raises(ValueError, match=re.escape("schedule 'cosine': schedule.warmup_steps must be an integer, got 'x'")):
        build_schedule(opt, {"name": "cosine", "warmup_steps": "x"}, 10)
