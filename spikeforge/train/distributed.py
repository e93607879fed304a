"""Several processes on PyTorch's distributed engine (``torchrun --nproc-per-node N -m spikeforge train``).

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` then joins the process
group (gloo on CPU, nccl on CUDA). Without them the run is one process and nothing here communicates.
Only rank 0 writes files and prints (:attr:`Dist.main`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Dist", "all_gather_objects", "all_reduce_sum", "convert_sync_bn", "setup", "teardown", "wrap_ddp"]


@dataclass(frozen=True)
class Dist:
    """This process's place: ``world`` processes, this one ``rank`` (``local_rank`` on its machine), on ``device``."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str) -> Dist:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); pick this rank's device.

    ``device`` is ``train.device``: ``cpu`` or ``cuda`` (each rank takes ``cuda:LOCAL_RANK``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={device!r} but no CUDA device is available; use --device cpu")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(world, rank, local, dev)


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], d: Dist) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64; the values themselves with one process)."""
    if not d.active:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=d.device if d.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def convert_sync_bn(model: nn.Module, d: Dist) -> nn.Module:
    """``--sync-bn``: every BatchNormTB / tdBN shares its training statistics over the processes (gloo on CPU,
    nccl on CUDA; :func:`spikeforge.layers.convert_sync_batchnorm`). With one process nothing changes."""
    from spikeforge.layers import convert_sync_batchnorm

    return convert_sync_batchnorm(model)


def wrap_ddp(model: nn.Module, d: Dist) -> nn.Module:
    """``DistributedDataParallel`` around ``model`` when several processes run; else ``model``."""
    if not d.active:
        return model
    ids = [d.device.index] if d.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_gather_objects(obj: object, d: Dist) -> list[object]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` with one process)."""
    if not d.active:
        return [obj]
    out: list[object] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out
