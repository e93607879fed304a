"""Recipes (one YAML per paper setting) and their overrides: registry defaults < recipe < CLI.

The schema (SPEC §9, agreed by the engine, recipes and tools issues):

- ``meta``, ``train`` and ``quant`` have a **fixed** key set (:data:`DEFAULTS`); an unknown key raises
  listing the valid ones.
- ``data``, ``model``, ``method``, ``loss``, ``optim`` and ``schedule`` are **free** sections: besides
  ``name`` their keys go to the constructor of that name (``create_dataset``, ``create_model``,
  ``get_method``, ``get_loss``, the optimizer and schedule builders of :mod:`spikeforge.train.optim`),
  which reject what they do not know when the run is built (:mod:`spikeforge.train.builders`).
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULTS",
    "FLAG_KEYS",
    "FREE_SECTIONS",
    "apply_overrides",
    "list_recipes",
    "load_config",
    "load_recipe",
    "parse_assignment",
    "resolve",
    "set_key",
]

DEFAULTS: dict[str, Any] = {
    "meta": {"paper": None, "table": None, "target": None, "assumed": [], "notes": None},
    "data": {"name": None, "root": None},
    "model": {"name": None},
    "method": {"name": "bptt"},
    "loss": {"name": "ce"},
    "optim": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "cosine"},
    "train": {
        "epochs": 1, "batch_size": 64, "seed": 0, "device": "cpu", "workers": 0, "output": None,
        "amp": None, "clip_grad": None, "compile": False, "checkpoint_every": 0, "sync_bn": False,
        "rtd_T": None, "mixup": 0.0, "deterministic": False, "val_fraction": 0.0, "eval_every": 1,
        "dist_backend": None,
    },
    "quant": {"bits": None},
}
#: sections whose keys (other than ``name``) are checked by the constructor they are passed to
FREE_SECTIONS = ("data", "model", "method", "loss", "optim", "schedule")

#: CLI flag (argparse dest) -> dotted config key
FLAG_KEYS = {
    "data_dir": "data.root", "model": "model.name", "method": "method.name", "T": "model.T", "lr": "optim.lr",
    "epochs": "train.epochs", "batch_size": "train.batch_size", "seed": "train.seed", "output": "train.output",
    "device": "train.device", "amp": "train.amp", "compile": "train.compile", "sync_bn": "train.sync_bn",
}


def _recipe_dir():
    return resources.files("spikeforge") / "recipes"


def list_recipes() -> list[str]:
    """Names of the packaged recipes (``spikeforge/recipes/<name>.yaml``), sorted."""
    return sorted(p.name[:-5] for p in _recipe_dir().iterdir() if p.name.endswith(".yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The packaged recipe ``name`` merged over :data:`DEFAULTS`; an unknown name raises listing the known ones."""
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
    """``raw`` (sections of keys) merged over a copy of :data:`DEFAULTS`, every key checked by :func:`set_key`.

    A free section that names a different constructor than the default (``optim.name: sgd``) starts
    from ``{name}`` alone, so default options of another constructor never leak into it.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")  # noqa: TRY004 (config errors are ValueErrors)
    cfg = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in cfg:
            raise ValueError(f"{source}: unknown section {section!r}; valid: {', '.join(cfg)}")
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section {section!r} must be a mapping, got {values!r}")  # noqa: TRY004
        if section in FREE_SECTIONS and "name" in values and values["name"] != cfg[section].get("name"):
            cfg[section] = {k: v for k, v in cfg[section].items() if k in ("name", "root")}
        for key, value in values.items():
            set_key(cfg, f"{section}.{key}", value, source=source)
    _check_assumed(cfg, source)
    return cfg


def _check_assumed(cfg: dict[str, Any], source: str) -> None:
    assumed = cfg["meta"]["assumed"]
    if not isinstance(assumed, list) or not all(isinstance(k, str) for k in assumed):
        raise ValueError(f"{source}: meta.assumed must be a list of dotted keys, got {assumed!r}")
    for key in assumed:
        if key.split(".")[0] not in cfg or "." not in key:
            raise ValueError(f"{source}: meta.assumed names {key!r}, which is not section.key of a known section")


def set_key(cfg: dict[str, Any], dotted: str, value: Any, source: str = "override") -> None:
    """Set ``cfg["a"]["b"] = value`` for ``dotted = "a.b"`` (deeper paths create mappings in free sections).

    Raises:
        ValueError: an unknown section, an unknown key of a fixed section, or a path below a non-mapping.
    """
    parts = dotted.split(".")
    if len(parts) < 2 or parts[0] not in cfg or not all(parts):
        raise ValueError(f"{source}: key {dotted!r} must be section.key with a section in: {', '.join(cfg)}")
    node = cfg[parts[0]]
    if parts[0] not in FREE_SECTIONS and parts[1] not in node:
        raise ValueError(f"{source}: unknown key {dotted!r}; valid: {', '.join(f'{parts[0]}.{k}' for k in node)}")
    for part in parts[1:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"{source}: {dotted!r} goes below a non-mapping value")  # noqa: TRY004
    node[parts[-1]] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.05"`` -> ``("optim.lr", 0.05)`` (the value parsed as YAML; ``1e6`` is a float too)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects key.path=value, got {text!r}")
    parsed = yaml.safe_load(value)
    if isinstance(parsed, str):
        try:
            parsed = float(parsed)
        except ValueError:
            pass
    return key.strip(), parsed


def apply_overrides(cfg: dict[str, Any], flags: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply CLI flags (``{argparse dest: value}``, None = not given) then ``--set key=value`` items, in place."""
    for flag, key in FLAG_KEYS.items():
        value = flags.get(flag)
        if value is not None:
            set_key(cfg, key, value, source=f"--{flag.replace('_', '-')}")
    for item in assignments:
        set_key(cfg, *parse_assignment(item), source="--set")
    return cfg
