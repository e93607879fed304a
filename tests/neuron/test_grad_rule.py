"""The GradRule a neuron receives when it is built: shown in repr, checked once, the one-step dispatch, the one
place that records the membrane."""
import pytest
import torch

from spikeforge.methods import get_method
from spikeforge.models import create_model
from spikeforge.neuron import BaseNode, IFNode, LIFNode, PLIFNode
from spikeforge.neuron.grad_rule import GradRule, OneStepRule, SurrogateBPTT
from spikeforge.neuron.membrane import record_membrane
from spikeforge.neuron.seq_fire import FireResult
from spikeforge.streams.dual import Dual, uniform_weights

D = torch.float64


def test_rule_is_given_at_construction_and_shown_in_repr():
    plain = LIFNode(decay=0.5)
    assert isinstance(plain.grad_rule, SurrogateBPTT) and "grad_rule" not in repr(plain)
    node = LIFNode(decay=0.5, grad_rule=get_method("ssf", slope="clamp").grad_rule)
    assert repr(node).endswith("grad_rule=ssf(slope='clamp'))")
    assert "grad_rule=dsr(faithful=True, exact_vth_grad=True)" in repr(
        get_method("dsr", faithful=True, exact_vth_grad=True).make_neuron(dsr={"kind": "if"}))
    assert node.state_dict().keys() == plain.state_dict().keys()
    with pytest.raises(TypeError, match="grad_rule must be a GradRule"):
        LIFNode(grad_rule="ssf")


def test_a_model_built_for_a_method_has_its_rule_on_every_neuron():
    for name in ("bptt", "ssf", "dsr"):
        model = create_model("digits_snn", method=name)
        nodes = [m for m in model.modules() if isinstance(m, BaseNode)]
        assert nodes and all(n.grad_rule is model.method.grad_rule for n in nodes)
        assert type(model.method.grad_rule).name == name


def test_plif_decay_is_frozen_when_built_for_ssf_not_after():
    with pytest.warns(UserWarning, match="frozen"):
        node = PLIFNode(grad_rule=get_method("ssf").grad_rule)
    assert not node.w.requires_grad
    assert PLIFNode(grad_rule=get_method("bptt").grad_rule).w.requires_grad


class _Probe(OneStepRule):
    """Records which path :meth:`OneStepRule.forward` took."""

    name = "probe"

    def __init__(self, faithful):
        super().__init__(faithful)
        self.paths = []

    def one_step(self, node, x, record):
        self.paths.append("one_step")
        seq = x.materialize()
        stats = (torch.full((seq.shape[2],), 7.0, dtype=D), torch.full((seq.shape[2],), 9.0, dtype=D))
        return x, FireResult(x.seq, x.flow, x.flow, stats if record else None)

    def per_step(self, node, x, spikes):
        self.paths.append("per_step")
        return spikes + 0 * x, uniform_weights(x.shape[0], D)


def test_one_step_rule_dispatches_by_input():
    x = torch.rand(4, 2, 3, dtype=D)
    ref = IFNode(backend="torch")(x)
    for faithful in (False, True):
        probe = _Probe(faithful)
        node = IFNode(backend="torch", grad_rule=probe)
        node(Dual(x, x.mean(0), uniform_weights(4, D)))
        with torch.no_grad():
            torch.testing.assert_close(node(x), ref)  # evaluation: the plain forward
        xg = x.clone().requires_grad_()
        if faithful:
            torch.testing.assert_close(node(xg), ref)
        else:
            with pytest.raises(ValueError, match="silently train with BPTT"):
                node(xg)
        with pytest.raises(ValueError, match="v_init is not supported"):
            node(x, torch.zeros(2, 3, dtype=D))
        assert probe.paths == ["one_step"] + (["per_step"] if faithful else [])


def test_membrane_is_recorded_once_per_call_by_the_rule():
    x = torch.rand(4, 2, 3, dtype=D)
    node = IFNode(backend="torch", grad_rule=_Probe(False))
    with record_membrane(node) as rec:
        node(Dual(x, x.mean(0).requires_grad_(), uniform_weights(4, D)))
        with torch.no_grad():
            node(x)
    assert len(rec.stats) == 2
    mean, var = rec.stats[0]  # values from the window pass, gradient of the flow (κ = 1)
    assert mean.tolist() == [7.0] * 3 and var.tolist() == [9.0] * 3 and mean.requires_grad
    with torch.no_grad():
        node(x)
    assert len(rec.stats) == 2  # outside the block nothing is recorded


def test_a_custom_rule_replaces_the_backward_not_the_values():
    class Zero(GradRule):
        name = "zero"

        def forward(self, node, x, v_init, record):
            out, stats = SurrogateBPTT().forward(node, x, v_init, record)
            return out.detach() + 0 * x, stats

    x = torch.rand(5, 2, dtype=D, requires_grad=True)
    node = LIFNode(decay=0.5, backend="torch", grad_rule=Zero())
    y = node(x)
    torch.testing.assert_close(y, LIFNode(decay=0.5, backend="torch")(x))
    y.sum().backward()
    assert x.grad.abs().sum() == 0
