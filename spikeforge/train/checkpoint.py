"""Checkpoints: written atomically (temp file + rename), read back with a clear error.

A checkpoint holds the model, optimizer, schedule and scaler states, the position in the run
(``epoch``: epochs finished, ``step``: batches of the current epoch done, ``global_step``), the
epoch-so-far sums, the history, every RNG state (torch, CUDA, numpy, Python ``random``, the run's own
generators), the resolved config and the code version.
"""
from __future__ import annotations

import os
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["REQUIRED_KEYS", "atomic_save", "load_checkpoint", "rng_states", "set_rng_states"]

REQUIRED_KEYS = frozenset({"model", "optimizer", "schedule", "epoch", "step", "config", "rng", "history"})


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path.tmp`` then ``os.replace``: a reader never sees a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`spikeforge.train.engine.train`; a missing or foreign file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError, AttributeError, ImportError) as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {type(err).__name__}: {err}") from None
    missing = REQUIRED_KEYS - set(ckpt) if isinstance(ckpt, dict) else REQUIRED_KEYS
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} lacks {sorted(missing)}; it was not written by spikeforge train")
    return ckpt


def rng_states() -> dict[str, Any]:
    """The global RNG states of torch (CPU and every CUDA device), numpy and Python ``random``."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned.

    CUDA generators are restored device by device for the devices that exist here: a checkpoint written
    with more GPUs than this machine has restores the first ones and warns (the run goes on; the dropped
    devices' streams were not used by this rank's device). Saved on a machine without CUDA: the CUDA
    generators are left as they are.
    """
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    cuda = states.get("cuda")
    if cuda is None or not torch.cuda.is_available():
        return
    present = torch.cuda.device_count()
    if len(cuda) > present:
        warnings.warn(f"checkpoint holds CUDA RNG states of {len(cuda)} devices, this machine has {present}: "
                      f"restoring devices 0..{present - 1} only", stacklevel=2)
    for index, state in enumerate(cuda[:present]):
        torch.cuda.set_rng_state(state, device=index)
