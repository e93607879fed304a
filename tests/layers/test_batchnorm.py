"""BatchNormTB and tdBN (SPEC §6.2, oracles F1–F3).

Oracle tolerance (SPEC §6): 1e-6 relative with an absolute floor of 1e-9, in float64.
"""
from __future__ import annotations

import io
import math
import re

import pytest
import torch
from torch import nn

from spikeforge.layers import BatchNormTB, TdBN, ThresholdDependentBatchNorm, TimeDistributed

RTOL, ATOL = 1e-6, 1e-9
INV_SQRT2 = 1.0 / math.sqrt(2.0)

F1_CH0 = 0.9999950000
F1_CH1 = [-1.5275237769, -1.0910884120, -0.6546530472, -0.2182176824,
          0.2182176824, 0.6546530472, 1.0910884120, 1.5275237769]


def f1_input() -> torch.Tensor:
    """SPEC F1 input, [T=2, B=2, C=2, H=1, W=2] float64."""
    x = torch.zeros(2, 2, 2, 1, 2, dtype=torch.float64)
    x[1, :, 0] = 2.0  # channel 0: 0 at t=0, 2 at t=1
    x[:, :, 1, 0, :] = torch.arange(1, 9, dtype=torch.float64).reshape(2, 2, 2)  # channel 1: 1..8 in (T, B, W) order
    return x


def channel(y: torch.Tensor, c: int) -> torch.Tensor:
    """Values of channel c of a [T, B, C, H, W] tensor in (T, B, H, W) order."""
    return y[:, :, c].reshape(-1)


def re_shape(shape: tuple[int, ...]) -> str:
    return re.escape(str(tuple(shape)))


def close(actual: torch.Tensor, expected) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------------- oracles
def test_F1_tdbn_joint_statistics():
    """SPEC §6.2 F1: train mode, α = 1, V_th = 1, γ = 1, β = 0; μ = [1, 4.5], σ² = [1, 5.25]."""
    x = f1_input()
    bn = TdBN(2, momentum=1.0).double()  # momentum 1: running stats = this batch's μ and unbiased σ²
    y = bn(x)
    close(channel(y, 0), [-F1_CH0] * 4 + [F1_CH0] * 4)
    close(channel(y, 1), F1_CH1)
    n = 8
    close(bn.running_mean, [1.0, 4.5])
    close(bn.running_var * (n - 1) / n, [1.0, 5.25])  # biased σ²


def test_F1_discriminator_per_timestep_bn_differs():
    """SPEC F1: a per-timestep BN would output 0 for channel 0; the joint one gives ∓0.999995."""
    x = f1_input()
    per_step = nn.BatchNorm2d(2).double()
    y_step = torch.stack([per_step(x[t]) for t in range(x.shape[0])])
    close(channel(y_step, 0), [0.0] * 8)
    y = TdBN(2).double()(x)
    assert channel(y, 0).abs().min() > 0.99
    assert not torch.allclose(channel(y, 0), channel(y_step, 0))


@pytest.mark.parametrize("gamma_init", [False, True], ids=["tdbn", "spikingjelly"])
@pytest.mark.parametrize(
    "alpha, v_th, ch0, ch1",
    [
        (1.0, 1.0, F1_CH0, F1_CH1),
        (INV_SQRT2, 1.0, 0.7071032457,
         [-1.0801224210, -0.7715160150, -0.4629096090, -0.1543032030,
          0.1543032030, 0.4629096090, 0.7715160150, 1.0801224210]),
        (1.0, 0.5, 0.4999975000, [-0.7637618884]),
    ],
    ids=["alpha1_vth1", "alpha1/sqrt2_vth1", "alpha1_vth0.5"],
)
def test_F2_tdbn_scaling(gamma_init, alpha, v_th, ch0, ch1):
    """SPEC §6.2 F2: output scaled by α·V_th; the gamma_init variant gives the same numbers at init."""
    bn = TdBN(2, alpha=alpha, v_threshold=v_th, gamma_init=gamma_init).double()
    y = bn(f1_input())
    close(channel(y, 0), [-ch0] * 4 + [ch0] * 4)
    c1 = channel(y, 1)
    close(c1[: len(ch1)], ch1)
    close(c1, -c1.flip(0))  # antisymmetric


def test_F2_gamma_init_same_forward_different_gamma_gradient():
    """SPEC §6.2: gamma_init has the same forward at init; ∂L/∂γ differs by the factor α·V_th."""
    alpha, v_th = INV_SQRT2, 0.5
    x = f1_input()
    # built in float64: γ₀ = α·V_th rounded to float32 and then widened would differ by ~1e-8
    a = TdBN(2, alpha=alpha, v_threshold=v_th, dtype=torch.float64)
    b = TdBN(2, alpha=alpha, v_threshold=v_th, gamma_init=True, dtype=torch.float64)
    close(b.weight.detach(), [alpha * v_th] * 2)
    assert a.scale == pytest.approx(alpha * v_th) and b.scale == 1.0
    g = torch.linspace(-1, 2, x.numel(), dtype=x.dtype).reshape(x.shape)  # an uneven upstream gradient
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb, rtol=1e-12, atol=1e-12)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(a.weight.grad, b.weight.grad * alpha * v_th, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.bias.grad, b.bias.grad, rtol=1e-12, atol=1e-12)


def test_F3_tdbn_running_stats_and_eval():
    """SPEC §6.2 F3: one train step from fresh buffers (m = 0.1, n = 8), then eval on x = 1."""
    x = f1_input()
    for alpha, eval_ch0, eval_ch1 in [(1.0, 0.8936350910, 0.4490716226), (INV_SQRT2, 0.6318954328, None)]:
        bn = TdBN(2, alpha=alpha).double()
        close(bn.running_mean, [0.0, 0.0])
        close(bn.running_var, [1.0, 1.0])
        bn(x)
        close(bn.running_mean, [0.1, 0.45])
        close(bn.running_var, [1.0142857143, 1.5])  # 0.9 + 0.1·8/7, 0.9 + 0.1·6
        assert int(bn.num_batches_tracked) == 1
        bn.eval()
        y = bn(torch.ones_like(x))
        close(channel(y, 0), [eval_ch0] * 8)
        if eval_ch1 is not None:
            close(channel(y, 1), [eval_ch1] * 8)
        close(bn.running_mean, [0.1, 0.45])  # eval leaves the buffers alone
        torch.testing.assert_close(bn(torch.ones_like(x)), y, rtol=0, atol=0)  # no state between calls


def test_F3_gamma_init_eval_matches():
    """The SpikingJelly variant also evaluates with the running stats under α·V_th (same value at init)."""
    x = f1_input()
    bn = TdBN(2, alpha=INV_SQRT2, gamma_init=True).double()
    bn(x)
    bn.eval()
    close(channel(bn(torch.ones_like(x)), 0), [0.6318954328] * 8)


# ------------------------------------------------------------------ BatchNormTB vs nn.BatchNorm
@pytest.mark.parametrize(
    "shape, ref_cls",
    [((3, 4, 5), nn.BatchNorm1d), ((3, 4, 5, 6), nn.BatchNorm1d), ((3, 4, 5, 6, 7), nn.BatchNorm2d)],
    ids=["TBC", "TBCL", "TBCHW"],
)
def test_batchnorm_tb_equals_torch_bn_on_folded_input(shape, ref_cls):
    """Values, input/γ/β gradients and running stats equal nn.BatchNorm on x.flatten(0, 1); eval too."""
    gen = torch.Generator().manual_seed(0)
    c = shape[2]
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 3 + 1
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    ours = BatchNormTB(c).double()
    ref = ref_cls(c).double()
    with torch.no_grad():
        w = torch.rand(c, generator=gen, dtype=torch.float64) + 0.5
        b = torch.randn(c, generator=gen, dtype=torch.float64)
        for m in (ours, ref):
            m.weight.copy_(w)
            m.bias.copy_(b)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    for _ in range(2):
        y1 = ours(x1)
        y2 = ref(x2.flatten(0, 1)).unflatten(0, shape[:2])
        torch.testing.assert_close(y1, y2, rtol=1e-12, atol=1e-12)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-12, atol=1e-12)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 2
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x.flatten(0, 1)).unflatten(0, shape[:2]), rtol=1e-12, atol=1e-12)


def test_batchnorm_tb_equals_time_distributed_bn():
    """BatchNormTB is nn.BatchNorm2d inside TimeDistributed (train-mode statistics over T·B)."""
    x = torch.randn(4, 3, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(BatchNormTB(2)(x), TimeDistributed(nn.BatchNorm2d(2))(x))


@pytest.mark.parametrize("momentum", [None, 0.3])
def test_batchnorm_tb_momentum_options(momentum):
    """momentum=None is the cumulative average, as in nn.BatchNorm."""
    gen = torch.Generator().manual_seed(2)
    ours, ref = BatchNormTB(3, momentum=momentum).double(), nn.BatchNorm2d(3, momentum=momentum).double()
    for _ in range(3):
        x = torch.randn(2, 4, 3, 2, 2, generator=gen, dtype=torch.float64)
        ours(x), ref(x.flatten(0, 1))
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-12, atol=1e-12)


def test_batchnorm_tb_without_running_stats_uses_batch_stats_in_eval():
    x = f1_input()
    bn = TdBN(2, track_running_stats=False).double().eval()
    assert bn.running_mean is None
    close(channel(bn(x), 1), F1_CH1)


def test_tdbn_affine_false_applies_alpha_vth():
    """affine=False: y = α·V_th·x̂ with no parameters."""
    bn = TdBN(2, alpha=1.0, v_threshold=0.5, affine=False).double()
    assert list(bn.parameters()) == []
    y = bn(f1_input())
    close(channel(y, 0), [-0.4999975000] * 4 + [0.4999975000] * 4)
    close(channel(y, 1)[:1], [-0.7637618884])


def test_tdbn_alias_and_exports():
    assert TdBN is ThresholdDependentBatchNorm
    assert issubclass(ThresholdDependentBatchNorm, BatchNormTB)


# ------------------------------------------------------------------------ state dict, autocast
def test_tdbn_state_dict_round_trip():
    """Trained buffers and parameters survive save/load; keys are nn.BatchNorm2d's."""
    gen = torch.Generator().manual_seed(3)
    bn = TdBN(4, alpha=INV_SQRT2, v_threshold=0.5)
    opt = torch.optim.SGD(bn.parameters(), lr=0.1)
    for _ in range(3):
        x = torch.randn(3, 5, 4, 2, 2, generator=gen) * 2 + 1
        opt.zero_grad()
        (bn(x) ** 2).mean().backward()
        opt.step()
    buf = io.BytesIO()
    torch.save(bn.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf)
    assert set(state) == set(nn.BatchNorm2d(4).state_dict())
    fresh = TdBN(4, alpha=INV_SQRT2, v_threshold=0.5)
    fresh.load_state_dict(state)
    for k, v in bn.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=0)
    bn.eval(), fresh.eval()
    x = torch.randn(2, 3, 4, 2, 2, generator=gen)
    torch.testing.assert_close(fresh(x), bn(x), rtol=0, atol=0)
    nn.BatchNorm2d(4).load_state_dict(state)  # interchangeable with torch's BN


def test_tdbn_under_cpu_autocast_bfloat16():
    """A bf16 activation from a conv under autocast: output bf16 close to fp32, stats stay fp32."""
    gen = torch.Generator().manual_seed(4)
    conv = TimeDistributed(nn.Conv2d(3, 4, 3, padding=1))
    x = torch.randn(2, 3, 3, 6, 6, generator=gen)
    bn, ref = TdBN(4, alpha=INV_SQRT2), TdBN(4, alpha=INV_SQRT2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        assert h.dtype == torch.bfloat16
        y = bn(h)
    assert y.dtype == torch.bfloat16
    assert bn.running_mean.dtype == torch.float32 and bn.running_var.dtype == torch.float32
    y_ref = ref(h.float())
    torch.testing.assert_close(y.float(), y_ref, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=1e-2, atol=1e-3)
    y.float().sum().backward()
    assert bn.weight.grad is not None and torch.isfinite(bn.weight.grad).all()
    assert conv.module.weight.grad is not None and torch.isfinite(conv.module.weight.grad).all()
    bn.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert bn(conv(x)).dtype == torch.bfloat16


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [BatchNormTB, TdBN])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_num_features(cls, bad):
    with pytest.raises(ValueError, match=r"num_features.*" + str(bad).replace(".", r"\.")):
        cls(bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, r"alpha.*0\.0"),
        ({"alpha": -1.0}, r"alpha.*-1\.0"),
        ({"alpha": float("nan")}, r"alpha.*nan"),
        ({"v_threshold": 0.0}, r"v_threshold.*0\.0"),
        ({"v_threshold": -0.5}, r"v_threshold.*-0\.5"),
        ({"eps": 0.0}, r"eps.*0\.0"),
        ({"momentum": 1.5}, r"momentum.*1\.5"),
        ({"gamma_init": True, "affine": False}, r"gamma_init.*affine=False"),
    ],
)
def test_tdbn_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TdBN(4, **kwargs)


@pytest.mark.parametrize("cls", [BatchNormTB, TdBN])
@pytest.mark.parametrize("shape", [(8, 4), (2, 2, 4, 2, 2, 2), (4,)])
def test_bad_input_rank(cls, shape):
    with pytest.raises(ValueError, match=r"\[T, B, C\], \[T, B, C, L\] or \[T, B, C, H, W\].*" + re_shape(shape)):
        cls(4)(torch.randn(shape))


@pytest.mark.parametrize("cls", [BatchNormTB, TdBN])
def test_wrong_channel_count(cls):
    with pytest.raises(ValueError, match=r"expected 4 channels.*got 3.*\(2, 5, 3, 6, 6\)"):
        cls(4)(torch.randn(2, 5, 3, 6, 6))


def test_extra_repr():
    assert repr(BatchNormTB(8)) == "BatchNormTB(8)"
    assert repr(BatchNormTB(8, momentum=0.01, affine=False)) == "BatchNormTB(8, momentum=0.01, affine=False)"
    assert repr(TdBN(8)) == "ThresholdDependentBatchNorm(8)"
    assert repr(TdBN(8, v_threshold=0.5, affine=False)) == "ThresholdDependentBatchNorm(8, v_threshold=0.5, affine=False)"
    assert (
        repr(TdBN(8, alpha=INV_SQRT2, v_threshold=0.5, gamma_init=True, eps=1e-3))
        == "ThresholdDependentBatchNorm(8, alpha=0.707107, v_threshold=0.5, eps=0.001, gamma_init=True)"
    )


def test_flow_batchnorm_fp16_backward_sums_do_not_overflow():
    """ssf/dsr under ``--amp fp16``: the flow BN's backward sums Σg and Σg·(f − μ) over 65,536 values per
    channel of a loss-scaled gradient (|g| ~ 8) pass fp16's 65,504; taken in fp16 they were inf and every
    gradient NaN. Against the float64 evaluation of the same formula (on the same fp16 inputs)."""
    from spikeforge.layers.batchnorm import _FlowBatchNorm

    g = torch.Generator().manual_seed(0)
    flow = (torch.randn(64, 2, 32, 32, generator=g) + 0.5).half().requires_grad_(True)
    grad_out = (torch.randn(64, 2, 32, 32, generator=g) * 8 + 4).half()
    mean_s, invstd_s = torch.tensor([0.4, 0.6]).half(), torch.tensor([0.9, 1.1]).half()
    weight = torch.tensor([1.5, 0.5], requires_grad=True)  # float32 parameter, as under autocast
    bias = torch.tensor([0.1, -0.2], requires_grad=True)
    _FlowBatchNorm.apply(flow, mean_s, invstd_s, weight, bias).backward(grad_out)
    assert torch.isfinite(flow.grad).all() and torch.isfinite(weight.grad).all() and torch.isfinite(bias.grad).all()
    assert weight.grad.dtype == torch.float32 and bias.grad.dtype == torch.float32

    f, gg = flow.detach().double(), grad_out.double()
    ms, s, w = mean_s.double().view(1, -1, 1, 1), invstd_s.double().view(1, -1, 1, 1), weight.detach().double()
    dims = (0, 2, 3)
    mean_f = f.mean(dims, keepdim=True)
    ref = w.view(1, -1, 1, 1) * s * (gg - gg.mean(dims, keepdim=True)
                                     - s.square() * (gg * (f - ms)).mean(dims, keepdim=True) * (f - mean_f))
    torch.testing.assert_close(flow.grad.double(), ref, rtol=2e-3, atol=2e-2)
    torch.testing.assert_close(weight.grad.double(), (gg * (f - ms) * s).sum(dims), rtol=1e-3, atol=0)  # fp16 products
    torch.testing.assert_close(bias.grad.double(), gg.sum(dims), rtol=1e-4, atol=0)
