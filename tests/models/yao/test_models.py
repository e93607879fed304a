"""Yao et al.'s networks in the model registry (SPEC §7.4, §10): shapes, counts, presets, errors, state."""
from __future__ import annotations

import pytest
import torch

from spikeforge.models import create_model, list_models
from spikeforge.output import ModelOutput
from spikeforge.models.yao.network import block_kinds

YAO = ["yao_birnn_snn", "yao_cnn_snn", "yao_gru_snn", "yao_lstm_snn", "yao_resmlp12", "yao_rnn_snn"]
SMALL = {"dims": (4, 8, 16, 32)}  # reduced widths for the gradient and state tests

#: parameters of the CIFAR-10 builds (every module runs); lstm and cnn are SPEC §7.4's Y8 values
COUNTS = {"yao_lstm_snn": 14_925_466, "yao_cnn_snn": 13_885_402, "yao_rnn_snn": 5_646_298,
          "yao_birnn_snn": 8_429_338, "yao_gru_snn": 12_760_090, "yao_resmlp12": 4_866_082}
DIMS, DEPTHS = (48, 96, 192, 384), (2, 2, 6, 2)


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered():
    assert list_models("yao*") == YAO


@pytest.mark.parametrize("name", YAO)
def test_full_size_parameter_count(name):
    """The paper widths (48/96/192/384, depths 2/2/6/2) at 32×32, CIFAR-10: the parameter count."""
    assert _count(create_model(name, method="bptt")) == COUNTS[name]


def test_code_parameter_counts():
    """How our counts relate to the official code's (SPEC Y8): the code builds modules it never calls.

    LSTM: every block builds a PatchMerging(2d) ``down`` for the membrane map (Linear(8d, 4d)), only the last
    block of stages 0–2 uses it; plus an unused final LayerNorm(384). CNN: every block also builds a backward
    cell (two conv3x3: 18d² + 2d), a Conv1d(d, 2d, 3) (6d² + 2d) and two LayerNorms (4d), plus the final one.
    """
    blocks = [d for d, n in zip(DIMS, DEPTHS) for _ in range(n)]
    unused_downs = sum(32 * d * d for d in blocks) - sum(32 * d * d for d in DIMS[:3])
    assert COUNTS["yao_lstm_snn"] + unused_downs + 2 * 384 == 30_630_298
    unused_cnn = sum(18 * d * d + 2 * d + 6 * d * d + 2 * d + 4 * d for d in blocks)
    assert COUNTS["yao_cnn_snn"] + unused_cnn + 2 * 384 == 26_843_098
    # the clean CNN count by hand: stem 624, blocks 25d² + 7d, PatchMerging 8d², head 3,850
    assert 624 + sum(25 * d * d + 7 * d for d in blocks) + sum(8 * d * d for d in DIMS[:3]) + 3850 == 13_885_402


def test_tiny_imagenet_size():
    model = create_model("yao_cnn_snn", num_classes=200, img_size=64, **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 200)
    assert model.stages[3][0].mixer.kind == "quadrant" and model.stages[2][1].mixer.kind == "dilated"


@pytest.mark.parametrize("name", YAO)
def test_output_and_every_parameter_gets_a_gradient(name):
    """32×32 input, reduced widths: logits [B, 10] (ModelOutput with steps [1, B, 10]), finite; every parameter
    gets a non-zero gradient."""
    torch.manual_seed(1)
    # V_th 0.2: the tiny widths leave the CNN cell's 1×1 windows of stage 3 silent at V_th 0.5 (only the
    # centre tap of each conv3x3 sees a 1×1 window), which would hide whether gradients reach its fc
    opts = {"neuron": {"v_threshold": 0.2}, "dims": SMALL["dims"]}
    model = create_model(name, spiking=True, **opts) if name == "yao_resmlp12" else \
        create_model(name, encode="threshold", **opts)
    torch.nn.init.normal_(model.head.weight)  # the head starts at 0 (Sequencer2D init), which blocks every gradient
    out = model.forward_output(torch.randn(4, 3, 32, 32) * 2)
    assert isinstance(out, ModelOutput) and out.logits.shape == (4, 10) and out.steps.shape == (1, 4, 10)
    assert torch.isfinite(out.logits).all()
    out.logits.pow(2).sum().backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # stage 3 runs 1×1 windows (L = 2): a one-token sequence from h0 = 0 never uses the recurrent weights
    assert [n for n in silent if not (n.startswith("stages.3.") and ".weight_hh_" in n)] == []


def test_schedule_of_window_kinds():
    """Even global block index → quadrant, odd → dilated, the last stage quadrant only."""
    q, d = "quadrant", "dilated"
    assert block_kinds((2, 2, 6, 2)) == [[q, d], [q, d], [q, d, q, d, q, d], [q, q]]


def test_presets_and_overrides():
    code = create_model("yao_lstm_snn", **SMALL)
    paper = create_model("yao_lstm_snn", preset="paper", **SMALL)
    dilated = [b.mixer for s in paper.stages for b in s if b.mixer.kind == "dilated"]
    assert len(dilated) == 5 and all(m.threshold == 0.1 for m in dilated)
    assert all(b.mixer.threshold is None for s in code.stages for b in s)
    assert repr(code.fusion) == "sin()" and repr(code.encoder) == "bernoulli()"
    cnn100 = create_model("yao_cnn_snn", fusion="mean", region_threshold=0.2, **SMALL)
    assert repr(cnn100.fusion) == "mean()" and cnn100.region_threshold == 0.2
    assert create_model("yao_cnn_snn", preset="paper", region_threshold="off", **SMALL).region_threshold is None
    lin = create_model("yao_cnn_snn", fusion={"name": "linear", "alpha": 0.3}, **SMALL)
    assert repr(lin.fusion) == "linear(alpha=0.3)"
    with pytest.raises(ValueError, match="needs alpha"):
        create_model("yao_cnn_snn", fusion="linear", **SMALL)
    with pytest.raises(ValueError, match="yao preset 'exact' is not registered; choose one of: code, paper"):
        create_model("yao_cnn_snn", preset="exact")


@pytest.mark.parametrize("method", ["ssf", "dsr"])
def test_one_step_methods_raise_with_reason(method):
    with pytest.raises(ValueError, match=f"method='{method}' cannot train this model: it runs at T=1"):
        create_model("yao_lstm_snn", method=method)
    with pytest.raises(ValueError, match="single binary spike"):
        create_model("yao_resmlp12", method=method)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="T must be 1"):
        create_model("yao_cnn_snn", T=4)
    with pytest.raises(ValueError, match="img_size must be a multiple of 32"):
        create_model("yao_cnn_snn", img_size=48)
    with pytest.raises(ValueError, match="cell is fixed to 'cnn'"):
        create_model("yao_cnn_snn", cell="lstm")
    with pytest.raises(ValueError, match="dims must double stage by stage"):
        create_model("yao_cnn_snn", dims=(4, 8, 12, 24))
    with pytest.raises(ValueError, match="needs the membrane map"):
        create_model("yao_lstm_snn", **SMALL).stages[0][0].mixer(torch.zeros(1, 16, 16, 4))
    model = create_model("yao_cnn_snn", **SMALL)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="runs one time step"):
        model(torch.randn(2, 2, 3, 32, 32))


@pytest.mark.parametrize("name", ["yao_lstm_snn", "yao_cnn_snn"])
def test_no_state_between_calls_or_models(name):
    """Two models in one process, called in turn, give what each gives alone; a call does not change the next."""
    torch.manual_seed(2)
    a = create_model(name, encode="threshold", **SMALL)
    b = create_model(name, encode="threshold", **SMALL)
    for m in (a, b):
        torch.nn.init.normal_(m.head.weight)
    x, y = torch.randn(2, 3, 32, 32) * 2, torch.randn(3, 3, 32, 32) * 2
    first = a(x)
    b(y)
    a(y)
    assert torch.equal(a(x), first)
    assert torch.equal(a(torch.stack([x[1], x[0]]))[0], first[1])  # batch elements independent
    assert first.abs().sum() > 0


def test_bernoulli_redraws_at_eval_and_generator_reproduces():
    x = torch.randn(2, 3, 32, 32) * 2
    model = create_model("yao_cnn_snn", **SMALL).eval()
    torch.nn.init.normal_(model.head.weight)
    assert not torch.equal(model(x), model(x))  # the code re-encodes at every call, eval included
    outs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(5)
        m = create_model("yao_cnn_snn", encode={"name": "bernoulli", "generator": g}, **SMALL).eval()
        m.load_state_dict(model.state_dict())
        outs.append(m(x))
    assert torch.equal(*outs)


def test_torch_compile_block_matches_eager():
    """One dilated LSTM block traces under torch.compile (dynamo, ``eager`` backend: cheap on CPU) with equal values."""
    torch.manual_seed(3)
    model = create_model("yao_lstm_snn", encode="threshold", dims=(2, 4, 8, 16))
    block = model.stages[0][1]
    assert block.mixer.kind == "dilated"
    compiled = torch.compile(block, backend="eager")
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        x, mem = torch.randn(2, 16, 16, 2, generator=g), torch.randn(2, 16, 16, 4, generator=g)
        (y, m), (y_ref, m_ref) = compiled(x, mem), block(x, mem)
        assert torch.allclose(y, y_ref, atol=1e-6) and torch.allclose(m, m_ref, atol=1e-6)


@pytest.mark.slow
def test_torch_compile_model_matches_eager():
    """The whole model under torch.compile (aot_eager: dynamo + autograd graphs); about 2 minutes on 2 CPU cores."""
    torch.manual_seed(3)
    model = create_model("yao_lstm_snn", encode="threshold", dims=(2, 4, 8, 16), depths=(2, 2, 2, 2))
    torch.nn.init.normal_(model.head.weight)
    x = torch.randn(2, 3, 32, 32) * 2
    compiled = torch.compile(model, backend="aot_eager")
    assert torch.allclose(compiled(x), model(x), atol=1e-6)
