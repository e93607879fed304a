"""``spikeforge analyze``: figures of a trained network (matplotlib, Agg backend) and their JSON summary.

From one pass over (part of) the test set (:func:`spikeforge.train.evaluate.evaluate`) under a
:class:`~spikeforge.tools.monitor.Monitor`:

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
and the list of figures; ``summary.txt`` the same in a few lines. The figures themselves are
:mod:`spikeforge.tools.figures`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from spikeforge.tools.figures import bars, channel_maps, input_vs_spikes, pyplot, raster
from spikeforge.tools.monitor import Monitor, spiking_layers
from spikeforge.train.batches import input_dims, time_first
from spikeforge.train.evaluate import evaluate

__all__ = ["analyze"]


def _sample_figures(plt: Any, model: nn.Module, dataset: Dataset, sample: int, out: Path, neurons: int) -> list[Path]:
    if not 0 <= sample < len(dataset):
        raise ValueError(f"analyze: sample {sample} is outside the data set (0..{len(dataset) - 1})")
    layers = list(spiking_layers(model))
    first = layers[0]
    sample_x = dataset[sample][0]
    dims = input_dims(model, sample_x)
    x = time_first(sample_x.unsqueeze(0), dims)  # [T, 1, *input] or static [1, *input]
    chosen = {name: slice(0, neurons) for name in layers}
    chosen[first] = slice(None)
    with torch.no_grad(), Monitor(model, spike_trains=chosen) as mon:
        model(x)
    trains = mon.spike_trains()
    shape = mon.rate_maps()[first].shape
    first_train = trains[first][:, 0].reshape(-1, *shape)  # [T, *neurons]
    trains[first] = trains[first][:, :, :neurons]
    seq = x if x.dim() == dims + 2 else x.unsqueeze(0)
    return [channel_maps(plt, mon.rate_maps()[first].float(), first, sample, out / f"channel_maps_s{sample}.png"),
            input_vs_spikes(plt, seq[:, 0], first_train, first, sample, out / f"input_vs_spikes_s{sample}.png"),
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
    subset = dataset if max_samples is None else Subset(dataset, range(min(len(dataset), int(max_samples))))
    with Monitor(model) as mon:
        res = evaluate(model, DataLoader(subset, batch_size=batch_size), desc="analyze")
    total = res["samples"]
    summary = {"samples": total, "accuracy": res["acc"], **mon.summary()}
    rates = summary["rates"]
    figures = [bars(plt, list(rates), {"rate": list(rates.values())}, "firing rate (spikes / neuron / step)",
                     f"per-layer firing rate, mean {summary['mean_rate']:.3f}", out / "firing_rates.png")]
    blocks = summary["blocks"]
    if blocks:
        figures.append(bars(plt, list(blocks), {"A (residual spikes)": [b["A"] for b in blocks.values()],
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
