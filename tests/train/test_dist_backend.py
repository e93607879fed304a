"""``train.dist_backend``: gloo on CPU; nccl on CUDA only with a GPU per process, gloo otherwise (NCCL
refuses two ranks on one GPU); explicit choices checked with a clear error."""
import pytest
import torch

from spikeforge.train import config as C
from spikeforge.train.distributed import choose_backend

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def test_auto_on_cpu_is_gloo():
    assert choose_backend(CPU, None, 2) == "gloo"


@pytest.mark.parametrize(("gpus", "procs", "expected"), [(2, 2, "nccl"), (8, 2, "nccl"), (1, 2, "gloo"), (1, 1, "nccl")])
def test_auto_on_cuda_needs_a_gpu_per_process_for_nccl(monkeypatch, gpus, procs, expected):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert choose_backend(CUDA, None, procs) == expected


def test_explicit_choices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert choose_backend(CUDA, "gloo", 2) == "gloo"
    assert choose_backend(CPU, "gloo", 2) == "gloo"
    with pytest.raises(ValueError, match="a GPU per process: 2 processes on this machine, 1 GPU"):
        choose_backend(CUDA, "nccl", 2)
    with pytest.raises(ValueError, match="'nccl' needs train.device=cuda"):
        choose_backend(CPU, "nccl", 1)
    with pytest.raises(ValueError, match="must be one of gloo, nccl or null"):
        choose_backend(CPU, "mpi", 1)


def test_config_key():
    cfg = C.load_recipe("digits")
    assert cfg["train"]["dist_backend"] is None
    C.apply_overrides(cfg, {}, ["train.dist_backend=gloo"])
    assert cfg["train"]["dist_backend"] == "gloo"
