"""Batch normalisation over the folded T·B batch, and threshold-dependent BN (SPEC §6.2).

Both classes normalise a time-first tensor ``[T, B, C, ...]`` with per-channel statistics taken
over (T, B, spatial) **jointly** — never per time step — in one ``F.batch_norm`` call on the
folded ``[T*B, C, ...]`` input. One class serves ``[T, B, C]``, ``[T, B, C, L]`` and
``[T, B, C, H, W]``; parameters and buffers have the names and shapes of ``nn.BatchNorm{1,2}d``
(``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``), so state dicts
move between them.

tdBN (Zheng et al., AAAI 2021; no official code, SPEC follows the re-implementations):
``y = γ·α·V_th·(x − μ)/√(σ² + ε) + β`` with biased σ² for normalising; running statistics with
momentum m and the unbiased variance ``σ²·n/(n−1)``, n = T·B·H·W; eval uses the running
statistics under the same α·V_th. ``gamma_init=True`` is the SpikingJelly variant: plain BN over
T·B whose γ starts at α·V_th, with no constant factor (same forward at init, different γ-gradient
scale).

Under ``ssf``/``dsr`` both classes take a ``Dual(seq, flow)`` (DESIGN "Where the two streams need
care"): values come from ``seq`` (one fused BN call over the folded T·B batch, which also updates the
running statistics once), gradients travel along ``flow`` as BN's on the flow batch, with the
statistics' values replaced by those of ``seq``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikeforge.layers.batchnorm_sync import (
    SyncBatchNormFunction,
    all_reduce_sum_,
    batch_dims,
    combine_over_ranks,
    per_channel,
    world_size,
)
from spikeforge.streams.dual import Dual
from spikeforge.streams.lazy import LazySeq
from spikeforge.streams.stats import WindowedStats

__all__ = ["BatchNormTB", "ThresholdDependentBatchNorm", "TdBN", "convert_sync_batchnorm"]

_LAYOUTS = "[T, B, C], [T, B, C, L] or [T, B, C, H, W]"


def _shape_probe(lazy: LazySeq, flow: Tensor) -> Tensor:
    """An empty-strided tensor of the sequence's shape, for the shape checks (nothing allocated per element)."""
    return flow.new_zeros(()).expand(lazy.shape)


def _native_batch_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                       running_var: Tensor | None, momentum: float, eps: float, in_place: bool):
    """``torch.native_batch_norm`` in training mode, writing into ``x`` when ``in_place`` allows it (same values)."""
    if in_place and x.is_contiguous() and all(t is None or t.dtype == x.dtype for t in (weight, bias)):
        c = x.shape[1]
        mean, invstd = x.new_empty(c), x.new_empty(c)
        return torch.ops.aten.native_batch_norm.out(x, weight, bias, running_mean, running_var, True, momentum, eps,
                                                    out=x, save_mean=mean, save_invstd=invstd)
    return torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)


@torch.no_grad()
def _windowed_var_mean(lazy: LazySeq, dtype: torch.dtype) -> tuple[Tensor, Tensor, int, Tensor | None]:
    """Per-channel mean and biased variance of ``[T, B, C, *]`` over (T, B, *), window by window; also n,
    the values per channel, and the first ``lazy.stored_steps`` steps kept as one tensor (None if none fit)."""
    stats = WindowedStats()
    keep = lazy.stored_steps
    head = torch.empty((keep, *lazy.shape[1:]), dtype=dtype, device=lazy.device) if keep else None
    for t0, t1, z in lazy.windows(dtype):
        stats.add(z)
        if t0 < keep:
            head[t0:min(t1, keep)] = z[:keep - t0]
    return (*stats.result(dtype), stats.count, head)


class _FlowBatchNorm(torch.autograd.Function):
    """BN on the flow batch ``[B, C, *]`` with the seq's statistics as values (ssf/dsr, training).

    Value ``γ·(f − μ_s)·s + β``, s = 1/√(σ²_s + ε) from ``seq``. Gradient: BN's on the flow batch with μ and
    σ² standing for ``μ_f + sg(μ_s − μ_f)`` and ``σ²_f + sg(σ²_s − σ²_f)`` (μ_f, σ²_f over (B, *) of f):
    ``∂L/∂f = γ·s·(g − mean(g) − s²·mean(g·(f − μ_s))·(f − μ_f))``, ``∂L/∂γ = Σ g·(f − μ_s)·s``,
    ``∂L/∂β = Σ g``. Saves f alone (autograd's composite of the same formula kept two ``[B, C, *]`` tensors).
    With ``sync`` (``--sync-bn``; ``group`` None = all processes) μ_f and the two means of the backward run over the flow batches of all
    processes (γ's and β's gradients stay local sums; DDP averages them). The per-channel sums are taken
    in float32 at least: under fp16 and a loss scale they would overflow.
    """

    @staticmethod
    def forward(ctx, flow: Tensor, mean_s: Tensor, invstd_s: Tensor, weight: Tensor | None,
                bias: Tensor | None, sync: bool = False, group: object | None = None) -> Tensor:
        dims = batch_dims(flow)
        scale = invstd_s if weight is None else invstd_s * weight.to(invstd_s.dtype)
        out = (flow - per_channel(mean_s, flow)) * per_channel(scale, flow)
        if bias is not None:
            out = out + per_channel(bias.to(out.dtype), flow)
        acc = torch.promote_types(flow.dtype, torch.float32)
        sums = torch.stack([flow.sum(dims, dtype=acc), flow.new_full((flow.shape[1],), flow.numel() // flow.shape[1],
                                                                     dtype=acc)])  # [Σf, n] per channel
        sums = all_reduce_sum_(sums, group) if sync else sums
        ctx.save_for_backward(flow, mean_s, invstd_s, (sums[0] / sums[1]).to(flow.dtype), weight, sums[1])
        ctx.sync, ctx.group, ctx.bias_dtype = sync, group, None if bias is None else bias.dtype
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        flow, mean_s, invstd_s, mean_f, weight, count = ctx.saved_tensors
        dims = batch_dims(flow)
        acc = torch.promote_types(g.dtype, torch.float32)
        local = torch.stack([g.sum(dims, dtype=acc),  # Σ g
                             (g * (flow - per_channel(mean_s, flow))).sum(dims, dtype=acc)])  # Σ g·(f − μ_s)
        grad_flow = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            total = all_reduce_sum_(local.clone(), ctx.group) if ctx.sync else local
            g_sum, g_centred = (total / count.to(acc)).to(g.dtype).unbind(0)  # means over the (global) flow batch
            scale = invstd_s if weight is None else invstd_s * weight.to(invstd_s.dtype)
            k = invstd_s.square() * g_centred
            grad_flow = ((g - per_channel(g_sum, flow) - per_channel(k, flow) * (flow - per_channel(mean_f, flow)))
                         * per_channel(scale, flow))
        if weight is not None and ctx.needs_input_grad[3]:  # in γ's own dtype: no fp16 overflow of the sum
            grad_weight = (local[1] * invstd_s.to(acc)).to(weight.dtype)
        if ctx.needs_input_grad[4]:
            grad_bias = local[0].to(ctx.bias_dtype)
        return grad_flow, None, None, grad_weight, grad_bias, None, None


class BatchNormTB(_BatchNorm):
    """BatchNorm whose statistics run over time and batch jointly.

    ``y = γ·(x − μ)/√(σ² + ε) + β``, with μ_c and biased σ²_c over every axis except C of the
    time-first input (T, B and any spatial axes). Training updates the running statistics as
    ``nn.BatchNorm2d`` does (momentum, unbiased variance over n = T·B·H·W); eval normalises with
    them. Equal, values and gradients, to ``nn.BatchNorm2d`` (or ``1d``) applied to
    ``x.flatten(0, 1)``.

    Args:
        num_features: channel count C (int > 0).
        eps: added to σ² (default 1e-5, > 0).
        momentum: running-statistics factor m (default 0.1, in [0, 1]); ``None`` = cumulative average.
        affine: learnable γ (init 1) and β (init 0) per channel (default True).
        track_running_stats: keep ``running_mean``/``running_var`` buffers (default True); if False,
            batch statistics are used in eval too.
        device, dtype: factory options of the parameters and buffers.
        sync: in training, take μ and σ² over the batches of all processes (``--sync-bn``; see
            :func:`convert_sync_batchnorm`): n processes with batch B compute what one computes on n·B
            (values, running statistics and gradients). Default False. One process: no effect.

    Under ``ssf``/``dsr`` the input is a ``Dual(seq, flow, weights)``. Training (batch statistics):
    ``seq`` is normalised exactly as a plain input (μ_s, σ²_s over (T, B, spatial); running
    statistics updated once, from ``seq``); the flow output is ``γ·(flow − μ)/√(σ² + ε) + β`` with
    ``μ = μ_f + (μ_s − μ_f).detach()`` and ``σ² = σ²_f + (σ²_s − σ²_f).detach()``, μ_f and biased σ²_f
    over (B, spatial) of ``flow``: its value is the aggregate of the ``seq`` output, its gradient
    BN's on the flow batch. Eval (running statistics): the layer is affine and maps both streams.

    Shape:
        Input: ``[T, B, C]``, ``[T, B, C, L]`` or ``[T, B, C, H, W]`` (T steps, B samples, C channels),
            or a ``Dual`` with such a ``seq`` and ``flow`` ``[B, C, ...]``.
        Output: same shape and dtype as the input (a ``Dual`` for a ``Dual``).

    Attributes:
        weight, bias: ``[C]`` γ and β (absent when ``affine=False``).
        running_mean, running_var: ``[C]`` buffers, init 0 and 1; ``num_batches_tracked``: scalar long.

    Raises:
        ValueError: bad ``num_features``, ``eps`` or ``momentum``; input rank not in {3, 4, 5};
            channel dim ≠ ``num_features`` (message gives expected and received).

    Example:
        >>> bn = BatchNormTB(16)
        >>> bn(torch.randn(4, 8, 16, 32, 32)).shape
        torch.Size([4, 8, 16, 32, 32])
    """

    supports_dual = True  # takes a Dual as its own layer (spikeforge.streams.dual.reject_batchnorm)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        sync: bool = False,
    ) -> None:
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"{name}: num_features must be a positive int (the channel count C), got {num_features!r}")
        eps = float(eps)
        if not (math.isfinite(eps) and eps > 0.0):
            raise ValueError(f"{name}: eps must be a finite number > 0, got {eps}")
        if momentum is not None:
            momentum = float(momentum)
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"{name}: momentum must lie in [0, 1] (or be None for a cumulative average), got {momentum}")
        super().__init__(num_features, eps, momentum, bool(affine), bool(track_running_stats), device, dtype)
        #: statistics over the batches of all processes of ``process_group`` in training (``--sync-bn``)
        self.sync = bool(sync)
        #: the group whose batches ``sync`` combines; None = the default (world) group
        self.process_group: object | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _check_input_dim(self, x: Tensor) -> None:
        """Raise unless ``x`` is ``[T, B, C, *]`` with rank 3..5 and C = ``num_features``."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a Tensor {_LAYOUTS}, got {type(x).__name__}")
        if x.dim() not in (3, 4, 5):
            raise ValueError(f"{name}: expected a time-first input {_LAYOUTS}, got shape {tuple(x.shape)} (rank {x.dim()})")
        if x.shape[2] != self.num_features:
            raise ValueError(
                f"{name}: expected {self.num_features} channels at dim 2 of [T, B, C, ...], "
                f"got {x.shape[2]} (input shape {tuple(x.shape)})"
            )

    def _affine(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """The (scale, shift) handed to ``F.batch_norm``: γ and β here; tdBN folds α·V_th into the scale."""
        return self.weight, self.bias

    def _average_factor(self) -> float:
        """Momentum for this call (and bump ``num_batches_tracked`` in training), as ``_BatchNorm.forward``."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return factor

    # -- forward ---------------------------------------------------------------------------
    def _syncing(self) -> bool:
        """Batch statistics shared with other processes in this call (``sync``, training, > 1 process)."""
        return self.sync and self._uses_batch_stats() and world_size(self.process_group) > 1

    def _uses_batch_stats(self) -> bool:
        return self.training or (self.running_mean is None and self.running_var is None)

    def _running(self) -> tuple[Tensor | None, Tensor | None]:
        """The running buffers F.batch_norm reads (eval) or updates (training), or (None, None)."""
        track = not self.training or self.track_running_stats
        return (self.running_mean, self.running_var) if track else (None, None)

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:  # x [T, B, C, *] -> [T, B, C, *], statistics over (T, B, *)
        if isinstance(x, Dual):
            return self._forward_dual(x)
        self._check_input_dim(x)
        factor = self._average_factor()
        running_mean, running_var = self._running()
        weight, bias = self._affine(x)
        if self._syncing():
            y = SyncBatchNormFunction.apply(x.flatten(0, 1), weight, bias, running_mean, running_var, factor, self.eps,
                                            self.process_group)
            return y.unflatten(0, x.shape[:2])
        y = F.batch_norm(
            x.flatten(0, 1), running_mean, running_var, weight, bias, self._uses_batch_stats(), factor, self.eps
        )
        return y.unflatten(0, x.shape[:2])

    def _forward_dual(self, x: Dual) -> Dual:
        """ssf/dsr: values from ``seq`` (running statistics updated once), gradient along ``flow``.

        A ``seq`` that fits one window of time (:class:`~spikeforge.streams.lazy.LazySeq`) is computed once and
        normalised in one fused call (in place when it is this layer's own); a longer one in two passes over
        windows: statistics (float64 sums), keeping the leading steps that fit the method's ``store_mb``; then
        the normalisation, applied lazily as the next layer pulls its windows, the kept steps read back and the
        rest recomputed (the conv before it run again). So the float ``[T, ...]`` memory a layer holds is
        bounded by the budget, not by T. The flow goes through :class:`_FlowBatchNorm`, which keeps only its
        input for backward."""
        flow, lazy = x.flow, x.seq
        self._check_input_dim(_shape_probe(lazy, flow))
        if not self._uses_batch_stats():
            # Running statistics: an affine map per channel, applied to both streams.
            weight, bias = self._affine(flow)
            mean, var = self.running_mean, self.running_var
            seq_out = lazy.map(lambda z: F.batch_norm(z, mean, var, weight, bias, False, 0.0, self.eps),
                               flow.shape, flow.dtype)
            flow_out = F.batch_norm(flow, mean, var, weight, bias, False, 0.0, self.eps)
            return Dual(seq_out, flow_out, x.weights)

        c = self.num_features
        if self.training and math.prod(lazy.shape) // c == 1:  # as F.batch_norm's check
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, "
                             f"got input shape {tuple(lazy.shape)}")
        with torch.no_grad():
            factor = self._average_factor()
            running_mean, running_var = self._running()
            weight, bias = self._affine(flow)
            sync = self._syncing()
            if lazy.single_window and not sync:
                seq, owned = lazy.materialize_owned(flow.dtype)
                # One fused call: the same kernel F.batch_norm runs (same output, same running-statistics
                # update), which also hands back the batch mean and 1/√(σ² + ε) it normalised with; in place
                # when the sequence was computed here for this layer alone (no second [T, ...] tensor).
                y, mean_s, invstd_s = _native_batch_norm(seq.flatten(0, 1), weight, bias, running_mean, running_var,
                                                         factor, self.eps, in_place=owned)
                seq_out = lazy.like(y.unflatten(0, seq.shape[:2]))
                mean_s, invstd_s = mean_s.to(flow.dtype), invstd_s.to(flow.dtype)
            else:
                mean_s, var_s, n, head = _windowed_var_mean(lazy, flow.dtype)
                unbiased = n / max(n - 1, 1)
                if sync:  # --sync-bn: the statistics of every process's sequence (float64)
                    n, mean_s, var_s = combine_over_ranks(n, mean_s, var_s, self.process_group)
                    unbiased = (n / (n - 1).clamp(min=1)).to(flow.dtype)
                    mean_s, var_s = mean_s.to(flow.dtype), var_s.to(flow.dtype)
                if running_mean is not None:
                    running_mean.mul_(1 - factor).add_(mean_s, alpha=factor)
                    running_var.mul_(1 - factor).add_(var_s * unbiased, alpha=factor)
                source = lazy if head is None else lazy.with_head(head)
                # Fixed statistics: y = x·a + b per channel, a = γ/√(σ² + ε), b = β − μ·a (ATen's CPU order),
                # left to the next layer to apply (a neuron's fused window pass applies it on load).
                invstd_s = 1 / torch.sqrt(var_s + self.eps)
                scale = invstd_s if weight is None else invstd_s * weight.to(flow.dtype)
                shift = -mean_s * scale if bias is None else bias.to(flow.dtype) - mean_s * scale
                seq_out = source.channel_affine(scale, shift)

        weight, bias = self._affine(flow)  # γ, β in their own dtype; cast to the flow's inside
        flow_out = _FlowBatchNorm.apply(flow, mean_s, invstd_s, weight, bias, sync, self.process_group)
        return Dual(seq_out, flow_out, x.weights)

    def _repr_options(self) -> list[str]:
        parts = [str(self.num_features)]
        if self.eps != 1e-5:
            parts.append(f"eps={self.eps:g}")
        if self.momentum != 0.1:
            parts.append(f"momentum={self.momentum}")
        if not self.affine:
            parts.append("affine=False")
        if not self.track_running_stats:
            parts.append("track_running_stats=False")
        if self.sync:
            parts.append("sync=True")
        return parts

    def extra_repr(self) -> str:
        return ", ".join(self._repr_options())


class ThresholdDependentBatchNorm(BatchNormTB):
    """tdBN: BN over (T, B, H, W) jointly, normalised to α·V_th (SPEC §6.2, Zheng et al. AAAI 2021).

    ``y = γ_c·α·V_th·(x − μ_c)/√(σ²_c + ε) + β_c``, μ_c and biased σ²_c over (T, B, H, W) in
    training; running statistics ``r_μ ← (1−m)·r_μ + m·μ``, ``r_σ² ← (1−m)·r_σ² + m·σ²·n/(n−1)``
    (n = T·B·H·W); eval uses r_μ and r_σ² under the same α·V_th.

    With ``gamma_init=True`` (SpikingJelly's variant) the layer is a plain BN over T·B whose γ
    starts at α·V_th and no constant factor is applied: ``y = γ_c·x̂ + β_c``, γ₀ = α·V_th. The forward
    is identical at init; the gradient with respect to γ is scaled differently.

    Args:
        num_features: channel count C (int > 0).
        alpha: α (> 0, dimensionless), 1 for a BN that feeds a neuron, 1/√2 for one whose output is
            summed with a shortcut (bn2 of a residual block, the downsample BN). Default 1.
        v_threshold: V_th of the next neuron layer (> 0, potential units). Default 1.
        eps: added to σ² (default 1e-5).
        momentum: running-statistics factor m (default 0.1).
        gamma_init: SpikingJelly variant, γ₀ = α·V_th and no constant factor (default False).
        affine, track_running_stats, device, dtype, sync: as :class:`BatchNormTB` (with ``sync`` the α·V_th
            scale is kept: only the statistics are shared).

    Shape:
        Input: ``[T, B, C]``, ``[T, B, C, L]`` or ``[T, B, C, H, W]``; output the same shape and dtype.

    Attributes:
        weight: ``[C]`` γ, init 1 (α·V_th with ``gamma_init``); bias: ``[C]`` β, init 0.
        scale: the constant factor α·V_th (1.0 with ``gamma_init``).

    Raises:
        ValueError: ``num_features`` <= 0, ``alpha`` <= 0, ``v_threshold`` <= 0, ``gamma_init`` with
            ``affine=False``; wrong input rank or channel count.

    Example:
        >>> bn2 = TdBN(64, alpha=1 / math.sqrt(2), v_threshold=1.0)  # before a residual add
        >>> bn2(torch.randn(4, 8, 64, 32, 32)).shape
        torch.Size([4, 8, 64, 32, 32])
    """

    def __init__(
        self,
        num_features: int,
        alpha: float = 1.0,
        v_threshold: float = 1.0,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        gamma_init: bool = False,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        sync: bool = False,
    ) -> None:
        name = type(self).__name__
        alpha = float(alpha)
        if not (math.isfinite(alpha) and alpha > 0.0):
            raise ValueError(f"{name}: alpha must be a finite number > 0 (1, or 1/sqrt(2) before a residual add), got {alpha}")
        v_threshold = float(v_threshold)
        if not (math.isfinite(v_threshold) and v_threshold > 0.0):
            raise ValueError(f"{name}: v_threshold must be a finite number > 0 (V_th of the next neuron layer), got {v_threshold}")
        if gamma_init and not affine:
            raise ValueError(f"{name}: gamma_init=True puts alpha*v_threshold into the learnable gamma, which affine=False removes")
        # Set before super().__init__, which calls reset_parameters().
        self.alpha = alpha
        self.v_threshold = v_threshold
        self.gamma_init = bool(gamma_init)
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, sync=sync)

    @property
    def scale(self) -> float:
        """The constant factor applied to γ·x̂: α·V_th, or 1 in the ``gamma_init`` variant."""
        return 1.0 if self.gamma_init else self.alpha * self.v_threshold

    def reset_parameters(self) -> None:
        """Running statistics to 0/1, β to 0, γ to 1 (to α·V_th with ``gamma_init``)."""
        super().reset_parameters()
        if self.affine and self.gamma_init:
            with torch.no_grad():
                self.weight.fill_(self.alpha * self.v_threshold)

    def _affine(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        s = self.scale
        if s == 1.0:
            return self.weight, self.bias
        if self.weight is not None:
            return self.weight * s, self.bias
        # affine=False: the constant α·V_th alone, in the dtype of the statistics (float32 under autocast).
        ref = self.running_mean if self.running_mean is not None else x
        return torch.full((self.num_features,), s, dtype=ref.dtype, device=ref.device), self.bias

    def extra_repr(self) -> str:
        # signature order: num_features, alpha, v_threshold, eps, momentum, gamma_init, affine, ...
        base = self._repr_options()
        head, tail = base[:1], base[1:]
        opts = []
        if self.alpha != 1.0:
            opts.append(f"alpha={self.alpha:g}")
        if self.v_threshold != 1.0:
            opts.append(f"v_threshold={self.v_threshold:g}")
        bn_opts = [o for o in tail if o.startswith(("eps=", "momentum="))]
        rest = [o for o in tail if o not in bn_opts]
        gamma = ["gamma_init=True"] if self.gamma_init else []
        return ", ".join(head + opts + bn_opts + gamma + rest)

TdBN = ThresholdDependentBatchNorm


def convert_sync_batchnorm(model: nn.Module, process_group: object | None = None) -> nn.Module:
    """``--sync-bn``: every :class:`BatchNormTB` / tdBN of ``model`` shares its training statistics over the
    processes of ``process_group`` (None = all), in place; returns ``model``.

    Unlike ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` this keeps the time-first layout (statistics
    over T, B and space), tdBN's α·V_th and the ``Dual`` path of ssf/dsr; state dicts are unchanged.

    Raises:
        ValueError: ``model`` holds a torch BatchNorm (``nn.BatchNorm2d`` …), which reads ``[N, C, ...]``
            batches: it names the module; use :class:`BatchNormTB` there.
    """
    for name, m in model.named_modules():
        if isinstance(m, BatchNormTB):
            m.sync, m.process_group = True, process_group
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise ValueError(f"--sync-bn: module {name or type(model).__name__!r} is a torch {type(m).__name__}, whose "
                             "statistics cannot be shared over [T, B, C, ...] batches here; use "
                             "spikeforge.layers.BatchNormTB (or TdBN) for it")
    return model
