"""Layers under ssf/dsr: ``Dual(seq, flow, weights)`` inputs (DESIGN "Where the two streams need care").

Values come from ``seq``, gradients travel along ``flow``. BN over T·B: the value statistics are the
seq's, the gradient is BN's on the flow batch with the statistics' values replaced by the seq's;
running statistics are updated once, from seq. Dropout: one mask ``[B, ...]`` for seq (every step)
and flow. Voting and other affine layers map both streams. Max-pool: flow value = aggregate of the
pooled seq, gradient = max-pool's at the flow.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeforge.layers import BatchNormTB, TdBN, TimeDistributed, TimeFixedDropout, VotingLayer
from spikeforge.streams.dual import Dual, aggregate, decay_weights, reject_batchnorm

F64 = torch.float64
INV_SQRT2 = 1.0 / math.sqrt(2.0)
T, B, C, H, W = 4, 3, 2, 3, 2


def make_dual(shape=(T, B, C, H, W), seed=0, decay=0.6, scale=1.5, shift=0.3) -> Dual:
    g = torch.Generator().manual_seed(seed)
    seq = torch.randn(*shape, generator=g, dtype=F64) * scale + shift
    # a time trend so the flow batch's statistics differ clearly from the seq's
    seq = seq + torch.linspace(-1.0, 1.0, shape[0], dtype=F64).view(-1, *([1] * (len(shape) - 1)))
    w = decay_weights(decay, shape[0], dtype=F64)
    flow = aggregate(seq, w).clone().requires_grad_(True)
    return Dual(seq, flow, w)


def make_bn(kind: str, seed: int = 1, **kw) -> nn.Module:
    bn = (BatchNormTB(C, dtype=F64, **kw) if kind == "bn"
          else TdBN(C, alpha=INV_SQRT2, v_threshold=0.5, dtype=F64, **kw))
    if bn.affine:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bn.weight.copy_(torch.rand(C, generator=g, dtype=F64) + 0.5)
            bn.bias.copy_(torch.randn(C, generator=g, dtype=F64))
    return bn


def const_scale(bn: nn.Module) -> float:
    return bn.scale if isinstance(bn, TdBN) else 1.0


def reference_grads(bn: nn.Module, x: Dual, g_out: torch.Tensor):
    """Closed-form gradients (flow, γ, β) of y = a·(f − μ)·r + β, μ = μ_f + (μ_s − μ_f).detach(),
    σ² = σ²_f + (σ²_s − σ²_f).detach(), r = (σ² + ε)^(−1/2), a = γ·scale; statistics per channel over
    (B, spatial) of the flow and (T, B, spatial) of seq (biased). Derived by hand:
        ∂L/∂f_i = a·r·(g_i − mean(g)) − a·r³·(f_i − μ_f)·mean(g·(f − μ_s)).
    """
    f = x.flow.detach()
    seq_dims = [0, 1] + list(range(3, len(x.shape)))
    flow_dims = [0] + list(range(2, f.dim()))
    view = [1, C] + [1] * (f.dim() - 2)
    mu_s = x.materialize().mean(seq_dims)
    var_s = ((x.materialize() - mu_s.view([1] + view)) ** 2).mean(seq_dims)
    mu_f = f.mean(flow_dims)
    r = (var_s + bn.eps) ** -0.5
    gamma = bn.weight.detach() if bn.affine else torch.ones(C, dtype=F64)
    a = (gamma * const_scale(bn)).view(view)
    r, mu_s, mu_f = r.view(view), mu_s.view(view), mu_f.view(view)
    xhat = (f - mu_s) * r
    g_f = (a * r * (g_out - g_out.mean(flow_dims, keepdim=True))
           - a * r ** 3 * (f - mu_f) * (g_out * (f - mu_s)).mean(flow_dims, keepdim=True))
    g_gamma = (g_out * xhat).sum(flow_dims) * const_scale(bn)
    g_beta = g_out.sum(flow_dims)
    return g_f, g_gamma, g_beta


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
@pytest.mark.parametrize("shape", [(T, B, C, H, W), (T, B, C, 5), (T, 5, C)])
def test_bn_dual_training_values_running_stats_and_gradients(kind, shape):
    x = make_dual(shape)
    bn, plain = make_bn(kind), make_bn(kind)
    y = bn(x)
    assert isinstance(y, Dual) and y.weights is x.weights
    # seq output = the plain layer on seq; running statistics = one plain call on seq
    ref = plain(x.materialize())
    torch.testing.assert_close(y.materialize(), ref, rtol=0, atol=1e-14)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(bn, name), getattr(plain, name), rtol=0, atol=1e-14)
    assert int(bn.num_batches_tracked) == 1
    # flow value = aggregate of the seq output
    assert y.flow.shape == x.flow.shape
    assert (y.flow.detach() - aggregate(y.materialize(), x.weights)).abs().max().item() < 1e-10
    # gradient: BN on the flow batch with the statistics' values replaced by the seq's
    g_out = torch.randn(x.flow.shape, generator=torch.Generator().manual_seed(7), dtype=F64)
    (y.flow * g_out).sum().backward()
    g_f, g_gamma, g_beta = reference_grads(bn, x, g_out)
    torch.testing.assert_close(x.flow.grad, g_f, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.weight.grad, g_gamma, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.bias.grad, g_beta, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
def test_bn_dual_gradient_matches_autograd_of_detach_corrected_bn(kind):
    """Second, autograd-based reference: F.batch_norm's formula written out on the flow with the
    statistics' values moved to the seq's by detach corrections."""
    x = make_dual(seed=3)
    bn = make_bn(kind)
    y = bn(x)
    g_out = torch.randn(x.flow.shape, generator=torch.Generator().manual_seed(8), dtype=F64)
    (y.flow * g_out).sum().backward()

    f = x.flow.detach().clone().requires_grad_(True)
    gamma = bn.weight.detach().clone().requires_grad_(True)
    beta = bn.bias.detach().clone().requires_grad_(True)
    seq_folded = x.materialize().transpose(0, 2).reshape(C, -1)  # [C, T·B·H·W]
    mu_s, var_s = seq_folded.mean(1), seq_folded.var(1, unbiased=False)
    f_c = f.transpose(0, 1).reshape(C, -1)
    mu_f, var_f = f_c.mean(1), f_c.var(1, unbiased=False)
    mu = (mu_f + (mu_s - mu_f).detach()).view(1, C, 1, 1)
    var = (var_f + (var_s - var_f).detach()).view(1, C, 1, 1)
    ref = gamma.view(1, C, 1, 1) * const_scale(bn) * (f - mu) / torch.sqrt(var + bn.eps) + beta.view(1, C, 1, 1)
    torch.testing.assert_close(y.flow.detach(), ref.detach(), rtol=1e-12, atol=1e-12)
    (ref * g_out).sum().backward()
    torch.testing.assert_close(x.flow.grad, f.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.weight.grad, gamma.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.bias.grad, beta.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
def test_bn_dual_one_step_equals_plain_batch_norm_on_the_flow(kind):
    """T = 1, weight 1: flow batch = seq batch, so the Dual gradient is exactly F.batch_norm's."""
    x = make_dual((1, 6, C, H, W), seed=4)
    bn = make_bn(kind)
    y = bn(x)
    g_out = torch.randn(x.flow.shape, generator=torch.Generator().manual_seed(9), dtype=F64)
    (y.flow * g_out).sum().backward()
    f = x.flow.detach().clone().requires_grad_(True)
    gamma = bn.weight.detach().clone().requires_grad_(True)
    beta = bn.bias.detach().clone().requires_grad_(True)
    ref = F.batch_norm(f, None, None, gamma * const_scale(bn), beta, True, 0.0, bn.eps)
    torch.testing.assert_close(y.flow.detach(), ref.detach(), rtol=1e-12, atol=1e-12)
    (ref * g_out).sum().backward()
    torch.testing.assert_close(x.flow.grad, f.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.weight.grad, gamma.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.bias.grad, beta.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_bn_dual_running_stats_over_several_calls(kind, momentum):
    bn, plain = make_bn(kind, momentum=momentum), make_bn(kind, momentum=momentum)
    for seed in range(3):
        x = make_dual(seed=seed)
        bn(x)
        plain(x.materialize())
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(bn, name), getattr(plain, name), rtol=0, atol=1e-14)
    assert int(bn.num_batches_tracked) == 3


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
def test_bn_dual_eval_is_affine_on_both_streams(kind):
    bn = make_bn(kind)
    for seed in range(2):  # non-trivial running statistics
        bn(make_dual(seed=10 + seed))
    bn.eval()
    state = copy.deepcopy(bn.state_dict())
    x = make_dual(seed=5)
    y = bn(x)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, state[k]), k  # eval updates nothing
    torch.testing.assert_close(y.materialize(), bn(x.materialize()), rtol=0, atol=1e-14)
    assert (y.flow.detach() - aggregate(y.materialize(), x.weights)).abs().max().item() < 1e-10
    g_out = torch.randn(x.flow.shape, generator=torch.Generator().manual_seed(11), dtype=F64)
    (y.flow * g_out).sum().backward()
    a = bn.weight.detach() * const_scale(bn) / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(x.flow.grad, g_out * a.view(1, C, 1, 1), rtol=1e-12, atol=1e-14)
    xhat = (x.flow.detach() - bn.running_mean.view(1, C, 1, 1)) / torch.sqrt(bn.running_var + bn.eps).view(1, C, 1, 1)
    torch.testing.assert_close(bn.weight.grad, (g_out * xhat).sum((0, 2, 3)) * const_scale(bn), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(bn.bias.grad, g_out.sum((0, 2, 3)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
def test_bn_dual_without_affine_or_running_stats(kind):
    for kw in ({"affine": False}, {"track_running_stats": False}):
        bn, plain = make_bn(kind, **kw), make_bn(kind, **kw)
        x = make_dual(seed=6)
        y = bn(x)
        torch.testing.assert_close(y.materialize(), plain(x.materialize()), rtol=0, atol=1e-14)
        assert (y.flow.detach() - aggregate(y.materialize(), x.weights)).abs().max().item() < 1e-10
        y.flow.sum().backward()
        assert x.flow.grad is not None and torch.isfinite(x.flow.grad).all()
        if not bn.track_running_stats:  # eval keeps batch statistics
            bn.eval(), plain.eval()
            x = make_dual(seed=7)
            y = bn(x)
            torch.testing.assert_close(y.materialize(), plain(x.materialize()), rtol=0, atol=1e-14)
            assert (y.flow.detach() - aggregate(y.materialize(), x.weights)).abs().max().item() < 1e-10


def test_tdbn_scale_applies_in_both_streams():
    x = make_dual(seed=2)
    td = make_bn("tdbn")
    bn = BatchNormTB(C, dtype=F64)
    with torch.no_grad():
        bn.weight.copy_(td.weight * INV_SQRT2 * 0.5)
        bn.bias.copy_(td.bias)
    y_td, y_bn = td(x), bn(x)
    torch.testing.assert_close(y_td.materialize(), y_bn.materialize(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y_td.flow, y_bn.flow, rtol=1e-12, atol=1e-12)


def test_bn_dual_bool_seq_and_checks():
    g = torch.Generator().manual_seed(0)
    seq = torch.rand(T, B, C, H, W, generator=g, dtype=F64) < 0.4
    w = decay_weights(0.5, T, dtype=F64)
    x = Dual(seq, aggregate(seq, w).requires_grad_(True), w)
    bn, plain = make_bn("bn"), make_bn("bn")
    y = bn(x)
    torch.testing.assert_close(y.materialize(), plain(seq.to(F64)), rtol=0, atol=1e-14)
    bad = make_dual((T, B, C + 1, H, W))
    with pytest.raises(ValueError, match="channels"):
        make_bn("bn")(bad)
    one = make_dual((1, 1, C))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        make_bn("bn")(one)


def test_batchnorm_tb_supports_dual_and_torch_bn_is_rejected():
    assert BatchNormTB.supports_dual and TdBN.supports_dual
    reject_batchnorm(nn.Sequential(BatchNormTB(C)), "test")  # no error
    with pytest.raises(ValueError, match="BatchNorm2d"):
        reject_batchnorm(nn.Sequential(nn.BatchNorm2d(C)), "test")


def test_bn_plain_tensor_unchanged():
    x = make_dual(seed=1).materialize().clone().requires_grad_(True)
    bn = make_bn("tdbn")
    y = bn(x)
    assert isinstance(y, torch.Tensor)
    ref = F.batch_norm(x.flatten(0, 1), None, None, bn.weight * bn.scale, bn.bias, True, 0.0, bn.eps).unflatten(0, (T, B))
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-14)


# -- dropout -------------------------------------------------------------------------------------

def test_dropout_dual_one_mask_for_every_step_and_the_flow():
    x = make_dual((T, 8, 16))
    dp = TimeFixedDropout(0.5)
    torch.manual_seed(0)
    y = dp(x)
    assert isinstance(y, Dual) and y.weights is x.weights
    ratio = y.materialize() / x.materialize()  # {0, 2}, the same at every step
    assert set(ratio.unique().tolist()) <= {0.0, 2.0}
    assert 0 < (ratio[0] == 0).sum() < ratio[0].numel()
    for t in range(T):
        assert torch.equal(ratio[t], ratio[0])
    torch.testing.assert_close(y.flow.detach(), x.flow.detach() * ratio[0], rtol=0, atol=1e-14)
    assert (y.flow.detach() - aggregate(y.materialize(), x.weights)).abs().max().item() < 1e-10
    y.flow.sum().backward()
    torch.testing.assert_close(x.flow.grad, ratio[0], rtol=0, atol=0)
    # reproducible from the global RNG, as the plain layer
    torch.manual_seed(0)
    torch.testing.assert_close(dp(x).materialize(), y.materialize(), rtol=0, atol=0)


def test_dropout_dual_eval_and_p0_are_identity():
    x = make_dual((T, 4, 6))
    assert TimeFixedDropout(0.5).eval()(x) is x
    assert TimeFixedDropout(0.0)(x) is x


def test_dropout_dual_bool_seq():
    seq = torch.rand(T, 4, 6, generator=torch.Generator().manual_seed(1)) < 0.5
    w = decay_weights(0.5, T)
    x = Dual(seq, aggregate(seq, w).requires_grad_(True), w)
    y = TimeFixedDropout(0.3)(x)
    assert y.materialize().dtype == x.flow.dtype
    assert (y.flow.detach() - aggregate(y.materialize(), w)).abs().max().item() < 1e-6


# -- voting --------------------------------------------------------------------------------------

def test_voting_dual_maps_both_streams():
    x = make_dual((T, B, 20))
    vote = VotingLayer(5)
    y = vote(x)
    assert isinstance(y, Dual) and y.materialize().shape == (T, B, 4) and y.flow.shape == (B, 4)
    torch.testing.assert_close(y.materialize(), x.materialize().reshape(T, B, 4, 5).mean(-1), rtol=0, atol=1e-15)
    assert (y.flow.detach() - aggregate(y.materialize(), x.weights)).abs().max().item() < 1e-10
    y.flow.sum().backward()
    torch.testing.assert_close(x.flow.grad, torch.full_like(x.flow, 0.2), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="multiple of"):
        VotingLayer(3)(x)


# -- max-pool inside TimeDistributed -------------------------------------------------------------

def test_maxpool_dual_value_from_seq_gradient_at_flow_argmax():
    x = make_dual((T, B, C, 4, 4), seed=12)
    pool = TimeDistributed(nn.MaxPool2d(2))
    y = pool(x)
    pooled = F.max_pool2d(x.materialize().flatten(0, 1), 2).unflatten(0, (T, B))
    torch.testing.assert_close(y.materialize(), pooled, rtol=0, atol=0)
    assert (y.flow.detach() - aggregate(pooled, x.weights)).abs().max().item() < 1e-10
    # the max of the aggregate is not the aggregate of the max: the value really comes from seq
    assert (y.flow.detach() - F.max_pool2d(x.flow.detach(), 2)).abs().max().item() > 1e-3
    g_out = torch.randn(y.flow.shape, generator=torch.Generator().manual_seed(13), dtype=F64)
    (y.flow * g_out).sum().backward()
    _, idx = F.max_pool2d(x.flow.detach(), 2, return_indices=True)  # argmax of the flow
    expect = torch.zeros_like(x.flow).flatten(2).scatter_(2, idx.flatten(2), g_out.flatten(2)).view_as(x.flow)
    torch.testing.assert_close(x.flow.grad, expect, rtol=0, atol=0)
