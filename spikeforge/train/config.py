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
import difflib
import os
import re
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
    "recipe_text",
    "parse_assignment",
    "resolve",
    "set_key",
    "check_value",
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
        "rtd_T": None, "mixup": 0.0, "deterministic": False, "val_fraction": 0.0, "eval_every": 1, "threads": None,
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
    "threads": "train.threads",
}

_INT, _NUM = "an integer", "a number"
#: ``train.compile`` beside true/false: torch.compile's modes (``reduce-overhead``: CUDA graphs of the step's graphs)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: fixed keys -> (kind, lower bound or allowed values, None allowed); checked by :func:`check_value`
_TYPES: dict[str, tuple[str, Any, bool]] = {
    "train.epochs": (_INT, 1, False), "train.batch_size": (_INT, 1, False), "train.seed": (_INT, None, False),
    "train.device": ("device", None, False), "train.workers": (_INT, 0, False), "train.output": ("path", None, True),
    "train.amp": ("choice", ("bf16", "fp16"), True), "train.clip_grad": (_NUM, 0.0, True),
    "train.compile": ("compile", COMPILE_MODES, False), "train.checkpoint_every": (_INT, 0, True), "train.sync_bn": ("bool", None, False),
    "train.rtd_T": (_INT, 1, True), "train.mixup": (_NUM, 0.0, True), "train.deterministic": ("bool", None, False),
    "train.val_fraction": (_NUM, 0.0, True), "train.eval_every": (_INT, 1, False), "train.threads": (_INT, 1, True),
    "train.dist_backend": ("choice", ("gloo", "nccl"), True),
    "quant.bits": (_INT, 1, True), "optim.lr": (_NUM, 0.0, False), "model.T": (_INT, 1, False),
}
_DEVICE = re.compile(r"(cpu|cuda)(:\d+)?")


def _recipe_dir():
    return resources.files("spikeforge") / "recipes"


def list_recipes() -> list[str]:
    """Names of the packaged recipes (``spikeforge/recipes/<name>.yaml``), sorted."""
    return sorted(p.name[:-5] for p in _recipe_dir().iterdir() if p.name.endswith(".yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The packaged recipe ``name`` merged over :data:`DEFAULTS`; an unknown name raises listing the known ones."""
    return resolve(yaml.safe_load(recipe_text(name)), source=f"recipe {name!r}")


def recipe_text(name: str) -> str:
    """The YAML text of the packaged recipe ``name``; an unknown name raises suggesting close ones."""
    path = _recipe_dir() / f"{name}.yaml"
    if not path.is_file():
        names = list_recipes()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        close += [n for n in names if name and name in n and n not in close][:5 - len(close)]
        hint = f"did you mean: {', '.join(close)}? " if close else ""
        raise ValueError(f"recipe {name!r} is not known; {hint}`spikeforge recipes` lists all {len(names)}")
    return path.read_text()


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
    node[parts[-1]] = check_value(dotted, value, source)


def check_value(dotted: str, value: Any, source: str = "config") -> Any:
    """``value`` checked against the type of key ``dotted`` (integral floats become ints); other keys pass as they are.

    Raises:
        ValueError: naming the key, what it takes and the value received (``train.epochs must be an integer >= 1, got 2.5``).
    """
    if dotted not in _TYPES:
        return value
    kind, bound, nullable = _TYPES[dotted]
    if value is None and nullable:
        return None
    if kind == _INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool) and (bound is None or value >= bound)
        what = kind + (f" >= {bound}" if bound is not None else "")
    elif kind == _NUM:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= bound
        what = f"{kind} >= {bound:g}"
    elif kind == "bool":
        ok, what = isinstance(value, bool), "true or false"
    elif kind == "compile":
        ok, what = isinstance(value, bool) or value in bound, "true, false or one of " + ", ".join(bound)
    elif kind == "choice":
        ok, what = value in bound, "one of " + ", ".join(bound)
    elif kind == "device":
        ok, what = isinstance(value, str) and _DEVICE.fullmatch(value) is not None, "cpu or cuda (cuda:N for one GPU)"
    else:  # path
        ok, what = isinstance(value, (str, os.PathLike)), "a directory path"
        value = os.fspath(value) if ok else value
    if not ok:
        none = " or null" if nullable else ""
        raise ValueError(f"{source}: {dotted} must be {what}{none}, got {value!r}")
    return value


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
