"""Windowed (lazy) seq stream of ssf/dsr: the same spikes, flows and gradients as one piece, in bounded memory."""
import math

import pytest
import torch
from torch import nn

from spikeforge.layers import BatchNormTB, TimeDistributed, TimeFixedDropout
from spikeforge.methods import Dual, get_method
from spikeforge.streams.dual import uniform_weights
from spikeforge.neuron.seq_fire import fire_lazy
from spikeforge.streams.lazy import LazySeq
from spikeforge.neuron import LIFNode, PLIFNode

D = torch.float64


def _windowed(x: torch.Tensor, steps: int) -> LazySeq:
    """A LazySeq over ``x`` whose windows hold ``steps`` time steps."""
    return LazySeq.of(x, window_bytes=steps * 4 * math.prod(x.shape[1:]), store_bytes=0)


def test_windows_cover_the_sequence_and_map_zip_aggregate_match_eager():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, 4, generator=g, dtype=D)
    y = torch.randn(7, 3, 4, generator=g, dtype=D)
    lin = nn.Linear(4, 5).double()
    lx = _windowed(x, 3)
    assert [(t0, t1) for t0, t1, _ in lx.windows()] == [(0, 3), (3, 6), (6, 7)]
    mapped = lx.zip(_windowed(y, 3), torch.mul, D).map(lin, (3, 5), D)
    eager = lin(x * y)
    torch.testing.assert_close(mapped.materialize(), eager.detach(), rtol=0, atol=1e-12)
    w = torch.rand(7, generator=g, dtype=D)
    torch.testing.assert_close(mapped.aggregate(w), torch.tensordot(w, eager.detach(), dims=1), rtol=0, atol=1e-12)
    assert not mapped.window(0, 2).requires_grad  # the seq stream never builds a graph


def test_constant_sequence_is_computed_once_and_expanded():
    x = torch.randn(2, 4, dtype=D).unsqueeze(0).expand(5, 2, 4)
    calls = []
    lin = nn.Linear(4, 3).double()
    lin.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    out = LazySeq.of(x).map(lin, (2, 3), D)
    assert out.constant and out.stored is not None and out.stored.stride(0) == 0
    assert calls == [2]  # one step of B = 2 samples, not T·B
    torch.testing.assert_close(out.materialize(), lin(x).detach())


@pytest.mark.parametrize("make", [
    lambda: LIFNode(decay=0.8, v_reset=0.0, backend="torch"),
    lambda: LIFNode(decay=0.9, v_reset=None, backend="torch"),
    lambda: PLIFNode(init_tau=2.0, v_reset=0.0, backend="torch"),
])
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_fire_lazy_windows_give_the_spikes_of_one_run(make, steps):
    """The membrane potential carried across windows: spikes and weighted sums equal one whole run."""
    node = make()
    x = 1.8 * torch.rand(9, 4, 6, generator=torch.Generator().manual_seed(1), dtype=D)
    w = torch.rand(9, generator=torch.Generator().manual_seed(2), dtype=D)
    whole, _ = node.run_kernel(x)
    fired = fire_lazy(node, _windowed(x, steps), w, D)
    assert fired.spikes.dtype == torch.bool
    assert torch.equal(fired.spikes.materialize(D), whole)
    assert whole.sum() > 0 and (1 - whole).sum() > 0
    torch.testing.assert_close(fired.input_sum, torch.tensordot(w, x, dims=1), rtol=0, atol=1e-12)
    torch.testing.assert_close(fired.spike_sum, torch.tensordot(w, whole, dims=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_windowed_statistics_equal_one_piece(training):
    """Two-pass BN over windows: same output, same running statistics, same flow value as one fused call."""
    g = torch.Generator().manual_seed(3)
    seq = 2 + 3 * torch.randn(6, 4, 3, 5, 5, generator=g, dtype=D)
    flow = seq.mean(0).requires_grad_()
    bn_one, bn_win = BatchNormTB(3).double(), BatchNormTB(3).double()
    with torch.no_grad():
        for bn in (bn_one, bn_win):
            bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
            bn.train(training)
    w = uniform_weights(6, D)
    one = bn_one(Dual(LazySeq.of(seq), flow, w))
    win = bn_win(Dual(_windowed(seq, 2), flow, w))
    assert isinstance(win.seq, LazySeq) and win.seq.stored is None  # nothing [T, ...] materialised
    torch.testing.assert_close(win.materialize(), one.materialize(), rtol=0, atol=1e-10)
    torch.testing.assert_close(win.flow, one.flow, rtol=0, atol=1e-10)
    torch.testing.assert_close(bn_win.running_mean, bn_one.running_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(bn_win.running_var, bn_one.running_var, rtol=0, atol=1e-12)
    g_one, = torch.autograd.grad(one.flow.square().sum(), flow)
    g_win, = torch.autograd.grad(win.flow.square().sum(), flow)
    torch.testing.assert_close(g_win, g_one, rtol=0, atol=1e-10)


class _Net(nn.Module):
    """conv-BN-LIF → max-pool → dropout → conv-BN-LIF + residual → linear (every Dual path of the zoo)."""

    def __init__(self, method, backend: str = "torch"):
        super().__init__()
        self.method = method
        self.conv1 = TimeDistributed(nn.Conv2d(2, 4, 3, padding=1, bias=False))
        self.bn1 = BatchNormTB(4)
        self.sn1 = method.make_neuron({"kind": "lif", "decay": 0.8, "v_reset": None, "backend": backend},
                                      dsr={"kind": "lif", "backend": backend})
        self.pool = TimeDistributed(nn.MaxPool2d(2))
        self.drop = TimeFixedDropout(0.25)
        self.conv2 = TimeDistributed(nn.Conv2d(4, 4, 3, padding=1, bias=False))
        self.bn2 = BatchNormTB(4)
        self.sn2 = method.make_neuron({"kind": "lif", "decay": 0.8, "v_reset": None, "backend": backend},
                                      dsr={"kind": "lif", "backend": backend})
        self.fc = TimeDistributed(nn.Flatten(), nn.Linear(64, 3))

    def forward(self, x):
        h = self.drop(self.pool(self.sn1(self.bn1(self.conv1(self.method.enter(x))))))
        return self.fc(self.sn2(self.bn2(self.conv2(h))) + h)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("name", ["ssf", "dsr"])
def test_windowed_network_equals_one_piece(name, backend):
    """A whole net over windows of 1, 2 and 4 (uneven: 4 + 2) steps: identical hidden spikes, flows and gradients
    (float64) to one window of all of T, on the reference kernel and the fused cpu one."""
    x = torch.rand(6, 3, 2, 8, 8, generator=torch.Generator().manual_seed(4), dtype=D).unsqueeze(0)[0] * 3
    nets, outs = [], []
    step_mb = 4 * 3 * 4 * 8 * 8 / 2**20  # one step of the widest layer
    # one window for all T; windows of 1, 2, 4 steps with BN recomputing its input (store 0), keeping its
    # first 2 steps (bn1; the rest recomputed), or keeping all of it (in place)
    for window_mb, store_mb in ((1.0, 0.0), (step_mb, 0.0), (2 * step_mb, 0.0), (4 * step_mb, 0.0),
                                (2 * step_mb, 2 * step_mb), (2 * step_mb, 1.0)):
        torch.manual_seed(0)
        net = _Net(get_method(name, window_mb=window_mb, store_mb=store_mb), backend).double().train()
        torch.manual_seed(1)  # the same dropout mask
        recorded = []
        net.sn1.register_forward_hook(lambda m, i, o: recorded.append(o.materialize().clone()))
        out = net(x)
        out.flow.square().sum().backward()
        nets.append(net)
        outs.append((out, recorded[0]))
    (one, s_one) = outs[0]
    assert 0 < s_one.mean() < 1
    for (win, s_win), net in zip(outs[1:], nets[1:]):
        assert torch.equal(s_win, s_one)
        torch.testing.assert_close(win.flow, one.flow, rtol=0, atol=1e-9)
        torch.testing.assert_close(win.materialize(), one.materialize(), rtol=0, atol=1e-9)
        for (n, p1), (_, p2) in zip(nets[0].named_parameters(), net.named_parameters()):
            if p1.grad is not None:
                torch.testing.assert_close(p2.grad, p1.grad, rtol=0, atol=1e-8, msg=n)


def test_batchnorm_in_place_only_on_its_own_sequence():
    """BN over one window normalises in place a sequence computed for it, never a stored one another layer
    still reads."""
    seq = torch.randn(4, 2, 3, 5, generator=torch.Generator().manual_seed(5), dtype=D)
    keep = seq.clone()
    bn = BatchNormTB(3).double().train()
    flow = seq.mean(0).requires_grad_()
    out = bn(Dual(LazySeq.of(seq, window_bytes=1 << 20, store_bytes=1 << 20), flow, uniform_weights(4, D)))
    assert torch.equal(seq, keep)  # a stored input is left alone
    conv = LazySeq.of(seq, window_bytes=1 << 20, store_bytes=1 << 20).map(lambda z: 2 * z, (2, 3, 5), D)
    bn2 = BatchNormTB(3).double().train()
    out2 = bn2(Dual(conv, 2 * flow, uniform_weights(4, D)))
    assert torch.equal(seq, keep)
    expected = torch.nn.functional.batch_norm((2 * keep).flatten(0, 1), None, None, training=True).unflatten(0, (4, 2))
    torch.testing.assert_close(out2.materialize(), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.materialize(), torch.nn.functional.batch_norm(keep.flatten(0, 1), None, None, training=True)
                               .unflatten(0, (4, 2)), rtol=0, atol=1e-12)


def test_stored_steps_whole_windows_and_head():
    """BN keeps the leading steps that fit store_bytes, in whole windows; with_head reads them, recomputes the rest."""
    x = torch.arange(6 * 2 * 3, dtype=D).reshape(6, 2, 3)
    per_step = 4 * 2 * 3
    calls = []
    lazy = LazySeq.of(x, window_bytes=2 * per_step, store_bytes=5 * per_step).map(
        lambda z: (calls.append(z.shape[0]), z + 1)[1], (2, 3), D)
    assert lazy.steps_per_window == 2 and lazy.stored_steps == 4  # 5 fit, 4 in whole windows
    assert LazySeq.of(x, window_bytes=4 * per_step, store_bytes=6 * per_step).stored_steps == 6
    assert LazySeq.of(x, window_bytes=4 * per_step, store_bytes=5 * per_step).stored_steps == 4
    assert LazySeq.of(x, window_bytes=4 * per_step, store_bytes=3 * per_step).stored_steps == 0
    head = torch.full((4, 2, 3), -1.0, dtype=D)  # marks the values read from the head
    read = lazy.with_head(head)
    calls.clear()
    out = read.materialize()
    assert torch.equal(out[:4], head) and torch.equal(out[4:], x[4:] + 1)
    assert sum(calls) == 2 * 2  # only the 2 steps (x B = 2 samples) after the head were computed
    assert torch.equal(read.window(3, 6), torch.cat([head[3:], x[4:] + 1]))  # a window across the boundary
    with pytest.raises(ValueError, match="does not start"):
        lazy.with_head(torch.zeros(4, 2, 4, dtype=D))


@pytest.mark.parametrize("kind", ["bn", "tdbn"])
def test_batchnorm_flow_saves_only_its_input(kind):
    """Under ssf/dsr, BN's flow keeps one [B, C, ...] tensor (its input) for backward, not autograd's two."""
    from spikeforge.layers import TdBN

    seq = torch.randn(4, 2, 3, 5, generator=torch.Generator().manual_seed(6), dtype=D)
    flow = seq.mean(0).requires_grad_()
    bn = (BatchNormTB(3) if kind == "bn" else TdBN(3, alpha=0.5)).double().train()
    big = []

    def pack(t):
        if t.shape == flow.shape:
            big.append(t)
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = bn(Dual(LazySeq.of(seq, window_bytes=4, store_bytes=0), flow, uniform_weights(4, D)))
    assert len(big) == 1 and big[0] is flow
    out.flow.sum().backward()
    assert flow.grad is not None and bn.weight.grad is not None


@pytest.mark.parametrize("windows", ["all_T", "small"])
@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("name", ["ssf", "dsr"])
def test_torch_compile_fullgraph_matches_eager(name, backend, windows):
    """torch.compile with ``fullgraph=True`` (AOTAutograd, so the backward is traced too) of a conv-BN net, over one
    window of all T or over 2-step windows with a kept BN head: no graph break anywhere in the step (the seq
    stream, BN's windowed statistics and the fused window pass included: what CUDA graphs under
    ``mode="reduce-overhead"`` need), and the same output and gradients as eager."""
    x = torch.rand(6, 3, 2, 8, 8, generator=torch.Generator().manual_seed(5))
    small = 2 * 4 * 3 * 4 * 8 * 8 / 2**20
    torch.manual_seed(0)
    kw = {"window_mb": 4096, "store_mb": 4096} if windows == "all_T" else {"window_mb": small, "store_mb": small}
    net = _Net(get_method(name, **kw), backend).train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    results = []
    torch._dynamo.reset()

    def flow(x):  # a training step's compiled region returns tensors (the model's logits), never a lazy Dual
        return net(x).flow
    for model in (flow, torch.compile(flow, backend="aot_eager", fullgraph=True)):
        net.load_state_dict(state)
        net.zero_grad()
        torch.manual_seed(1)  # the same dropout mask
        out = model(x)
        out.square().sum().backward()
        results.append((out.detach().clone(), {n: p.grad.clone() for n, p in net.named_parameters()
                                               if p.grad is not None}))
    (eager, g_eager), (compiled, g_compiled) = results
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-6)
    assert g_compiled.keys() == g_eager.keys()
    for n in g_eager:
        torch.testing.assert_close(g_compiled[n], g_eager[n], rtol=1e-5, atol=1e-6, msg=n)


def test_spikes_are_unpacked_in_the_autocast_dtype(monkeypatch):
    """Under bf16 autocast the packed spikes are unpacked straight into bf16, the dtype the next conv runs in
    (0/1 are exact), not into float32 and cast again."""
    from spikeforge.models import create_model
    from spikeforge.streams.bits import PackedBool

    dtypes = []
    read = PackedBool.read
    monkeypatch.setattr(PackedBool, "read", lambda self, t0, t1, dtype=torch.bool: dtypes.append(dtype)
                        or read(self, t0, t1, dtype))
    torch.manual_seed(0)
    model = create_model("resnet19", method=get_method("ssf", window_mb=4096, store_mb=4096), T=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 3, 32, 32))
    out.float().sum().backward()
    assert len(dtypes) > 10 and set(dtypes) == {torch.bfloat16}
