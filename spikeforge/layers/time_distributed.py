"""Fold time into the batch for stateless layers (DESIGN "layers/", STYLE §3 SpikingJelly).

A stateless module (conv, linear, pooling, flatten, ...) treats every time step the same way, so a
time-first sequence ``[T, B, ...]`` can be run as one ANN-sized batch ``[T*B, ...]`` and unfolded
afterwards. This is SpikingJelly's ``layer.SeqToANNContainer`` / ``functional.seq_to_ann_forward``.
One call of the module over the folded batch is both faster than a loop over T and, for layers
whose statistics matter (BatchNorm), the joint (T, B) behaviour the frameworks of SPEC §6 want.
"""
from __future__ import annotations

from torch import Tensor, nn

from spikeforge.streams.dual import (
    Dual,
    is_linear_in_time,
    is_per_step_deterministic,
    map_linear,
    map_stateless,
    reject_batchnorm,
)

__all__ = ["TimeDistributed", "seq_to_ann"]


def _check_time_first(x: Tensor, who: str) -> None:
    """Raise unless ``x`` is a tensor laid out ``[T, B, ...]`` (rank >= 2)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{who}: expected a Tensor [T, B, ...], got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{who}: expected a time-first input [T, B, ...] of rank >= 2, got shape {tuple(x.shape)}")


def seq_to_ann(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a stateless ``module`` to every time step at once by folding T into the batch.

    ``y = module(x.reshape(T*B, ...)).reshape(T, B, ...')``; for a module that treats batch
    elements independently this equals ``torch.stack([module(x[t]) for t in range(T)])``.

    Args:
        module: any callable mapping ``[N, ...] -> [N, ...']`` (an ``nn.Module`` or a function).
        x: ``[T, B, ...]`` time-first input (T steps, B samples).

    Returns:
        ``[T, B, ...']``: the module's output per step, trailing shape as the module makes it.

    An input constant over T (an expanded view, stride 0 on T: a static image repeated) through a
    deterministic per-sample module (conv, linear, pooling, ...) is computed once and expanded (a view; T× less work, the same values).

    Raises:
        ValueError: ``x`` has rank < 2 (no ``[T, B]`` to fold), or the module changed the
            folded batch size ``T*B``.

    Example:
        >>> y = seq_to_ann(nn.Conv2d(2, 8, 3, padding=1), torch.rand(4, 16, 2, 32, 32))  # [4, 16, 8, 32, 32]
    """
    _check_time_first(x, "seq_to_ann")
    t, b = x.shape[0], x.shape[1]
    if t > 1 and x.stride(0) == 0 and isinstance(module, nn.Module) and is_per_step_deterministic(module):
        # A static input repeated over T (an expanded view): one step computed, expanded again.
        y = module(x[0])
        return y.unsqueeze(0).expand(t, *y.shape)
    y = module(x.flatten(0, 1))
    if not isinstance(y, Tensor) or y.dim() < 1 or y.shape[0] != t * b:
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(
            f"seq_to_ann: the module must keep the folded batch T*B = {t}*{b} = {t * b} as its first dim, got {got}"
        )
    return y.unflatten(0, (t, b))


class TimeDistributed(nn.Module):
    """Run stateless module(s) on a time-first sequence by folding T into the batch.

    ``[T, B, ...] -> module([T*B, ...]) -> [T, B, ...']`` (SpikingJelly ``SeqToANNContainer``).
    Only for modules without state across steps; a BatchNorm inside it normalises over the
    folded T·B batch, i.e. over (T, B, H, W) jointly (see :class:`~spikeforge.layers.BatchNormTB`).
    Under ssf/dsr a ``Dual(seq, flow)`` input maps both streams (DESIGN "the two streams"): affine
    modules apply to each; any other module takes its flow value from its own ``seq`` output and its
    gradient at the flow; a torch BatchNorm inside raises (use ``BatchNormTB`` as its own layer).

    Args:
        *modules: one module (kept as ``self.module``, so its state-dict keys are
            ``module.<name>``) or several, chained as ``nn.Sequential`` in the given order.

    Shape:
        Input: ``[T, B, *]`` with T time steps, B samples, ``*`` the module's own input dims.
        Output: ``[T, B, *']``, ``*'`` the module's output dims.

    Raises:
        ValueError: no module given; input of rank < 2 (the message names the ``[T, B, ...]``
            layout and the received shape).

    Example:
        >>> conv = TimeDistributed(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8))
        >>> conv(torch.rand(4, 16, 2, 32, 32)).shape
        torch.Size([4, 16, 8, 32, 32])
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        if not modules:
            raise ValueError("TimeDistributed: expected at least one module to wrap, got none")
        for i, m in enumerate(modules):
            if not isinstance(m, nn.Module):
                raise TypeError(f"TimeDistributed: argument {i} must be an nn.Module, got {type(m).__name__}")
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: Tensor | Dual) -> Tensor | Dual:  # x [T, B, ...] -> [T, B, ...']
        if isinstance(x, Dual):
            reject_batchnorm(self.module, type(self).__name__)
            return (map_linear if is_linear_in_time(self.module) else map_stateless)(self.module, x)
        _check_time_first(x, type(self).__name__)
        return seq_to_ann(self.module, x)
