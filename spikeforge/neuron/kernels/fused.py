"""Plumbing shared by the fused kernels (``cpu``, ``triton``): custom ops, autograd, fake impls.

A fused kernel supplies two raw functions on flat, contiguous tensors (``x`` is ``[T, N]``). A kernel
computes in float32 (or float64) and reads and writes its ``[T, N]`` inputs and outputs in the dtypes of
its ``io_dtypes``: x as given there, else converted to float32 first. ``h``, ``v0`` and λ, κ, V_th are in
the compute dtype (float64 for float64 x, else float32); spikes, v_seq and ∂L/∂X in x's dtype. The
``triton`` kernel takes half and bfloat16 as they are (under ``torch.amp`` a layer then moves 16 bytes per
element and step, 10 where it recomputes H, instead of 48 with the conversions around an fp32 kernel), the
``cpu`` kernel converts.

``forward(x, v0, decay, gain, vth, v_rest, hard, strict, return_v, fire_ratio, store_h) -> (spikes, h, v_seq)``
    spikes, h: ``[T, N]`` (h = potential after charge, before reset: all backward needs, with X where κ is
    learnable); with ``store_h`` false h is empty and backward recomputes it from x, which it then receives
    (:attr:`FusedKernel.recompute_max_t`: the ``triton`` kernel does so for short sequences);
    v_seq: ``[T, N]`` potential after reset when ``return_v``, else an empty tensor.
    v0: ``[N]`` the starting potential, or empty for v_rest (no ``[N]`` fill written and read back).
``backward(grad_s, grad_v, h, x, v0, decay, gain, vth, v_rest, hard, detach, strict, sg_id, sg_a, sg_b, fire_ratio,
need_v0, need_decay, need_gain, need_vth) -> (grad_x [T, N], grad_v0, grad_decay, grad_gain, grad_vth)``
    grad_x has grad_s's dtype (x's); the ``[N]`` outputs h's.
    σ' is the formula ``KERNEL_DERIVATIVES[sg_id]`` of :mod:`spikeforge.neuron.surrogate` with the constants
    ``(sg_a, sg_b) = surrogate.kernel_constants()``, passed as they are (a kernel never recomputes them from α).
    grad_v is empty when there is no gradient for v_seq; x is empty unless κ needs a gradient or h is empty; v0
    as in forward. The per-neuron outputs are ``[N]`` where asked for (``need_v0``, ``need_decay``, ``need_gain``,
    ``need_vth``) and empty otherwise: a fixed λ or V_th and a v_init without gradient cost no ``[N]`` write,
    no sum.
    The three per-neuron partials are summed over N here. ``fire_ratio`` r: the
    neuron fires at r·V_th (σ' taken at H − r·V_th, ∂S/∂V_th = −r·σ') and resets by V_th (DSR's α).

:func:`define_fused_ops` registers both as ``torch.library`` custom ops (``spikeforge::<name>_fwd`` /
``_bwd``) with fake impls and autograd, so a fused neuron works under ``torch.compile``, ``torch.amp``
(half/bf16 input is computed in fp32 and returned in the input dtype) and DDP. Saved for backward:
``h`` (one ``[T, N]`` tensor), plus ``x`` only when κ is learnable (PLIF with ``decay_input=True``); or ``x``
alone where the kernel recomputes H.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from spikeforge.neuron.kernels.base import Kernel, NeuronSpec
from spikeforge.neuron.surrogate import KERNEL_DERIVATIVES, Surrogate

__all__ = ["FusedKernel", "compute_dtype", "define_fused_ops", "define_window_op", "surrogate_unsupported"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a fused kernel computes in (and keeps ``h``, ``v0``, λ, κ, V_th in) for input of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def define_fused_ops(name: str, forward: Callable, backward: Callable, device_types: str | tuple[str, ...]):
    """Register ``forward``/``backward`` as custom ops with autograd; returns the forward op."""
    fwd_name, bwd_name = f"spikeforge::{name}_fwd", f"spikeforge::{name}_bwd"

    @torch.library.custom_op(fwd_name, mutates_args=(), device_types=device_types)
    def fwd(
        x: Tensor, v0: Tensor, decay: Tensor, gain: Tensor, vth: Tensor,
        v_rest: float, hard: bool, detach: bool, strict: bool, sg_id: int, sg_a: float, sg_b: float, return_v: bool,
        fire_ratio: float, store_h: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        return forward(x, v0, decay, gain, vth, v_rest, hard, strict, return_v, fire_ratio, store_h)

    @fwd.register_fake
    def _(x, v0, decay, gain, vth, v_rest, hard, detach, strict, sg_id, sg_a, sg_b, return_v, fire_ratio, store_h):
        v_seq = torch.empty_like(x) if return_v else x.new_empty(0)
        dtype = compute_dtype(x.dtype)
        h = torch.empty_like(x, dtype=dtype) if store_h else x.new_empty(0, dtype=dtype)
        return torch.empty_like(x), h, v_seq

    @torch.library.custom_op(bwd_name, mutates_args=(), device_types=device_types)
    def bwd(
        grad_s: Tensor, grad_v: Tensor, h: Tensor, x: Tensor, v0: Tensor, decay: Tensor, gain: Tensor,
        vth: Tensor, v_rest: float, hard: bool, detach: bool, strict: bool, sg_id: int, sg_a: float, sg_b: float,
        fire_ratio: float, need_v0: bool, need_decay: bool, need_gain: bool, need_vth: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        return backward(grad_s, grad_v, h, x, v0, decay, gain, vth, v_rest, hard, detach, strict, sg_id, sg_a, sg_b,
                        fire_ratio, need_v0, need_decay, need_gain, need_vth)

    @bwd.register_fake
    def _(grad_s, grad_v, h, x, v0, decay, gain, vth, v_rest, hard, detach, strict, sg_id, sg_a, sg_b, fire_ratio,
          need_v0, need_decay, need_gain, need_vth):
        n = grad_s.shape[1]
        return (torch.empty_like(grad_s), *(h.new_empty(n if need else 0)
                                            for need in (need_v0, need_decay, need_gain, need_vth)))

    def setup_context(ctx, inputs, output):
        x, v0, decay, gain, vth, v_rest, hard, detach, strict, sg_id, sg_a, sg_b, return_v, fire_ratio, _ = inputs
        _, h, _ = output
        keep_x = x if gain.requires_grad or h.numel() < x.numel() else x.new_empty(0)  # κ's gradient, or no H
        ctx.save_for_backward(h, keep_x, v0, decay, gain, vth)
        ctx.static = (v_rest, hard, detach, strict, sg_id, sg_a, sg_b, fire_ratio)
        ctx.shape = x.shape
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)  # unused outputs (h, an unread v_seq) arrive as None, not [T, N] zeros

    def backward_fn(ctx, grad_s, grad_h, grad_v):
        h, x, v0, decay, gain, vth = ctx.saved_tensors
        if grad_s is None:  # zeros of S's shape and dtype (x's): S was not used
            grad_s = torch.zeros(ctx.shape, dtype=x.dtype, device=h.device)
        grad_s = grad_s.contiguous()
        grad_v = h.new_empty(0) if grad_v is None or grad_v.numel() == 0 else grad_v.contiguous()
        need = ctx.needs_input_grad
        need_v0 = bool(need[1]) and v0.numel() > 0
        gx, gv0, gdecay, ggain, gvth = bwd(grad_s, grad_v, h, x, v0, decay, gain, vth, *ctx.static,
                                            need_v0, bool(need[2]), bool(need[3]), bool(need[4]))
        return (gx if need[0] else None, gv0 if need_v0 else None, _total(gdecay, decay), _total(ggain, gain),
                _total(gvth, vth), None, None, None, None, None, None, None, None, None, None)

    fwd.register_autograd(backward_fn, setup_context=setup_context)
    return fwd


def _total(partials: Tensor, param: Tensor) -> Tensor | None:
    """The parameter's gradient: its ``[N]`` partials summed, or None where the kernel was not asked for them."""
    return partials.sum().reshape(param.shape) if partials.numel() > 0 else None


def define_window_op(name: str, window: Callable, device_types: str | tuple[str, ...]):
    """Register a raw window pass as the custom op ``spikeforge::<name>_window`` (no autograd: the seq stream
    of the one-step methods runs without it), mutating the state and the bits in place, so ``torch.compile``
    keeps it as one node of the graph instead of breaking the graph at a compiled extension or a launch.

    ``window(x, v, input_sum, spike_sum, weights, decay, gain, vth, bits, scale, shift, inner, v_rest, hard,
    strict, fire_ratio) -> None`` on checked arguments (:func:`~spikeforge.neuron.kernels.window.prepare_window`;
    ``scale``/``shift`` empty without the affine)."""

    @torch.library.custom_op(f"spikeforge::{name}_window", mutates_args=("v", "input_sum", "spike_sum", "bits"),
                             device_types=device_types)
    def op(x: Tensor, v: Tensor, input_sum: Tensor, spike_sum: Tensor, weights: Tensor, decay: Tensor, gain: Tensor,
           vth: Tensor, bits: Tensor, scale: Tensor, shift: Tensor, inner: int, v_rest: float, hard: bool, strict: bool,
           fire_ratio: float) -> None:
        window(x, v, input_sum, spike_sum, weights, decay, gain, vth, bits, scale, shift, inner, v_rest, hard, strict,
               fire_ratio)

    @op.register_fake
    def _(x, v, input_sum, spike_sum, weights, decay, gain, vth, bits, scale, shift, inner, v_rest, hard, strict,
          fire_ratio) -> None:
        return None

    return op


def surrogate_unsupported(kernel: str, surrogate: object) -> str | None:
    """Why fused kernel ``kernel`` cannot differentiate ``surrogate`` (None when it can): a plain callable, or a
    :class:`Surrogate` whose ``kernel_id`` names no formula of ``KERNEL_DERIVATIVES``."""
    if not isinstance(surrogate, Surrogate):
        return f"kernel {kernel!r} needs a registered surrogate, got the callable {surrogate!r}"
    if getattr(surrogate, "kernel_id", None) not in KERNEL_DERIVATIVES:
        return (f"kernel {kernel!r} has no derivative for surrogate {surrogate!r} "
                f"(kernel_id {getattr(surrogate, 'kernel_id', None)}); known kernel_ids: {sorted(KERNEL_DERIVATIVES)}")
    return None


class FusedKernel(Kernel):
    """A kernel backed by a forward op from :func:`define_fused_ops`.

    Subclasses set ``device_type`` and implement :meth:`op` (the op, built lazily on first use so that
    a missing compiler or Triton only matters when the kernel is chosen).
    """

    device_type: str = "cpu"
    #: dtypes of x the raw ops take as they are (others are converted to float32 first)
    io_dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
    #: longest T whose forward stores no H (backward recomputes it from X); 0: H always stored
    recompute_max_t: int = 0

    def op(self) -> Callable:
        raise NotImplementedError

    def unavailable(self, x: Tensor, spec: NeuronSpec) -> str | None:
        if x.device.type != self.device_type:
            return f"kernel {self.name!r} runs on {self.device_type} tensors, got {x.device.type}"
        return surrogate_unsupported(self.name, spec.surrogate)

    def __call__(self, x, v_init, decay, input_gain, v_threshold, spec: NeuronSpec, return_v=False):
        shape, dtype = x.shape, x.dtype
        compute = compute_dtype(dtype)
        x2 = x.reshape(shape[0], -1).to(dtype if dtype in self.io_dtypes else compute).contiguous()
        # no v_init: an empty v0, the kernel starts at v_rest (nothing filled, nothing read back)
        v0 = x2.new_empty(0, dtype=compute) if v_init is None else v_init.reshape(-1).to(compute).contiguous()
        params = [p.to(compute) for p in (decay, input_gain, v_threshold)]
        sg = spec.surrogate
        sg_a, sg_b = sg.kernel_constants()
        store_h = x2.shape[0] > self.recompute_max_t or x2.numel() == 0
        s, _, v = self.op()(x2, v0, *params, spec.v_rest, spec.hard, spec.detach_reset, spec.strict,
                            sg.kernel_id, float(sg_a), float(sg_b), return_v, float(spec.fire_ratio), store_h)
        s = s.reshape(shape).to(dtype)
        return s, (v.reshape(shape).to(dtype) if return_v else None)
