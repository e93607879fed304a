"""``spikeforge plot``: PNG plots of a run directory (``spikeforge plot RUN_DIR``; matplotlib, Agg backend).

- ``loss.png``, ``accuracy.png``: train / val / test curves per epoch from ``metrics.csv``;
- ``firing_rates.png``: per-layer firing rate (spikes per neuron per step) per epoch from ``firing_rates.csv``;
- ``raster.png``: spike raster (time step × neuron) of the first ``neurons`` neurons of every spiking layer
  for one test sample, from the run's ``best.pt`` (else ``last.pt``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spikeforge.commands.checkpoint import load_test_set, load_trained
from spikeforge.tools.figures import pyplot, raster, save_figure
from spikeforge.tools.monitor import Monitor, spiking_layers
from spikeforge.train.batches import model_input
from spikeforge.train.records import METRICS_CSV, RATES_CSV, read_csv

__all__ = ["plot_run"]


def _curves(plt: Any, rows: list[dict[str, Any]], metric: str, ylabel: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for split in ("train", "val", "test"):
        pts = [(r["epoch"], r[f"{split}_{metric}"]) for r in rows if r.get(f"{split}_{metric}") is not None]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=split)
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(plt, fig, path)


def _rates(plt: Any, rows: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for layer in [k for k in rows[0] if k != "epoch"]:
        ax.plot([r["epoch"] for r in rows], [r[layer] for r in rows], marker=".", label=layer)
    ax.set(xlabel="epoch", ylabel="firing rate (spikes / neuron / step)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return save_figure(plt, fig, path)


def _raster(plt: Any, run_dir: Path, path: Path, sample: int, neurons: int) -> Path | None:
    ckpt_path = next((run_dir / n for n in ("best.pt", "last.pt") if (run_dir / n).is_file()), None)
    if ckpt_path is None:
        return None
    cfg, model = load_trained(ckpt_path)
    test = load_test_set(cfg)
    if not 0 <= sample < len(test):
        raise ValueError(f"--sample {sample} is outside the test set (0..{len(test) - 1})")
    x = model_input(model, test[sample][0].unsqueeze(0))
    chosen = {name: slice(0, neurons) for name in spiking_layers(model)}
    with torch.no_grad(), Monitor(model, spike_trains=chosen) as mon:
        model(x)
    return raster(plt, mon.spike_trains(), f"time step (test sample {sample}, {ckpt_path.name})", path)


def plot_run(run_dir: str | Path, sample: int = 0, neurons: int = 32) -> list[Path]:
    """Write the PNGs of a run directory into it; returns their paths.

    Raises:
        ValueError: ``run_dir`` has no ``metrics.csv`` (not a run directory), or matplotlib is missing.
    """
    run_dir = Path(run_dir)
    rows = read_csv(run_dir / METRICS_CSV)
    plt = pyplot()
    written = [_curves(plt, rows, "loss", "loss", run_dir / "loss.png"),
               _curves(plt, rows, "acc", "accuracy", run_dir / "accuracy.png")]
    if (run_dir / RATES_CSV).is_file():
        written.append(_rates(plt, read_csv(run_dir / RATES_CSV), run_dir / "firing_rates.png"))
    raster = _raster(plt, run_dir, run_dir / "raster.png", sample, neurons)
    if raster is not None:
        written.append(raster)
    return written
