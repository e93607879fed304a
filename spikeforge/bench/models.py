"""``spikeforge bench models``: one training step (forward + backward + SGD step) of whole zoo models.

Each model runs at its own T and input shape (``None`` dims take ``--size``) in a fresh subprocess, under
``--method``; reported as the median step time and the peak resident memory above the idle baseline
(:func:`spikeforge.bench.methods.measure_one`). ``--json``: one object per line with keys ``method, model,
T, batch, step_ms, peak_mem_mb``.
"""
from __future__ import annotations

import argparse

from spikeforge.bench.methods import header, measure_in_subprocess, print_row

__all__ = ["add_parser", "run"]


def run(models: list[str], method: str, batch: int, size: int, steps: int, as_json: bool) -> list[dict]:
    from spikeforge.models import list_models

    names = [name for pattern in models for name in list_models(pattern)]
    if not names:
        raise ValueError(f"bench models: no registered model matches {models}; see `spikeforge models`")
    if not as_json:
        header(f"{method}, batch {batch}, free input dims {size}, {steps} timed steps")
    rows = []
    for name in names:
        row = measure_in_subprocess(name, method, None, batch, size, steps)
        rows.append(row)
        print_row(row, as_json)
    return rows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="training-step time and memory of whole zoo models")
    p.add_argument("--model", nargs="+", default=["digits_snn"], help="names or patterns, e.g. 'yao_*'")
    p.add_argument("--method", default="bptt")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=32, help="free input height/width")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lambda a: (run(a.model, a.method, a.batch, a.size, a.steps, a.json), 0)[1])
