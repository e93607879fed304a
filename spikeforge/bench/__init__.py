"""Benchmarks: ``spikeforge bench neuron|methods|models|agreement|data`` (speed and memory, never correctness).

``--device cpu|cuda`` (neuron, methods, models): :mod:`spikeforge.bench.device`. The GPU check of a whole
machine in one command: ``python -m spikeforge.bench.gpu_check --out DIR`` (:mod:`spikeforge.bench.gpu_check`).

Sits just below the command line: it may import every library package (and peers such as SpikingJelly where they
import), and nothing imports it but ``cli``.
"""
from __future__ import annotations

import argparse

__all__ = ["add_bench_parser"]


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed and memory benchmarks")
    which = p.add_subparsers(dest="bench", required=True)
    from spikeforge.bench import agreement, data, methods, models, neuron

    for module in (neuron, methods, models, agreement, data):
        module.add_parser(which)
