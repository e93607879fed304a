"""A trained model back from a checkpoint of ``spikeforge train``, and its accuracy on a split of its data.

Every command that reads a run (``eval``, ``plot``, ``analyze``, ``quantize``, ``energy``, ``export``) builds
its model here: from the checkpoint's own resolved config, or from a recipe when one is named (then the
checkpoint must hold that recipe's model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from spikeforge.train.builders import build_datasets, build_loss, build_model
from spikeforge.train.checkpoint import load_checkpoint
from spikeforge.train.config import load_recipe
from spikeforge.train.distributed import Dist
from spikeforge.train.evaluate import evaluate

__all__ = ["evaluate_checkpoint", "load_test_set", "load_trained"]


def load_trained(checkpoint: str | Path, recipe: str | None = None,
                 data_dir: str | None = None) -> tuple[dict[str, Any], nn.Module]:
    """``(config, model in eval mode with the checkpoint's weights)``, on the CPU.

    Args:
        checkpoint: a ``last.pt`` / ``best.pt`` written by ``spikeforge train``.
        recipe: build the model from this recipe instead of the checkpoint's config.
        data_dir: sets ``data.root`` of the returned config.

    Raises:
        ValueError: an unreadable checkpoint, an unknown recipe, or weights that do not fit the model
            the config builds (a checkpoint from another model), naming both.
    """
    ckpt = load_checkpoint(checkpoint)
    cfg = load_recipe(recipe) if recipe else ckpt["config"]
    if data_dir is not None:
        cfg["data"]["root"] = data_dir
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        saved = ckpt["config"]["model"]["name"]
        lines = str(err).splitlines()
        detail = (lines[1] if len(lines) > 1 else lines[0]).strip()
        detail = detail if len(detail) <= 240 else detail[:240] + " ..."
        raise ValueError(f"checkpoint {str(checkpoint)!r} holds a {saved!r} model, which does not fit the "
                         f"{cfg['model']['name']!r} model of {'recipe ' + repr(recipe) if recipe else 'its config'}: "
                         f"{detail}") from None
    return cfg, model.eval()


def load_test_set(cfg: dict[str, Any], max_samples: int | None = None) -> Dataset:
    """The test split of ``cfg``'s data set, cut to its first ``max_samples`` samples (``None``: all)."""
    test = build_datasets(cfg)["test"]
    return test if max_samples is None else Subset(test, range(min(len(test), max_samples)))




def evaluate_checkpoint(path: str | Path, data_root: str | None = None, split: str = "test",
                        device: str = "cpu", batch_size: int | None = None) -> dict[str, Any]:
    """Loss and accuracy of a checkpoint's model on ``split`` of its data set (``data_root`` overrides
    ``data.root``): ``{"loss", "acc", "samples"}`` (:func:`spikeforge.train.evaluate.evaluate`).

    Raises:
        ValueError: ``split`` is not one of the run's splits, or as :func:`load_trained`.
    """
    cfg, model = load_trained(path, data_dir=data_root)
    sets = build_datasets(cfg)
    if split not in sets:
        raise ValueError(f"split {split!r} is not in this run's data; choose one of: {', '.join(sets)}")
    d = Dist(device=torch.device(device))
    bs = int(batch_size or max(int(cfg["train"]["batch_size"]), 256))
    loader = DataLoader(sets[split], batch_size=bs, num_workers=int(cfg["train"]["workers"]))
    return evaluate(model.to(d.device), loader, build_loss(cfg), d, amp=cfg["train"]["amp"], desc=split)
