"""Recipes and overrides: precedence, fixed vs free sections, bad files."""
import re

import pytest

from spikeforge.train import config as C


def test_digits_recipe_matches_spec():
    cfg = C.load_recipe("digits")
    assert cfg["model"]["T"] == 4 and cfg["model"]["neuron"]["decay"] == 0.9
    assert cfg["optim"] == {"name": "adam", "lr": 1e-3}
    assert cfg["train"]["epochs"] == 30 and cfg["train"]["batch_size"] == 64
    assert cfg["schedule"]["name"] == "cosine" and cfg["method"]["name"] == "bptt"
    assert cfg["quant"] == {"bits": None} and cfg["train"]["val_fraction"] == 0.0


def test_overrides_precedence():
    """registry defaults < recipe < flags < --set (applied in that order)."""
    cfg = C.load_recipe("digits")
    C.apply_overrides(cfg, {"lr": 0.01, "epochs": 2, "amp": "bf16", "model": None},
                      ["optim.lr=0.05", "model.neuron.decay=0.5", "schedule.warmup_steps=400"])
    assert cfg["optim"]["lr"] == 0.05 and cfg["train"]["epochs"] == 2 and cfg["train"]["amp"] == "bf16"
    assert cfg["model"]["neuron"]["decay"] == 0.5 and cfg["model"]["name"] == "digits_snn"
    assert cfg["schedule"] == {"name": "cosine", "warmup_steps": 400}


def test_free_section_with_another_name_drops_default_options():
    cfg = C.resolve({"optim": {"name": "sgd", "momentum": 0.9}})
    assert cfg["optim"] == {"name": "sgd", "momentum": 0.9}  # adam's default lr does not leak in
    cfg = C.resolve({"data": {"name": "digits"}})
    assert cfg["data"] == {"name": "digits", "root": None}


def test_unknown_keys_and_recipes():
    cfg = C.load_recipe("digits")
    with pytest.raises(ValueError, match=r"unknown key 'train.epoch'; valid: train.epochs, train.batch_size"):
        C.set_key(cfg, "train.epoch", 1)
    with pytest.raises(ValueError, match=r"unknown key 'quant.bit'; valid: quant.bits"):
        C.set_key(cfg, "quant.bit", 4)
    with pytest.raises(ValueError, match="section.key with a section in"):
        C.set_key(cfg, "foo.bar", 1)
    with pytest.raises(ValueError, match="recipe 'digitz' is not known; did you mean: digits\\? `spikeforge recipes` lists all"):
        C.load_recipe("digitz")
    with pytest.raises(ValueError, match="expects key.path=value"):
        C.parse_assignment("optim.lr")
    with pytest.raises(ValueError, match="meta.assumed names 'lr'"):
        C.resolve({"meta": {"assumed": ["lr"]}})


def test_bad_config_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        C.load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        C.load_config(bad)
    bad.write_text("train: {epochs: 3, betas: 3}\n")
    with pytest.raises(ValueError, match="unknown key 'train.betas'"):
        C.load_config(bad)
    bad.write_text("optim: [1, 2]\n")
    with pytest.raises(ValueError, match="section 'optim' must be a mapping"):
        C.load_config(bad)


@pytest.mark.parametrize("key, value, message", [
    ("train.epochs", "abc", "train.epochs must be an integer >= 1, got 'abc'"),
    ("train.epochs", 2.5, "train.epochs must be an integer >= 1, got 2.5"),
    ("train.epochs", True, "train.epochs must be an integer >= 1, got True"),
    ("train.batch_size", 0, "train.batch_size must be an integer >= 1, got 0"),
    ("train.val_fraction", "x", "train.val_fraction must be a number >= 0 or null, got 'x'"),
    ("train.amp", "fp8", "train.amp must be one of bf16, fp16 or null, got 'fp8'"),
    ("train.device", "gpu", "train.device must be cpu or cuda (cuda:N for one GPU), got 'gpu'"),
    ("optim.lr", "abc", "optim.lr must be a number >= 0, got 'abc'"),
    ("model.T", 0, "model.T must be an integer >= 1, got 0"),
    ("quant.bits", 1.5, "quant.bits must be an integer >= 1 or null, got 1.5"),
])
def test_values_are_type_checked_naming_the_key(key, value, message):
    """a wrong type names the key (no 'invalid literal for int()'), 2.5 epochs is refused, not truncated."""
    cfg = C.load_recipe("digits")
    with pytest.raises(ValueError, match=re.escape(f"--set: {message}")):
        C.set_key(cfg, key, value, source="--set")


def test_integral_floats_become_ints():
    cfg = C.load_recipe("digits")
    C.set_key(cfg, "train.epochs", 1e2)
    assert cfg["train"]["epochs"] == 100 and isinstance(cfg["train"]["epochs"], int)
    C.set_key(cfg, "train.device", "cuda:1")
    assert cfg["train"]["device"] == "cuda:1"
