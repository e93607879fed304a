"""Membrane statistics for RecDis-style losses (SPEC §6.4): values by hand, the flow gradient spec, all methods."""
import math

import pytest
import torch

from spikeforge.losses import get_loss
from spikeforge.methods import Dual, get_method
from spikeforge.streams.dual import uniform_weights
from spikeforge.streams.lazy import LazySeq
from spikeforge.models import create_model
from spikeforge.neuron import LIFNode
from spikeforge.neuron.membrane import record_membrane

D = torch.float64
# λ = 0.5, x = 0.6, V_th = 1, hard reset: H = 0.6, 0.9, 1.05 (fires), 0.6 → ũ = H − 1
U = torch.tensor([-0.4, -0.1, 0.05, -0.4], dtype=D)
MEAN, VAR = U.mean().item(), U.var(unbiased=False).item()


def test_hand_computed_statistics_under_bptt():
    node = LIFNode(decay=0.5, backend="torch")
    x = torch.full((4, 1, 1), 0.6, dtype=D, requires_grad=True)
    with record_membrane(node) as rec:
        spikes = node(x)
    assert spikes.flatten().tolist() == [0, 0, 1, 0]
    (mean, var), = rec.stats
    assert mean.item() == pytest.approx(MEAN, abs=1e-12) and MEAN == pytest.approx(-0.2125)
    assert var.item() == pytest.approx(VAR, abs=1e-12) and VAR == pytest.approx(0.03796875)
    assert node.membrane_sink is None  # detached on exit
    mean.sum().backward()  # BPTT: through H itself; the reset is detached, so ∂μ/∂x[t] = Σ_{s>=t} λ^(s−t)·(1−S…)/T
    # H0 = x0; H1 = 0.5·x0 + x1; H2 = 0.25·x0 + 0.5·x1 + x2; H3 = 0 (reset, detached)·… + x3
    expected = torch.tensor([1 + 0.5 + 0.25, 1 + 0.5, 1, 1], dtype=D) / 4
    torch.testing.assert_close(x.grad.flatten(), expected)


@pytest.mark.parametrize("name", ["ssf", "dsr"])
@pytest.mark.parametrize("steps", [4, 1])
def test_one_step_values_from_seq_gradient_from_flow(name, steps):
    """Values equal the sequence's statistics (also over 1-step windows); ∂μ/∂flow = κ/N, κ = 1 here."""
    method = get_method(name)
    node = LIFNode(decay=0.5, backend="torch", grad_rule=method.grad_rule) if name == "ssf" else \
        method.make_neuron(dsr={"kind": "if", "v_threshold": 1.0})
    seq = torch.full((4, 2, 3), 0.6, dtype=D)
    seq[:, 1] = 0.3
    flow = seq.mean(0).clone().requires_grad_()
    lazy = LazySeq.of(seq, window_bytes=steps * 8 * 6 // 2)
    with record_membrane(node) as rec:
        node(Dual(lazy, flow, uniform_weights(4, D)))
    (mean, var), = rec.stats
    with record_membrane(node) as plain:
        with torch.no_grad():
            node(seq)
    (mean_p, var_p), = plain.stats
    torch.testing.assert_close(mean.detach(), mean_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(var.detach(), var_p, rtol=0, atol=1e-12)
    if name == "ssf":  # per channel over (T, B): the ssf LIF above, channel dim 2 of [T, B, C]
        u = torch.tensor([[-0.4, -0.1, 0.05, -0.4], [-0.7, -0.55, -0.475, -0.4375]], dtype=D)  # x = 0.6 / 0.3
        torch.testing.assert_close(mean_p, torch.full((3,), u.mean().item(), dtype=D))
    g, = torch.autograd.grad(mean.sum(), flow)
    torch.testing.assert_close(g, torch.full_like(flow, 1 / 2))  # N = B = 2 values per channel in the flow batch


def test_all_methods_record_the_same_values_and_train_mpd():
    torch.manual_seed(0)
    x, y = torch.rand(8, 64) * 2, torch.arange(8) % 10
    loss_fn = get_loss("mpd_ding2019")
    values = {}
    for name in ("bptt", "ssf", "dsr"):
        torch.manual_seed(1)
        model = create_model("digits_snn", method=name)
        if name != "dsr":
            model.collect_membrane = True
            out = model.forward_output(x)
            (mean, var), = out.stats["membrane"]
            values[name] = (mean.detach(), var.detach())
        else:
            model.collect_membrane = True
            out = model.forward_output(x)
        loss = loss_fn(out, y)
        assert math.isfinite(loss.item())
        loss.backward()
        hidden = next(p for n, p in model.named_parameters() if n.endswith("weight"))
        assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    torch.testing.assert_close(values["ssf"][0], values["bptt"][0], rtol=0, atol=1e-5)
    torch.testing.assert_close(values["ssf"][1], values["bptt"][1], rtol=0, atol=1e-5)
    model = create_model("digits_snn")
    assert model.forward_output(x).stats == {}
    with pytest.raises(ValueError, match="needs membrane statistics"):
        loss_fn(model.forward_output(x), y)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_windowed_stats_equal_one_pass(dtype, tol):
    """Window-by-window mean and biased variance equal var_mean over (T, B, spatial), also with a mean 10^3
    times the spread (float32: to its rounding) and windows of unequal length."""
    from spikeforge.streams.stats import WindowedStats

    g = torch.Generator().manual_seed(3)
    x = torch.randn(7, 4, 3, 5, 6, generator=g, dtype=torch.float64) * torch.tensor([1.0, 0.01, 3.0]).view(1, 1, 3, 1, 1)
    x = x + torch.tensor([0.5, 10.0, -2.0], dtype=torch.float64).view(1, 1, 3, 1, 1)
    x = x + 0.1 * torch.arange(7, dtype=torch.float64).view(7, 1, 1, 1, 1)  # the mean drifts over time
    stats = WindowedStats()
    for t0, t1 in ((0, 1), (1, 4), (4, 7)):
        stats.add(x[t0:t1].to(dtype))
    mean, var = stats.result(torch.float64)
    var_ref, mean_ref = torch.var_mean(x, (0, 1, 3, 4), correction=0)
    torch.testing.assert_close(mean, mean_ref, rtol=tol, atol=0)
    torch.testing.assert_close(var, var_ref, rtol=20 * tol, atol=0)
    assert stats.count == 7 * 4 * 5 * 6
    with pytest.raises(ValueError, match="no window"):
        WindowedStats().result(torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_windowed_stats_low_precision_window_does_not_overflow(dtype):
    """One window of 65,536 values per channel with σ = 4: Σd² ≈ 10^6 is past fp16's 65,504, so sums taken
    in the window's dtype give an infinite variance (which then reached the running statistics under
    ``--amp fp16``). The statistics must equal float64's of the same (rounded) values."""
    from spikeforge.streams.stats import WindowedStats

    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 32, 2, 32, 32, generator=g) * 4.0 + 1.0).to(dtype)  # 2·32·32·32 = 65,536 per channel
    stats = WindowedStats()
    stats.add(x)
    mean, var = stats.result(torch.float64)
    var_ref, mean_ref = torch.var_mean(x.double(), (0, 1, 3, 4), correction=0)
    assert torch.isfinite(var).all()
    torch.testing.assert_close(mean, mean_ref, rtol=0, atol=1e-4)
    torch.testing.assert_close(var, var_ref, rtol=1e-4, atol=0)
