"""Analysis and deployment tools (SPEC §10 ``spikeforge.tools``).

- :class:`Monitor` — per-layer / per-channel firing rates, spike trains, SEW A/O rates (hooks only);
- :func:`quantize_weights`, :func:`prepare_qat` — b-bit symmetric weights, post-training or with an STE;
- :func:`count_energy` — SOPs / MACs and pJ per layer, SNN vs ANN;
- :func:`export_nir`, :func:`import_nir` — NIR graphs (needs the ``nir`` package);
- :mod:`spikeforge.tools.figures` — figures of arrays (rates per layer, rate maps, rasters).

Everything here takes a model (or tensors), never a training run: the commands that read a run or a
checkpoint (``spikeforge analyze | quantize | energy | export``) are :mod:`spikeforge.commands`. Imports the
library below it (core, ``neuron``, ``layers``); never ``train`` or the commands.
"""
from spikeforge.tools.energy import count_energy
from spikeforge.tools.monitor import Monitor
from spikeforge.tools.nir import export_nir, import_nir
from spikeforge.tools.quantize import finish_qat, prepare_qat, quantize_weights

__all__ = ["Monitor", "count_energy", "export_nir", "finish_qat", "import_nir", "prepare_qat",
           "quantize_weights"]
