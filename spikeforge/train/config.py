"""Recipes (one YAML per paper setting) and their overrides: registry defaults < recipe < CLI.

Sections ``method``, ``loss``, ``optim``, ``schedule`` and ``train`` have a fixed key set
(:data:`DEFAULTS`); ``data`` and ``model`` pass their keys to the dataset and model constructors,
which reject what they do not know. Unknown keys raise listing the valid ones.
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULTS", "FLAG_KEYS", "list_recipes", "load_recipe", "load_config", "set_key", "resolve", "parse_assignment"]

DEFAULTS: dict[str, Any] = {
    "meta": {"paper": None, "table": None, "target": None, "assumed": []},
    "data": {"name": None, "root": None},
    "model": {"name": None},
    "method": {"name": "bptt"},
    "loss": {"name": "ce"},
    "optim": {"name": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0},
    "schedule": {"name": "cosine"},
    "train": {"epochs": 1, "batch_size": 64, "seed": 0, "device": "cpu", "workers": 0, "output": None},
}
FREE_SECTIONS = ("data", "model", "meta")

#: CLI flag -> dotted config key
FLAG_KEYS = {
    "data_dir": "data.root", "model": "model.name", "method": "method.name", "T": "model.T", "lr": "optim.lr",
    "epochs": "train.epochs", "batch_size": "train.batch_size", "seed": "train.seed", "output": "train.output",
    "device": "train.device",
}


def _recipe_dir():
    return resources.files("spikeforge") / "recipes"


def list_recipes() -> list[str]:
    return sorted(p.name[:-5] for p in _recipe_dir().iterdir() if p.name.endswith(".yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe ``name`` (a packaged recipe) merged over :data:`DEFAULTS`."""
    path = _recipe_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"recipe {name!r} is not known; choose one of: {', '.join(list_recipes())}")
    return resolve(yaml.safe_load(path.read_text()), source=f"recipe {name!r}")


def load_config(path: str | Path) -> dict[str, Any]:
    """A YAML config file merged over :data:`DEFAULTS`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    return resolve(raw, source=f"config {str(path)!r}")


def resolve(raw: Any, source: str = "config") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    cfg = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in cfg:
            raise ValueError(f"{source}: unknown section {section!r}; valid: {', '.join(cfg)}")
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section {section!r} must be a mapping, got {values!r}")
        for key, value in values.items():
            set_key(cfg, f"{section}.{key}", value, source=source)
    return cfg


def set_key(cfg: dict[str, Any], dotted: str, value: Any, source: str = "override") -> None:
    """Set ``cfg["a"]["b"] = value`` for ``dotted = "a.b"``; unknown keys of fixed sections raise."""
    parts = dotted.split(".")
    if len(parts) < 2 or parts[0] not in cfg:
        raise ValueError(f"{source}: key {dotted!r} must be section.key with a section in: {', '.join(cfg)}")
    node = cfg[parts[0]]
    if parts[0] not in FREE_SECTIONS and parts[1] not in node:
        raise ValueError(f"{source}: unknown key {dotted!r}; valid: {', '.join(f'{parts[0]}.{k}' for k in node)}")
    for part in parts[1:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{source}: {dotted!r} goes below a non-mapping value")
    node[parts[-1]] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.05"`` -> ``("optim.lr", 0.05)`` (the value parsed as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set expects key.path=value, got {text!r}")
    return key.strip(), yaml.safe_load(value)
