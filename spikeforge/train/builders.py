"""Build a run's parts from a resolved config (:mod:`spikeforge.train.config`): model, data sets, loss.

Each builder passes a free section's keys (all but ``name``) to the registered constructor, which
rejects what it does not know (``Registry.build``: a ValueError naming the option and the valid ones); the recipe
tests call these on fake data, the engine on real data.
"""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn
from torch.utils.data import Dataset, Subset

from spikeforge.data import DATASETS, create_dataset
from spikeforge.data.splits import train_val_split
from spikeforge.losses import LOSSES, get_loss
from spikeforge.methods import Method, get_method
from spikeforge.models import create_model
from spikeforge.tools.quantize import prepare_qat

__all__ = ["build_datasets", "build_loss", "build_method", "build_model", "prepare_data"]


def _options(cfg: dict[str, Any], section: str) -> tuple[str, dict[str, Any]]:
    opts = dict(cfg[section])
    name = opts.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"config: {section}.name must be set (a registered name), got {name!r}")
    return name, opts


def build_method(cfg: dict[str, Any]) -> Method:
    """The training method of ``cfg["method"]`` (``get_method(name, **options)``)."""
    name, opts = _options(cfg, "method")
    return get_method(name, **opts)


def build_model(cfg: dict[str, Any]) -> nn.Module:
    """``create_model(model.name, method=<method section>, **model options)``; with ``quant.bits`` set,
    prepared for quantization-aware training (``spikeforge.tools.quantize.prepare_qat``)."""
    name, opts = _options(cfg, "model")
    model = create_model(name, method=build_method(cfg), **opts)
    if getattr(LOSSES.lookup(cfg["loss"]["name"]), "needs_membrane", False):
        if not hasattr(model, "collect_membrane"):
            raise ValueError(f"loss {cfg['loss']['name']!r} needs membrane statistics, which model {name!r} does not record")
        model.collect_membrane = True
    bits = cfg["quant"]["bits"]
    if bits is not None:
        model = prepare_qat(model, int(bits))
    return model


def _takes(builder: Any, option: str) -> bool:
    params = inspect.signature(builder).parameters
    return option in params  # not **kw: an event data set passes those on to its frames and would reject it


def build_datasets(cfg: dict[str, Any]) -> dict[str, Dataset]:
    """``{"train", "test"}`` data sets, and ``"val"`` when ``train.val_fraction > 0`` (PLIF protocol B).

    ``data.download`` is not an option of the data set (the engine's :func:`prepare_data` acts on it).
    A data set whose constructor takes ``val_fraction`` splits its training files itself (its ``val``
    part never augmented); otherwise the training set is split here with
    :func:`~spikeforge.data.splits.train_val_split` (seed ``train.seed``).
    """
    name, opts = _options(cfg, "data")
    root = opts.pop("root", None)
    opts.pop("download", None)  # done before, by the engine (prepare_data)
    if "split" in opts:
        raise ValueError(f"dataset {name!r}: bad option data.split={opts['split']!r}: a run reads its splits "
                         "(train, val, test) itself")
    frac = float(cfg["train"]["val_fraction"] or 0.0)
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"train.val_fraction must lie in [0, 1), got {frac}")
    sets = {"test": create_dataset(name, root, "test", **opts)}
    if frac == 0.0:
        sets["train"] = create_dataset(name, root, "train", **opts)
    elif _takes(DATASETS.lookup(name), "val_fraction"):
        opts.setdefault("val_fraction", frac)
        sets["train"] = create_dataset(name, root, "train", **opts)
        sets["val"] = create_dataset(name, root, "val", **opts)
    else:
        full = create_dataset(name, root, "train", **opts)
        tr, va = train_val_split(len(full), frac, seed=int(cfg["train"]["seed"]))
        sets["train"], sets["val"] = Subset(full, tr.tolist()), Subset(full, va.tolist())
    return {k: sets[k] for k in ("train", "val", "test") if k in sets}


def prepare_data(cfg: dict[str, Any], main: bool = True) -> None:
    """With ``data.download: true``, fetch the set into ``data.root`` (:func:`~spikeforge.data.download.download_dataset`;
    files already in place are skipped). Only the ``main`` process downloads.

    Raises:
        ValueError: ``data.download`` is not a bool, or ``data.root`` is unset; see also ``download_dataset``.
    """
    flag = cfg["data"].get("download", False)
    if not isinstance(flag, bool):
        raise ValueError(f"data.download must be true or false, got {flag!r}")
    if not flag or not main:
        return
    root = cfg["data"].get("root")
    if root is None:
        raise ValueError("data.download: true needs data.root, the folder to download into (--data-dir DIR)")
    from spikeforge.data.download import download_dataset

    download_dataset(cfg["data"]["name"], root)


def build_loss(cfg: dict[str, Any]) -> nn.Module:
    """``get_loss(loss.name, **options)``."""
    name, opts = _options(cfg, "loss")
    return get_loss(name, **opts)
