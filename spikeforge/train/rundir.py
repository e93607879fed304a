"""Run directories: a new run never writes into an earlier run's files; ``--resume`` continues its own run.

- A new run given a directory that exists and is not empty gets a fresh sibling, ``NAME-1``, ``NAME-2``, ...
  (timm's habit), and says so; ``overwrite=True`` (``--overwrite``) instead deletes the files a run writes
  there (:data:`RUN_FILES`) and reuses the directory.
- A resumed run writes into the directory its checkpoint lies in (the run it belongs to), unless told
  another directory, which is then treated like a new run's.
- Resuming refuses another model or method (their weights and states do not fit) and reports every
  other setting that the flags change (:func:`resume_changes`).
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["RUN_FILES", "checkpoint_path", "prepare_run_dir", "resume_changes"]

#: what a run (and ``spikeforge plot``) writes into its directory; ``--overwrite`` deletes these and nothing else
RUN_FILES = ("config.yaml", "metrics.csv", "firing_rates.csv", "last.pt", "last.pt.tmp", "best.pt", "best.pt.tmp",
             "tb", "loss.png", "accuracy.png", "firing_rates.png", "raster.png")
#: keys a resumed run must share with its checkpoint
FIXED_ON_RESUME = ("model.name", "method.name")


def checkpoint_path(path: str | Path, prefer: tuple[str, ...] = ("last.pt",), flag: str = "--resume") -> Path:
    """``path`` itself, or the first of ``prefer`` inside it when ``path`` is a run directory (``--resume``:
    ``last.pt``; ``eval --checkpoint``: ``best.pt``, else ``last.pt``).

    Raises:
        ValueError: ``path`` does not exist, or is a directory holding none of ``prefer``.
    """
    path = Path(path)
    if path.is_dir():
        for name in prefer:
            if (path / name).is_file():
                return path / name
        raise ValueError(f"{flag}: run directory {str(path)!r} has no {' or '.join(prefer)} "
                         f"(holds: {', '.join(sorted(p.name for p in path.iterdir())) or 'nothing'})")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist; {flag} takes a run directory or its "
                         f"{' / '.join(prefer)}")
    return path


def _fresh(out: Path) -> Path:
    base = out if out.name else out.resolve()
    n = 1
    while True:
        candidate = base.with_name(f"{base.name}-{n}")
        if not candidate.exists() or not any(candidate.iterdir()):
            return candidate
        n += 1


def prepare_run_dir(out: str | Path, overwrite: bool = False, resume: str | Path | None = None,
                    log: Callable[[str], None] = print) -> Path:
    """The directory the run writes into, created.

    Args:
        out: the requested directory (``train.output``).
        overwrite: reuse ``out`` even if it holds a run, deleting that run's files (:data:`RUN_FILES`).
        resume: the checkpoint this run continues from; its own directory is reused as it is.
        log: where the one-line notice about a changed or cleared directory goes.

    Raises:
        ValueError: ``out`` exists and is not a directory.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"train.output {str(out)!r} is a file, not a directory")
    busy = out.is_dir() and any(out.iterdir())
    if busy and resume is not None and Path(resume).resolve().parent == out.resolve():
        pass  # continuing its own run
    elif busy and overwrite:
        for name in RUN_FILES:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        log(f"run directory {out}: --overwrite, the previous run's files were deleted")
    elif busy:
        fresh = _fresh(out)
        log(f"run directory {out} is not empty (an earlier run); writing to {fresh} instead (--overwrite to replace it)")
        out = fresh
    out.mkdir(parents=True, exist_ok=True)
    return out


def _flat(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resume_changes(saved: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """``["optim.lr 0.001 -> 0.5", ...]``: the settings of ``cfg`` that differ from the checkpoint's ``saved``
    config (``train.output`` and ``meta`` aside).

    Raises:
        ValueError: ``cfg`` names another model or method than the checkpoint.
    """
    before, after = _flat(saved), _flat(cfg)
    for key in FIXED_ON_RESUME:
        if before.get(key) != after.get(key):
            raise ValueError(f"--resume: the checkpoint was trained with {key}={before.get(key)!r}, not "
                             f"{after.get(key)!r}; a checkpoint continues only its own model and method "
                             f"(start a new run with --recipe/--config to train {after.get(key)!r})")
    skip = ("train.output",)
    return [f"{k} {before.get(k, '(unset)')} -> {after.get(k, '(unset)')}"
            for k in sorted(set(before) | set(after))
            if not k.startswith("meta.") and k not in skip and before.get(k) != after.get(k)]
