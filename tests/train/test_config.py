"""Recipes and overrides: precedence, unknown keys, bad files."""
import pytest

from spikeforge.train import config as C


def test_digits_recipe_matches_spec():
    cfg = C.load_recipe("digits")
    assert cfg["model"]["T"] == 4 and cfg["model"]["neuron"]["decay"] == 0.9
    assert cfg["optim"]["name"] == "adam" and cfg["optim"]["lr"] == 1e-3
    assert cfg["train"]["epochs"] == 30 and cfg["train"]["batch_size"] == 64
    assert cfg["schedule"]["name"] == "cosine" and cfg["method"]["name"] == "bptt"


def test_overrides():
    cfg = C.load_recipe("digits")
    C.set_key(cfg, *C.parse_assignment("optim.lr=0.05"))
    C.set_key(cfg, "model.neuron.decay", 0.5)
    assert cfg["optim"]["lr"] == 0.05 and cfg["model"]["neuron"]["decay"] == 0.5


def test_unknown_keys_and_recipes():
    cfg = C.load_recipe("digits")
    with pytest.raises(ValueError, match=r"unknown key 'optim.learning_rate'; valid: optim.name, optim.lr"):
        C.set_key(cfg, "optim.learning_rate", 1.0)
    with pytest.raises(ValueError, match="section.key with a section in"):
        C.set_key(cfg, "foo.bar", 1)
    with pytest.raises(ValueError, match="recipe 'digitz' is not known; choose one of: digits"):
        C.load_recipe("digitz")
    with pytest.raises(ValueError, match="expects key.path=value"):
        C.parse_assignment("optim.lr")


def test_bad_config_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        C.load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        C.load_config(bad)
    bad.write_text("optim: {lr: 0.1, betas: 3}\n")
    with pytest.raises(ValueError, match="unknown key 'optim.betas'"):
        C.load_config(bad)
