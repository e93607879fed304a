"""``spikeforge bench agreement``: how close the one-step backward is to the faithful per-step one.

Both models start from the same weights; the faithful run REPLAYS the spike trains the one-step run
recorded (each neuron returns the recorded spikes instead of recomputing them), so the two backward
rules are compared on exactly the same forward. Independent forwards differ in a few spikes through
rounding, and at random initialisation those flips, not the rule, would dominate the comparison.
Reported per weight tensor: the cosine similarity of the two gradients and the norm ratio
faithful / one-step (SSF's per-step reading is about T times larger at λ near 1, SPEC §4).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

import torch
from torch import nn

from spikeforge.methods import get_method
from spikeforge.streams.dual import Dual
from spikeforge.models import create_model
from spikeforge.neuron.node import BaseNode

__all__ = ["add_parser", "gradient_agreement"]


def _spiking_nodes(model: nn.Module) -> list[BaseNode]:
    return [m for m in model.modules() if isinstance(m, BaseNode)]


def _weight_grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()
            if p.grad is not None and p.dim() >= 2}


def gradient_agreement(model_name: str, method: str, T: int, batch: int, seed: int = 0,
                       model_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per weight tensor: ``{"param", "cosine", "norm_ratio"}`` of faithful vs one-step gradients."""
    kw = dict(model_kwargs or {})
    torch.manual_seed(seed)
    one = create_model(model_name, method=get_method(method), T=T, **kw)
    faithful = create_model(model_name, method=get_method(method, faithful=True), T=T, **kw)
    faithful.load_state_dict(one.state_dict())
    shape = [32 if d is None else d for d in one.input_shape]
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, *shape, generator=g)
    y = torch.randint(0, one.num_classes, (batch,), generator=g)
    loss_fn = nn.CrossEntropyLoss()

    recorded: list[torch.Tensor] = []
    hooks = [n.register_forward_hook(lambda m, i, o: recorded.append(o.materialize() if isinstance(o, Dual) else o.detach()))
             for n in _spiking_nodes(one)]
    loss_fn(one(x), y).backward()
    for h in hooks:
        h.remove()

    nodes = _spiking_nodes(faithful)
    if len(nodes) != len(recorded):
        raise RuntimeError(f"agreement: recorded {len(recorded)} spike trains for {len(nodes)} neurons")
    for node, spikes in zip(nodes, recorded):
        # DSR neurons output spikes·value; replay the binary spikes the kernel would return
        value = node.spike_value(spikes).detach() if hasattr(node, "spike_value") else None
        binary = spikes / value if value is not None else spikes
        node.run_kernel = (lambda s: lambda x, v_init=None, return_v=False: (s.to(x.dtype), None))(binary)
    loss_fn(faithful(x), y).backward()

    a, b = _weight_grads(one), _weight_grads(faithful)
    rows = []
    for name in a:
        ga, gb = a[name].flatten().double(), b[name].flatten().double()
        na, nb = ga.norm().item(), gb.norm().item()
        cos = float(torch.dot(ga, gb) / (na * nb)) if na > 0 and nb > 0 else float("nan")
        rows.append({"param": name, "cosine": cos, "norm_ratio": nb / na if na > 0 else float("nan"),
                     "norm_one_step": na, "norm_faithful": nb})
    return rows


def _run(args: argparse.Namespace) -> int:
    kw = json.loads(args.model_kwargs) if args.model_kwargs else {}
    rows = gradient_agreement(args.model, args.method, args.T, args.batch, args.seed, kw)
    if args.json:
        for row in rows:
            print(json.dumps({"model": args.model, "method": args.method, "T": args.T, "batch": args.batch, **row}))
        return 0
    print(f"{args.model}, {args.method}: one-step vs faithful weight gradients on the same spikes (T={args.T}, B={args.batch})")
    print(f"{'parameter':48s} {'cosine':>8s} {'faithful/one-step':>18s}")
    for row in rows:
        if row["norm_one_step"] > 0 and row["norm_faithful"] > 0:
            print(f"{row['param']:48s} {row['cosine']:8.4f} {row['norm_ratio']:18.3f}")
        else:  # no angle to a zero vector
            print(f"{row['param']:48s} {'n/a':>8s} {'':18s} gradient norms {row['norm_one_step']:.3g} (one-step), "
                  f"{row['norm_faithful']:.3g} (faithful)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agreement", help="one-step vs faithful gradients (cosine per layer) on replayed spikes")
    p.add_argument("--model", default="preact_resnet18")
    p.add_argument("--method", default="ssf", choices=["ssf", "dsr"])
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-kwargs", help='JSON, e.g. \'{"dsr_neuron": {"kind": "if"}}\'')
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
