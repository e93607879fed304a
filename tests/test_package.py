"""The names users reach for first import from the top level, lightly, and help() names options."""
import inspect
import subprocess
import sys

import spikeforge
from spikeforge.methods import METHODS
from spikeforge.train.options import option_names


def test_top_level_exports_and_a_light_import():
    code = ("import sys, spikeforge; assert 'torch' not in sys.modules, 'import spikeforge pulled in torch'; "
            "from spikeforge import create_model, list_models, get_method, list_methods, get_loss, "
            "IFNode, LIFNode, PLIFNode, Readout, create_dataset, list_datasets; "
            "from spikeforge.models import create_model as c; assert create_model is c; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
    assert {"create_model", "get_method", "LIFNode"} <= set(dir(spikeforge)) and "LIFNode" in spikeforge.__all__


def test_unknown_top_level_name_raises_attribute_error():
    try:
        spikeforge.create_modle  # noqa: B018
    except AttributeError as err:
        assert "no attribute 'create_modle'" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_get_method_docstring_names_every_option_of_every_method():
    doc = inspect.getdoc(spikeforge.get_method)
    for name in METHODS.names():
        assert f'"{name}"' in doc
        for option in option_names(METHODS.lookup(name).__init__):
            assert f"{option}=" in doc, (name, option)
    assert "Shape:" in doc


def test_create_model_docstring_lists_every_model_and_the_shapes():
    doc = inspect.getdoc(spikeforge.create_model)
    assert all(name in doc for name in spikeforge.list_models())
    assert "[B, *input_shape]" in doc and "[T, B, *input_shape]" in doc and "logits ``[B, K]``" in doc


def test_neuron_docstrings_state_shapes():
    for node in (spikeforge.LIFNode, spikeforge.IFNode.__mro__[1]):
        assert "Shape:" in inspect.getdoc(node)
