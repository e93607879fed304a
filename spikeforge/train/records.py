"""What a run writes beside itself (rank 0 only): ``metrics.csv``, ``firing_rates.csv``, TensorBoard scalars.

Both CSV files are rewritten whole from the history after each epoch, so a resumed run's files equal
an uninterrupted run's. TensorBoard event files are written when the ``tensorboard`` package is
importable (``pip install tensorboard``), else skipped.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["METRICS_CSV", "RATES_CSV", "Scalars", "read_csv", "write_csv"]

METRICS_CSV = "metrics.csv"
RATES_CSV = "firing_rates.csv"


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rows (dicts; the union of their keys as columns, first-seen order; None as empty) to ``path``."""
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in row.items()} for row in rows])


def read_csv(path: str | Path) -> list[dict[str, float | None]]:
    """Rows of a CSV written by :func:`write_csv`, numbers as floats, empty cells as None."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{str(path)!r} does not exist; is this a run directory of `spikeforge train --output`?")
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(f)]


class Scalars:
    """TensorBoard scalars under ``run_dir/tb`` (a no-op without the tensorboard package or without a run dir)."""

    def __init__(self, run_dir: Path | None) -> None:
        self.writer = None
        if run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(str(run_dir / "tb"))

    def add(self, values: dict[str, Any], step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and key != "epoch":
                self.writer.add_scalar(prefix + key, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
