"""Several processes on PyTorch's distributed engine (``torchrun --nproc-per-node N -m spikeforge train``).

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` then joins the process
group (``train.dist_backend``: by default gloo on CPU, nccl on CUDA when every process of the machine
has a GPU of its own, else gloo on the CUDA tensors). Without them the run is one process and nothing
here communicates.
Only rank 0 writes files and prints (:attr:`Dist.main`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["Dist", "all_gather_objects", "all_reduce_sum", "choose_backend", "convert_sync_bn", "setup", "teardown",
           "wrap_ddp"]


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


BACKENDS = ("gloo", "nccl")


def choose_backend(device: torch.device, backend: str | None, local_world: int) -> str:
    """``train.dist_backend``: ``backend`` when given, else gloo on CPU, nccl on CUDA when each of the
    ``local_world`` processes of this machine has a GPU of its own, gloo otherwise (NCCL refuses two
    ranks on one GPU; gloo all-reduces CUDA tensors too, through host memory).

    Raises:
        ValueError: an unknown backend, nccl on CPU, or nccl with fewer GPUs than processes.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"train.dist_backend must be one of {', '.join(BACKENDS)} or null (auto), got {backend!r}")
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if backend == "nccl":
        if device.type != "cuda":
            raise ValueError("train.dist_backend='nccl' needs train.device=cuda; use gloo on CPU")
        if local_world > gpus:
            raise ValueError(f"train.dist_backend='nccl' needs a GPU per process: {local_world} processes on this "
                             f"machine, {gpus} GPU(s); use train.dist_backend=gloo")
        return backend
    if backend is None:
        return "nccl" if device.type == "cuda" and local_world <= gpus else "gloo"
    return backend


def setup(device: str, backend: str | None = None) -> Dist:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); pick this rank's device.

    ``device`` is ``train.device``: ``cpu`` or ``cuda`` (each rank takes ``cuda:LOCAL_RANK``, shared
    round-robin when the machine has fewer GPUs than processes); ``backend`` is ``train.dist_backend``
    (:func:`choose_backend`).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={device!r} but no CUDA device is available; use --device cpu")
        dev = torch.device("cuda", local % torch.cuda.device_count() if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    chosen = choose_backend(dev, backend, local_world)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=chosen)
    return Dist(world, rank, local, dev)


def teardown(d: Dist, finished: bool = False) -> None:
    """Destroy the process group. ``finished``: every rank got through (a normal end): wait for all of them first,
    so that no rank closes its connections while another still has a collective in flight (a gloo peer then
    aborts the process, "terminate called without an active exception"). Not after an error or an interrupt:
    a rank that stopped there would wait for peers that may never arrive."""
    if d.active and dist.is_initialized():
        try:
            if finished:
                dist.barrier()
        finally:
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
