"""The tests mirror the package: every folder of tests is a package of ``spikeforge`` (its tests live at the
same relative path), except the documentation site's."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_A_PACKAGE = {"docs"}  # the mkdocs site, not a Python package


def test_every_test_folder_is_a_package_folder():
    tests = ROOT / "tests"
    folders = {p.parent.relative_to(tests) for p in tests.rglob("test_*.py")} - {Path(".")}
    strays = sorted(str(f) for f in folders
                    if f.parts[0] not in NOT_A_PACKAGE and not (ROOT / "spikeforge" / f / "__init__.py").is_file())
    assert not strays, f"test folders without a spikeforge package at the same path: {strays}"
