"""Every registered model under every method it accepts: output shape, finite values, gradients reach
the first layer (non-zero under bptt) (tiny batch, T = 2, the smallest input the model takes). Per-name
exceptions live in the tables below."""
import warnings

import pytest
import torch

from spikeforge.methods import get_method
from spikeforge.models import create_model, list_models

#: input per sample for models that fix it (others take 3×32×32)
INPUTS = {"digits_snn": (64,), "sew_7b_gesture": (2, 128, 128), "sew_wide7b_cifar10dvs": (2, 128, 128),
          "vgg11_dvs": (2, 48, 48), "vggsnn_dvs": (2, 48, 48), "plif_mnist": (1, 28, 28), "plif_fmnist": (1, 28, 28),
          "plif_nmnist": (2, 34, 34), "plif_cifar10dvs": (2, 128, 128), "plif_dvsgesture": (2, 128, 128)}
#: model name prefix -> the T it runs at (others: T = 2)
FIXED_T = {"yao_": 1}
#: (model, method) pairs that must refuse, and the reason's words
REFUSED = {"dsr": ("sew_", "spiking_resnet", "plain_net", "plif_", "vggsnn_dvs", "yao_"), "ssf": ("yao_",)}
SLOW = ("101", "152", "plif_cifar10dvs", "plif_dvsgesture", "sew_wide7b")
#: known findings, not bugs of the model code: SSF's slope-1 backward (supp. S7) gains about 2x per
#: conv-BN-IF layer at random init (bptt stays flat), so the 152-layer plain net overflows fp32
KNOWN = {("plain_net152", "ssf"): "ssf gradients grow ~2x per conv-BN-IF layer; a 152-layer plain net overflows"}
#: model name prefix -> why its first layer gets a zero gradient here under bptt (and where it is tested instead)
SILENT_FIRST_LAYER = {
    "preact_resnet": "at T = 2 the head's LIF after the pool stays silent; test_preact_resnet.py runs T = 4",
    "yao_": "the head starts at 0 (Sequencer2D init), which blocks every gradient; tests/models/yao re-initialise it",
}


def cases():
    for name in list_models():
        for method in ("bptt", "ssf", "dsr"):
            marks = [pytest.mark.slow] if any(s in name for s in SLOW) else []
            if (name, method) in KNOWN:  # the finite-gradient assertion fails: no other exception may pass
                marks.append(pytest.mark.xfail(reason=KNOWN[name, method], strict=True, raises=AssertionError))
            yield pytest.param(name, method, marks=marks, id=f"{name}-{method}")


@pytest.mark.parametrize("name,method", list(cases()))
def test_forward_backward(name, method):
    torch.manual_seed(0)
    T = next((t for prefix, t in FIXED_T.items() if name.startswith(prefix)), 2)
    if name.startswith(REFUSED.get(method, ("\0",))):
        with pytest.raises(ValueError):
            create_model(name, method=method, T=T)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PLIF's w frozen under ssf (tested in tests/methods)
        model = create_model(name, method=get_method(method), T=T)
    x = torch.rand(2, *INPUTS.get(name, (3, 32, 32))) * 2
    out = model.forward_output(x)
    assert out.logits.shape == (2, model.num_classes) and torch.isfinite(out.logits).all()
    assert out.steps.shape[:2] == (T, 2)
    out.logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if method == "bptt" and not name.startswith(tuple(SILENT_FIRST_LAYER)):
        # the first parameter is the first layer's weight (stem or first conv/FC); the gradient reaches it
        # only through every neuron's surrogate, so a zero σ' leaves it at 0
        first = next(p for p in model.parameters() if p.requires_grad)
        assert first.grad.abs().sum() > 0


#: the papers' input sizes for the models the table above runs smaller (ImageNet nets at 224×224)
PAPER_INPUTS = {name: (3, 224, 224) for pattern in ("sew_resnet*", "spiking_resnet*", "plain_net*")
                for name in list_models(pattern)}
PAPER_INPUTS.update({"resnet19": (3, 32, 32), "sew_cifar10_small": (3, 32, 32), "preact_resnet18_imagenet": (3, 224, 224)})


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if any(s in n for s in SLOW) else [])
                                  for n in sorted(PAPER_INPUTS)])
def test_output_shape_at_paper_input_size(name):
    model = create_model(name, T=1).eval()
    with torch.no_grad():
        assert model(torch.rand(1, *PAPER_INPUTS[name])).shape == (1, model.num_classes)
