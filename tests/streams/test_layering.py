"""The two-stream package sits below neuron/ and layers/ (DESIGN "the two streams"): read from the source with
``ast``, streams/ imports nothing of spikeforge outside itself, and neither neuron/, streams/ nor layers/ reaches
up into methods/ (the rules live there; the machinery every layer uses does not)."""
import ast
from pathlib import Path

import pytest

import spikeforge

ROOT = Path(spikeforge.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the spikeforge modules a file imports (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "spikeforge" or n.startswith("spikeforge.")}


def test_streams_imports_only_itself():
    for path in sorted((ROOT / "streams").glob("*.py")):
        outside = {m for m in imported_modules(path) if not m.startswith("spikeforge.streams")}
        assert not outside, f"{path.name} imports {sorted(outside)}"


@pytest.mark.parametrize("package", ["neuron", "streams", "layers"])
def test_lower_packages_do_not_import_methods(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        up = {m for m in imported_modules(path) if m.startswith("spikeforge.methods")}
        assert not up, f"{path.relative_to(ROOT)} imports {sorted(up)}"
