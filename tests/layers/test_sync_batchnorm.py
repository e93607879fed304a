"""``--sync-bn`` (:func:`spikeforge.layers.convert_sync_batchnorm`): two gloo processes with half the batch
each compute what one process computes on the whole batch — outputs, running statistics, input and flow
gradients (per process: its half), γ/β gradients (their sum over processes) — for BN and tdBN, plain
``[T, B, C, ...]`` input and the ``Dual`` pair of ssf/dsr (one window and several windows of time)."""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from spikeforge.layers import BatchNormTB, TdBN, TimeDistributed, convert_sync_batchnorm
from spikeforge.layers.batchnorm_sync import combine_over_ranks
from spikeforge.streams.dual import Dual, aggregate, decay_weights
from spikeforge.streams.lazy import LazySeq

F64 = torch.float64
T, B, C, H, W = 3, 4, 2, 3, 2
CASES = [(kind, mode) for kind in ("bn", "tdbn") for mode in ("plain", "dual", "dual_windows")]


def make_bn(kind: str) -> nn.Module:
    bn = BatchNormTB(C, dtype=F64) if kind == "bn" else TdBN(C, alpha=1 / math.sqrt(2), v_threshold=0.5, dtype=F64)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(C, generator=g, dtype=F64) + 0.5)
        bn.bias.copy_(torch.randn(C, generator=g, dtype=F64))
    return bn


def inputs():
    g = torch.Generator().manual_seed(0)
    seq = torch.randn(T, B, C, H, W, generator=g, dtype=F64) * 1.5 + 0.3
    seq = seq + torch.linspace(-1.0, 1.0, T, dtype=F64).view(-1, 1, 1, 1, 1)  # flow statistics differ from seq's
    g_out = torch.randn(T, B, C, H, W, generator=g, dtype=F64)
    return seq, g_out


def run_case(kind: str, mode: str, batch: slice) -> dict[str, torch.Tensor]:
    """One BN step on ``batch`` of the samples; returns what must agree (gradients of Σ out·G)."""
    seq_all, g_all = inputs()
    seq, g_out = seq_all[:, batch], g_all[:, batch]
    bn = convert_sync_batchnorm(make_bn(kind))
    if mode == "plain":
        x = seq.clone().requires_grad_(True)
        y = bn(x)
        (y * g_out).sum().backward()
        out, grad = y.detach(), x.grad
    else:
        w = decay_weights(0.6, T, dtype=F64)
        flow = aggregate(seq, w).clone().requires_grad_(True)
        window = seq[:1].numel() * 8 if mode == "dual_windows" else None  # one step a window
        lazy = LazySeq.of(seq, window_bytes=window) if window else seq
        y = bn(Dual(lazy, flow, w))
        (y.flow * g_out[0]).sum().backward()
        out, grad = torch.cat([y.materialize(F64).flatten(), y.flow.detach().flatten()]), flow.grad
    return {"out": out, "grad": grad, "weight": bn.weight.grad, "bias": bn.bias.grad,
            "running_mean": bn.running_mean, "running_var": bn.running_var}


def _worker(rank: int, store: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        half = B // 2
        results = {case: run_case(*case, slice(rank * half, (rank + 1) * half)) for case in CASES}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    d = tmp_path_factory.mktemp("syncbn")
    mp.start_processes(_worker, args=(str(d / "store"), str(d)), nprocs=2, start_method="spawn", join=True)
    return [torch.load(d / f"rank{r}.pt") for r in range(2)]


@pytest.mark.parametrize("kind,mode", CASES)
def test_two_processes_equal_one_process_on_the_whole_batch(two_ranks, kind, mode):
    full = run_case(kind, mode, slice(0, B))
    half = B // 2
    r0, r1 = (ranks[(kind, mode)] for ranks in two_ranks)
    tol = dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.cat([r0["grad"], r1["grad"]], dim=1 if mode == "plain" else 0), full["grad"], **tol)
    for key in ("weight", "bias"):  # local sums; DDP averages, so their sum is the whole batch's
        torch.testing.assert_close(r0[key] + r1[key], full[key], **tol)
    for key in ("running_mean", "running_var"):
        torch.testing.assert_close(r0[key], full[key], **tol)
        torch.testing.assert_close(r1[key], full[key], **tol)
    if mode == "plain":
        torch.testing.assert_close(torch.cat([r0["out"], r1["out"]], dim=1), full["out"], **tol)
    else:  # values [seq (T, B/2, ...), flow (B/2, ...)] of each rank against the halves of the whole
        seq_n, n = T * half * C * H * W, half * C * H * W
        whole_seq = full["out"][:2 * seq_n].view(T, B, C, H, W)
        whole_flow = full["out"][2 * seq_n:].view(B, C, H, W)
        for r, res in enumerate((r0, r1)):
            torch.testing.assert_close(res["out"][:seq_n].view(T, half, C, H, W), whole_seq[:, r * half:(r + 1) * half], **tol)
            torch.testing.assert_close(res["out"][seq_n:].view(half, C, H, W), whole_flow[r * half:(r + 1) * half], **tol)
        assert res["out"][seq_n:].numel() == n


def test_one_process_sync_is_plain_batchnorm():
    """Without a process group (or with one process) ``sync`` changes nothing, bit for bit."""
    seq, g_out = inputs()
    a = run_case("tdbn", "plain", slice(0, B))
    bn = make_bn("tdbn")
    x = seq.clone().requires_grad_(True)
    (bn(x) * g_out).sum().backward()
    assert torch.equal(a["grad"], x.grad) and torch.equal(a["running_var"], bn.running_var)
    assert torch.equal(a["weight"], bn.weight.grad)


def test_combine_over_ranks_one_process_returns_the_local_statistics():
    n, mean, var = combine_over_ranks(6, torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.25]))
    assert n.tolist() == [6.0, 6.0] and mean.tolist() == [1.0, 2.0] and var.tolist() == [0.5, 0.25]
    assert n.dtype == F64


def test_convert_keeps_tdbn_scale_and_state_dict_and_shows_in_repr():
    model = nn.Sequential(BatchNormTB(3), TdBN(4, alpha=0.5, v_threshold=3.0))
    keys = set(model.state_dict())
    convert_sync_batchnorm(model)
    assert set(model.state_dict()) == keys
    assert model[1].scale == 1.5 and model[1].sync and model[0].sync
    assert "sync=True" in repr(model[0]) and "alpha=0.5" in repr(model[1])


def test_convert_refuses_a_torch_batchnorm_naming_it():
    model = nn.Sequential(TimeDistributed(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)))
    with pytest.raises(ValueError, match=r"module '0\.[\w.]+' is a torch BatchNorm2d.*BatchNormTB"):
        convert_sync_batchnorm(model)
