"""Every data set read from files says where to get it and how --data-dir is laid out."""
import ast
import importlib.util
import sys
from pathlib import Path

import pytest

from spikeforge.data import SOURCES, create_dataset, list_datasets
from spikeforge.data import sources as sources_module

FILE_SETS = [n for n in list_datasets() if n != "digits"]


def test_every_file_based_data_set_has_a_source():
    assert sorted(SOURCES) == sorted(FILE_SETS)
    for name, src in SOURCES.items():
        assert src.url.startswith(("http://", "https://")) and "DIR" in src.layout, name


@pytest.mark.parametrize("name", FILE_SETS)
def test_no_data_dir_names_the_flag_the_layout_and_the_source(name):
    with pytest.raises(ValueError) as err:
        create_dataset(name, root=None)
    text = str(err.value)
    assert f"{name!r} is read from files: pass its folder with --data-dir DIR" in text
    assert SOURCES[name].url in text and SOURCES[name].layout in text and "needs root" not in text


@pytest.mark.parametrize("name", FILE_SETS)
def test_missing_files_name_the_source(name, tmp_path):
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        create_dataset(name, root=str(tmp_path))
    assert "--data-dir DIR" in str(err.value) and SOURCES[name].url in str(err.value)


def test_the_cli_says_where_to_get_dvs_gesture(capsys):
    from spikeforge.cli import main

    assert main(["train", "--recipe", "plif-dvsgesture", "--output", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeforge train: error: data 'dvs128_gesture' is read from files: pass its folder with "
                          "--data-dir DIR (expected: DIR or DIR/DvsGesture: ")
    assert "https://ibm.ent.box.com/" in err and len(err.strip().splitlines()) == 1


def test_sources_module_needs_only_the_standard_library():
    """Loaded on its own (no package import), so a download tool can use it without torch."""
    path = Path(sources_module.__file__)
    imports = [n for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, (ast.Import, ast.ImportFrom))
               for n in ([node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names])]
    assert set(imports) <= {"__future__", "typing"}
    spec = importlib.util.spec_from_file_location("_sources_alone", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_sources_alone"] = module
    try:
        spec.loader.exec_module(module)
        assert module.where_to_get("cifar10").endswith("official source: https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")
    finally:
        del sys.modules["_sources_alone"]
