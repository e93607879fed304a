"""Recipes and overrides: precedence, fixed vs free sections, bad files."""
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
    with pytest.raises(ValueError, match="recipe 'digitz' is not known; choose one of: .*digits"):
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
