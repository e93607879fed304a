"""Figures of a trained network (``spikeforge analyze``; matplotlib, Agg backend) and their JSON summary.

From one pass over (part of) the test set with a :class:`~spikeforge.tools.monitor.Monitor`:

- ``firing_rates.png``: firing rate per spiking layer, bars (DSR supp. Fig. S1);
- ``sew_blocks.png``: per SEW block, the rate of the residual spikes A beside the mean of the output
  O (SEW supp. Fig. S2), written only for models with SEW blocks;

and from single chosen samples:

- ``channel_maps_s<i>.png``: the first spiking layer's firing-rate map per channel, ``[H, W]`` per
  channel averaged over T (a fully connected layer's N neurons drawn as one near-square map)
  (PLIF supp. Figs. S2-S4);
- ``input_vs_spikes_s<i>.png``: per time step, the input (channels summed) above the first spiking
  layer's spikes (channels summed: how many channels fired at each position);
- ``raster_s<i>.png``: spike raster (time step × neuron) of up to ``neurons`` neurons per layer.

``summary.json`` holds accuracy on the analysed samples, per-layer and mean firing rates, SEW A/O rates
and the list of figures; ``summary.txt`` the same in a few lines.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from spikeforge.tools.monitor import Monitor, spiking_layers
from spikeforge.train.loop import time_first

__all__ = ["analyze", "batch_time_first", "pyplot", "raster", "save_figure"]


def pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend (a clear error if matplotlib is missing)."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError("figures need matplotlib (a dependency of spikeforge): pip install 'matplotlib>=3.11,<4'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def batch_time_first(model: nn.Module, x: Tensor) -> Tensor:
    """A loader batch as the model takes it: ``[B, T, ...]`` sequences become ``[T, B, ...]``; static ``[B, ...]`` pass."""
    return time_first(x, len(getattr(model, "input_shape", x.shape[1:])))


def _grid(values: Tensor) -> Tensor:
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


def _bars(plt: Any, labels: list[str], series: dict[str, list[float]], ylabel: str, title: str, path: Path) -> Path:
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


def _channel_maps(plt: Any, rate_map: Tensor, layer: str, sample: int, path: Path, max_channels: int = 16) -> Path:
    maps = [_grid(rate_map)] if rate_map.dim() == 1 else [m if m.dim() == 2 else _grid(m) for m in rate_map[:max_channels]]
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


def _step_image(frame: Tensor) -> Tensor:
    """One step of one sample (``[C, H, W]``, ``[H, W]`` or ``[N]``) as a 2-D image, channels summed."""
    if frame.dim() == 3:
        return frame.sum(0)
    return frame if frame.dim() == 2 else _grid(frame)


def _input_vs_spikes(plt: Any, x: Tensor, spikes: Tensor, layer: str, sample: int, path: Path) -> Path:
    """x: ``[T, *input]``; spikes: ``[T, *neurons]`` of the first spiking layer."""
    T = spikes.shape[0]
    fig, axes = plt.subplots(2, T, figsize=(1.8 * T + 0.6, 4.0), squeeze=False)
    for t in range(T):
        axes[0, t].imshow(_step_image(x[min(t, x.shape[0] - 1)].float()).numpy(), cmap="gray")
        axes[1, t].imshow(_step_image(spikes[t].float()).numpy(), cmap="magma")
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


def _sample_figures(plt: Any, model: nn.Module, dataset: Dataset, sample: int, out: Path, neurons: int) -> list[Path]:
    if not 0 <= sample < len(dataset):
        raise ValueError(f"analyze: sample {sample} is outside the data set (0..{len(dataset) - 1})")
    layers = list(spiking_layers(model))
    first = layers[0]
    x = batch_time_first(model, dataset[sample][0].unsqueeze(0))
    chosen = {name: slice(0, neurons) for name in layers}
    chosen[first] = slice(None)
    with torch.no_grad(), Monitor(model, spike_trains=chosen) as mon:
        model(x)
    trains = mon.spike_trains()
    shape = mon.rate_maps()[first].shape
    first_train = trains[first][:, 0].reshape(-1, *shape)  # [T, *neurons]
    trains[first] = trains[first][:, :, :neurons]
    seq = x if x.dim() == len(getattr(model, "input_shape", x.shape[1:])) + 2 else x.unsqueeze(0)
    return [_channel_maps(plt, mon.rate_maps()[first].float(), first, sample, out / f"channel_maps_s{sample}.png"),
            _input_vs_spikes(plt, seq[:, 0], first_train, first, sample, out / f"input_vs_spikes_s{sample}.png"),
            raster(plt, trains, f"time step (sample {sample})", out / f"raster_s{sample}.png")]


def analyze(model: nn.Module, dataset: Dataset, out_dir: str | Path, samples: tuple[int, ...] = (0,),
            max_samples: int | None = 512, batch_size: int = 128, neurons: int = 32) -> dict[str, Any]:
    """Write the figures and ``summary.json``/``summary.txt`` of ``model`` on ``dataset`` into ``out_dir``.

    Args:
        model: a trained model (put in eval mode here); any method.
        dataset: yields ``(x, label)`` with ``x`` one sample (``[*input]`` or ``[T, *input]``).
        out_dir: created if missing.
        samples: dataset indices of the samples drawn one by one (maps, input vs spikes, raster).
        max_samples: rates and accuracy over the first ``max_samples`` samples (``None``: all).
        batch_size: batch size of the pass over the data; neurons: raster neurons per layer.

    Returns:
        the summary written to ``summary.json``.

    Raises:
        ValueError: the model has no spiking layer, a sample index outside the data set.
    """
    if not spiking_layers(model):
        raise ValueError(f"analyze: {type(model).__name__} has no spiking layers")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    model.eval()
    subset = dataset if max_samples is None else Subset(dataset, range(min(len(dataset), int(max_samples))))
    correct = total = 0
    with torch.no_grad(), Monitor(model) as mon:
        for x, y in DataLoader(subset, batch_size=batch_size):
            correct += int((model(batch_time_first(model, x)).argmax(1) == y).sum())
            total += int(y.numel())
    summary = {"samples": total, "accuracy": correct / max(total, 1), **mon.summary()}
    rates = summary["rates"]
    figures = [_bars(plt, list(rates), {"rate": list(rates.values())}, "firing rate (spikes / neuron / step)",
                     f"per-layer firing rate, mean {summary['mean_rate']:.3f}", out / "firing_rates.png")]
    blocks = summary["blocks"]
    if blocks:
        figures.append(_bars(plt, list(blocks), {"A (residual spikes)": [b["A"] for b in blocks.values()],
                                                 "O (block output)": [b["O"] for b in blocks.values()]},
                             "rate / mean value", "SEW blocks: A vs O", out / "sew_blocks.png"))
    for s in samples:
        figures += _sample_figures(plt, model, dataset, int(s), out, neurons)
    summary["figures"] = [p.name for p in figures]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    lines = [f"samples {total}, accuracy {100 * summary['accuracy']:.2f} %, mean firing rate {summary['mean_rate']:.4f}"]
    lines += [f"  {name:40s} {rate:.4f}" for name, rate in rates.items()]
    lines += [f"  block {name:34s} A {b['A']:.4f}  O {b['O']:.4f}" for name, b in blocks.items()]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return summary
