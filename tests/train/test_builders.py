"""Builders: the config's free sections reach their constructors; validation splits; clear errors."""
import pytest
import torch

from spikeforge.train import config as C
from spikeforge.train.builders import (
    build_datasets,
    build_loss,
    build_method,
    build_model,
)


def test_digits_parts():
    cfg = C.load_recipe("digits")
    sets = build_datasets(cfg)
    assert {k: len(v) for k, v in sets.items()} == {"train": 1437, "test": 360}
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == 64 * 128 + 128 + 128 * 10 + 10
    assert model.sn1.decay == 0.9 and model.method.name == "bptt"
    assert build_loss(cfg)(torch.zeros(2, 10), torch.tensor([0, 1])).item() == pytest.approx(torch.log(torch.tensor(10.0)).item())


def test_method_and_loss_options_reach_their_constructors():
    cfg = C.load_recipe("digits")
    C.apply_overrides(cfg, {}, ["method.name=ssf", "method.faithful=true", "loss.label_smoothing=0.1"])
    assert build_method(cfg).faithful is True
    assert build_model(cfg).method.faithful is True
    # smoothed targets [0.95, 0.05] over K = 2 classes
    logits = torch.tensor([[2.0, 0.0]])
    want = -(0.95 * torch.log_softmax(logits, 1)[0, 0] + 0.05 * torch.log_softmax(logits, 1)[0, 1])
    assert build_loss(cfg)(logits, torch.tensor([0])).item() == pytest.approx(want.item(), abs=1e-6)


def test_validation_split_is_carved_from_train():
    cfg = C.load_recipe("digits")
    C.set_key(cfg, "train.val_fraction", 0.15)
    sets = build_datasets(cfg)
    assert len(sets["train"]) + len(sets["val"]) == 1437 and len(sets["val"]) == round(1437 * 0.15)
    assert not set(sets["train"].indices) & set(sets["val"].indices)
    C.set_key(cfg, "train.val_fraction", 1.0)
    with pytest.raises(ValueError, match=r"train.val_fraction must lie in \[0, 1\)"):
        build_datasets(cfg)


@pytest.mark.parametrize("key, value, message", [
    ("model.width", 3, "model 'digits_snn': bad option"),
    ("data.split", "x", "dataset 'digits': bad option data.split='x'"),
    ("method.faithfull", True, "method 'bptt': bad option"),
    ("loss.smoothing", 0.1, "loss 'ce': bad option"),
    ("model.name", None, "model.name must be set"),
    ("method.name", "bpt", "method 'bpt' is not registered; did you mean: bptt[?] choose one of: bptt, dsr, ssf"),
])
def test_bad_options_raise_value_error(key, value, message):
    cfg = C.load_recipe("digits")
    C.set_key(cfg, key, value)
    with pytest.raises(ValueError, match=message):
        build_model(cfg) if key.split(".")[0] in ("model", "method") else (build_datasets(cfg), build_loss(cfg))
