"""Batch statistics shared by all processes of a run: the arithmetic of ``--sync-bn`` (SPEC §6.2, DESIGN).

torch's ``SyncBatchNorm`` reads a ``[N, C, ...]`` batch, so on a time-first ``[T, B, C, ...]`` input it
would take B for the channel axis, drop tdBN's α·V_th and refuse the ``Dual`` pair. Here the statistics of
:class:`~spikeforge.layers.BatchNormTB` (over T, B and the spatial axes of every process) are combined
exactly, and the backward's per-channel sums are summed over the processes, so a run of P processes with
batch B each computes what one process computes on the P·B batch.

- :func:`combine_over_ranks`: per-process (count, mean, biased variance) per channel → the global ones
  (Chan's pairwise formula in float64; no ``.item()``: nothing waits on the host).
- :class:`SyncBatchNormFunction`: training-mode BN of a folded ``[N, C, *]`` batch with global statistics;
  its backward all-reduces Σg and Σg·x̂ (γ's and β's gradients stay local: DDP averages them, as it does
  for every other parameter).

A process group of one process (or no initialised group) gives the local statistics: the same numbers.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["SyncBatchNormFunction", "all_reduce_sum_", "batch_dims", "combine_over_ranks", "per_channel", "world_size"]


def world_size(group: object | None = None) -> int:
    """Processes in ``group`` (the default group when None); 1 when no process group is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


def all_reduce_sum_(t: Tensor, group: object | None = None) -> Tensor:
    """Sum ``t`` over the processes of ``group``, in place (nothing when one process runs)."""
    if world_size(group) > 1:
        dist.all_reduce(t, group=group)
    return t


def batch_dims(x: Tensor) -> list[int]:
    """The axes of ``[N, C, *]`` that per-channel statistics reduce over: all but C."""
    return [0] + list(range(2, x.dim()))


def per_channel(t: Tensor, x: Tensor) -> Tensor:
    """A ``[C]`` tensor viewed to broadcast against ``[N, C, *]`` ``x``."""
    return t.view([1, -1] + [1] * (x.dim() - 2))


def combine_over_ranks(count: int | Tensor, mean: Tensor, var: Tensor, group: object | None = None
                       ) -> tuple[Tensor, Tensor, Tensor]:
    """Global ``(n, μ, σ²)`` per channel from each process's ``count`` values per channel with mean ``mean``
    ``[C]`` and biased variance ``var`` ``[C]``: n = Σ n_p, μ = Σ n_p·μ_p / n,
    σ² = Σ n_p·(σ²_p + (μ_p − μ)²) / n. Returns float64 tensors ``[C]`` (n too, so no host read)."""
    n = (count.to(torch.float64).expand_as(mean) if isinstance(count, Tensor)
         else torch.full_like(mean, float(count), dtype=torch.float64))
    local = torch.stack([n, mean.double(), var.double()])  # [3, C]
    world = world_size(group)
    if world == 1:
        return local[0], local[1], local[2]
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local.contiguous(), group=group)
    n_p, mean_p, var_p = torch.stack(parts).unbind(1)  # each [P, C]
    n = n_p.sum(0)
    mu = (n_p * mean_p).sum(0) / n
    var = (n_p * (var_p + (mean_p - mu).square())).sum(0) / n
    return n, mu, var


def _local_var_mean(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel biased variance and mean of ``[N, C, *]``, in float32 at least (fp16 sums overflow)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return torch.var_mean(x, batch_dims(x), correction=0)


class SyncBatchNormFunction(torch.autograd.Function):
    """``y = γ·(x − μ)/√(σ² + ε) + β`` on ``[N, C, *]`` with μ, σ² over the batches of all processes.

    Forward also updates ``running_mean``/``running_var`` (momentum ``factor``, unbiased variance over the
    global count). Backward: ``∂L/∂x = γ·s·(g − Σ_all g/n − x̂·Σ_all g·x̂/n)``, s = 1/√(σ² + ε); ``∂L/∂γ``,
    ``∂L/∂β`` are this process's sums.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                running_var: Tensor | None, factor: float, eps: float, group: object | None) -> Tensor:
        var_l, mean_l = _local_var_mean(x)
        n, mean, var = combine_over_ranks(x.numel() // x.shape[1], mean_l, var_l, group)
        if running_mean is not None:
            running_mean.mul_(1 - factor).add_(mean.to(running_mean.dtype), alpha=factor)
            unbiased = var * n / (n - 1).clamp(min=1)
            running_var.mul_(1 - factor).add_(unbiased.to(running_var.dtype), alpha=factor)
        stat_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        mean, invstd = mean.to(stat_dtype), (var + eps).rsqrt().to(stat_dtype)
        scale = invstd if weight is None else invstd * weight.to(stat_dtype)
        y = (x - per_channel(mean, x)) * per_channel(scale, x)
        if bias is not None:
            y = y + per_channel(bias.to(stat_dtype), x)
        ctx.save_for_backward(x, mean, invstd, weight)
        ctx.group, ctx.count = group, n
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, g: Tensor):
        x, mean, invstd, weight = ctx.saved_tensors
        dims = batch_dims(x)
        xhat = (x.to(mean.dtype) - per_channel(mean, x)) * per_channel(invstd, x)
        g = g.to(mean.dtype)
        local = torch.stack([g.sum(dims), (g * xhat).sum(dims)])  # [2, C]: Σg, Σg·x̂ of this process
        grad_weight = local[1].to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = local[0].to(ctx.bias_dtype) if ctx.bias_dtype is not None and ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            sums = all_reduce_sum_(local.clone(), ctx.group) / ctx.count.to(local.dtype)
            scale = invstd if weight is None else invstd * weight.to(invstd.dtype)
            grad_x = ((g - per_channel(sums[0], x) - xhat * per_channel(sums[1], x))
                      * per_channel(scale, x)).to(x.dtype)
        return grad_x, grad_weight, grad_bias, None, None, None, None, None
