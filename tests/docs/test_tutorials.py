"""Every tutorial's Python code runs (so it cannot rot): the ```python blocks of each ``docs/tutorials/*.md``,
in page order, in one namespace per page, from the repository root.

Long settings are shortened through one table (:data:`SHORTER`): each entry must occur in its page exactly
once, so a tutorial edit that drops it fails here instead of silently running the long version.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

#: page -> {text in the page: what the test runs instead}
SHORTER: dict[str, dict[str, str]] = {
    "first-snn.md": {"epochs = 15": "epochs = 2", 'cfg["train"]["epochs"] = 10': 'cfg["train"]["epochs"] = 1'},
    "ssf-vs-bptt.md": {"for T in (4, 16):": "for T in (2, 3):", "steps=3": "steps=1", "batch=32": "batch=4"},
    "event-frames.md": {},
    "recipes.md": {"n_train, n_test = 256, 128": "n_train, n_test = 48, 16", '"epochs": 2': '"epochs": 1',
                   '["model.T=4", "schedule.t_max=2"]': '["model.T=2", "schedule.t_max=1"]'},
}


def python_blocks(path: Path) -> list[str]:
    """The fenced ```python blocks of a Markdown page, in order."""
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_every_tutorial_is_listed():
    assert sorted(p.name for p in TUTORIALS) == sorted(SHORTER)


@pytest.mark.parametrize("page", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_code_runs(page, monkeypatch, capsys):
    code = "\n".join(python_blocks(page))
    assert code.strip(), f"{page.name} has no python blocks"
    for old, new in SHORTER[page.name].items():
        assert code.count(old) == 1, f"{page.name}: {old!r} should occur once (update SHORTER)"
        code = code.replace(old, new)
    monkeypatch.chdir(ROOT)
    exec(compile(code, str(page), "exec"), {"__name__": f"tutorial_{page.stem.replace('-', '_')}"})
    assert capsys.readouterr().out  # each tutorial prints what it shows
