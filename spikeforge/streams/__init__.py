"""The two streams of the one-step methods (DESIGN "How SSF/DSR get their speed"): what every layer under
``ssf``/``dsr`` passes and reads.

- :class:`~spikeforge.streams.dual.Dual`: the pair ``(seq [T, B, ...], flow [B, ...])`` and the helpers that map
  layers onto it (values from ``seq``, gradients along ``flow``).
- :class:`~spikeforge.streams.lazy.LazySeq`: the ``seq`` stream as a recipe evaluated over windows of time.
- :mod:`~spikeforge.streams.bits`: spike trains stored one bit per value.
- :class:`~spikeforge.streams.stats.WindowedStats`: per-channel statistics accumulated window by window.
- :mod:`~spikeforge.streams.budget`: how many time steps a window holds on the device at hand.

This package sits below ``neuron/`` and ``layers/``: it imports torch and nothing else of spikeforge.
"""
from spikeforge.streams.dual import Dual
from spikeforge.streams.lazy import LazySeq

__all__ = ["Dual", "LazySeq"]
