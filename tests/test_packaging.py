"""pyproject.toml: torch as a range (installing spikeforge keeps a user's CUDA build), no Triton pin that
fights the one torch's CUDA wheels require, requires-python true to the dependencies; README and CI
install the CPU torch explicitly before spikeforge."""
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements(name):
    reqs = PYPROJECT["dependencies"] + [r for extra in PYPROJECT["optional-dependencies"].values() for r in extra]
    return [r for r in reqs if re.match(rf"{name}\s*([<>=!~;\[]|$)", r)]


def test_torch_is_a_range_from_2_4_below_3():
    (torch,) = _requirements("torch")
    assert "==" not in torch and "~=" not in torch, torch
    assert re.search(r">=\s*2\.4\b", torch) and re.search(r"<\s*3\b", torch), torch


def test_triton_is_never_pinned():
    assert _requirements("triton"), "the triton / test extras name triton"
    for req in _requirements("triton"):
        assert req.strip() == "triton", f"{req!r}: a Triton version fights the one torch's CUDA wheels require"


def test_requires_python_matches_the_interpreter_and_dependencies():
    assert PYPROJECT["requires-python"] == ">=3.11"  # matplotlib >= 3.11 needs 3.11
    assert sys.version_info >= (3, 11)


def test_readme_and_ci_install_the_cpu_torch_first():
    readme = (ROOT / "README.md").read_text()
    assert ("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e . "
            "&& spikeforge train --recipe digits") in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert 0 <= ci.index("pip install -q torch==2.13.0") < ci.index('pip install -q -e ".[test]"')
