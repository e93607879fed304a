"""The ``yao-*`` recipes (SPEC §7.4 "Training", §9): they resolve and every section builds."""
from __future__ import annotations

import pytest

from spikeforge.train.builders import build_loss, build_model
from spikeforge.train.config import list_recipes, load_recipe, set_key
from spikeforge.train.optim import build_optimizer, build_schedule

EXPECTED = sorted([f"yao-{c}-{d}" for c in ("lstm", "cnn") for d in ("cifar10", "cifar100", "tinyimagenet")]
                  + [f"yao-{c}-{d}" for c in ("rnn", "birnn", "gru") for d in ("cifar10", "cifar100")]
                  + ["yao-resmlp12-cifar10"])
TARGETS = {"yao-lstm-cifar100": "72.31", "yao-cnn-cifar100": "72.41", "yao-rnn-cifar10": "88.32",
           "yao-birnn-cifar10": "89.71", "yao-gru-cifar10": "91.66", "yao-rnn-cifar100": "64.33",
           "yao-birnn-cifar100": "64.17", "yao-gru-cifar100": "65.41"}


def test_all_recipes_present():
    assert [r for r in list_recipes() if r.startswith("yao-")] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_recipe_builds(name):
    cfg = load_recipe(name)
    assert cfg["optim"] == {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 2e-5}
    assert cfg["schedule"]["warmup_lr"] == 0.001 and cfg["schedule"]["lr_noise"] == 0.67
    assert cfg["train"]["clip_grad"] == 20.0 and cfg["train"]["mixup"] == 0.1 and cfg["model"]["T"] == 1
    assert cfg["train"]["epochs"] == (250 if "tinyimagenet" in name else 300)
    assert TARGETS.get(name, "") in cfg["meta"]["target"]
    set_key(cfg, "model.dims", [4, 8, 16, 32])  # the widths do not change what is checked here; cheap to build
    model = build_model(cfg)
    assert model.num_classes == {"cifar10": 10, "cifar100": 100, "tinyimagenet": 200}[name.rsplit("-", 1)[1]]
    assert model.img_size == (64 if "tinyimagenet" in name else 32)
    build_loss(cfg)
    opt = build_optimizer(model.parameters(), cfg["optim"])
    sched = build_schedule(opt, cfg["schedule"], cfg["train"]["epochs"], steps_per_epoch=10)
    assert sched.lrs(0, 0) == [0.001]  # warm-up from 0.001 (paper), 3 epochs (code; assumed)
    assert sched.lrs(0, 30) == [pytest.approx(0.05)] and sched.noise_start == pytest.approx(0.67 * cfg["train"]["epochs"])
