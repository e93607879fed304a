"""Figures of arrays (matplotlib, Agg backend): bars per layer, firing-rate maps per channel, input vs spikes
per time step, spike rasters. They take tensors and a path and know nothing of runs or checkpoints; the
commands that read those (``spikeforge analyze``, ``spikeforge plot``: :mod:`spikeforge.commands`) call them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["bars", "channel_maps", "grid", "input_vs_spikes", "pyplot", "raster", "save_figure", "step_image"]


def pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend (a clear error if matplotlib is missing)."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("figures need matplotlib (a dependency of spikeforge): pip install 'matplotlib>=3.11,<4'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grid(values: Tensor) -> Tensor:
    """A ``[N]`` vector as a near-square ``[h, w]`` map (zero-padded)."""
    n = values.numel()
    w = math.ceil(math.sqrt(n))
    h = math.ceil(n / w)
    return torch.cat([values.flatten(), values.new_zeros(h * w - n)]).reshape(h, w)


def save_figure(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bars(plt: Any, labels: list[str], series: dict[str, list[float]], ylabel: str, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(labels) + 2), 4))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar([k + i * width for k in range(len(labels))], values, width=width, label=name)
    ax.set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(labels))], labels, rotation=60, ha="right",
                  fontsize="small")
    ax.set(ylabel=ylabel, title=title)
    if len(series) > 1:
        ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return save_figure(plt, fig, path)


def channel_maps(plt: Any, rate_map: Tensor, layer: str, sample: int, path: Path, max_channels: int = 16) -> Path:
    maps = [grid(rate_map)] if rate_map.dim() == 1 else [m if m.dim() == 2 else grid(m) for m in rate_map[:max_channels]]
    cols = min(4, len(maps))
    rows = math.ceil(len(maps) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols + 1.6, 2.3 * rows + 0.8), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(maps):
            im = ax.imshow(maps[k].numpy(), vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_title(f"channel {k}" if rate_map.dim() > 1 else f"{rate_map.numel()} neurons", fontsize="small")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="firing rate")
    fig.suptitle(f"{layer}: firing-rate map, sample {sample}", fontsize="medium")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def step_image(frame: Tensor) -> Tensor:
    """One step of one sample (``[C, H, W]``, ``[H, W]`` or ``[N]``) as a 2-D image, channels summed."""
    if frame.dim() == 3:
        return frame.sum(0)
    return frame if frame.dim() == 2 else grid(frame)


def input_vs_spikes(plt: Any, x: Tensor, spikes: Tensor, layer: str, sample: int, path: Path) -> Path:
    """x: ``[T, *input]``; spikes: ``[T, *neurons]`` of the first spiking layer."""
    T = spikes.shape[0]
    fig, axes = plt.subplots(2, T, figsize=(1.8 * T + 0.6, 4.0), squeeze=False)
    for t in range(T):
        axes[0, t].imshow(step_image(x[min(t, x.shape[0] - 1)].float()).numpy(), cmap="gray")
        axes[1, t].imshow(step_image(spikes[t].float()).numpy(), cmap="magma")
        axes[0, t].set_title(f"t = {t}", fontsize="small")
        for ax in axes[:, t]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel(f"{layer}\nspikes")
    fig.suptitle(f"input vs first-layer spikes per time step, sample {sample}", fontsize="medium")
    return save_figure(plt, fig, path)


def raster(plt: Any, trains: dict[str, Tensor], xlabel: str, path: Path) -> Path:
    """One row per layer: the spikes of sample 0 of each ``[T, B, N]`` train, time step × neuron."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(trains), 1, figsize=(6, 1.6 * len(trains) + 0.6), squeeze=False)
    for ax, (name, s) in zip(axes[:, 0], trains.items()):
        t, n = torch.nonzero(s[:, 0, :], as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), marker="|", s=30, color="k")
        ax.set(ylabel=f"{name}\nneuron", xlim=(-0.5, s.shape[0] - 0.5), ylim=(-0.5, s.shape[2] - 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel(xlabel)
    return save_figure(plt, fig, path)
