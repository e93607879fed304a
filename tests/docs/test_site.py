"""The documentation site builds with warnings as errors (``mkdocs build --strict``, as CI does), and its
navigation lists every page under ``docs/``. Skipped where the ``docs`` extra is not installed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        for value in item.values():
            out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_nav_lists_every_page():
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(_nav_pages(cfg["nav"])) == pages


def test_strict_build(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    built = sorted(p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*.html"))
    assert "tutorials/first-snn.html" in built and "api/data.html" in built
    assert "download_dataset" in (tmp_path / "site" / "api" / "data.html").read_text()
