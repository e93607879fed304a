"""The README's examples run as written (spikes, not zeros), its quick start saves a run that
the next commands read, it cites nothing outside the repository, and it lists every data set's source."""
import contextlib
import io
import re
import shlex
from pathlib import Path

from spikeforge.cli import build_parser
from spikeforge.data import SOURCES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_the_python_example_shows_spikes():
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(blocks("python")[0], namespace)  # noqa: S102 (the README's own example)
    spikes = namespace["spikes"]
    assert spikes.shape == (8, 32, 128) and 0.05 < float(spikes.mean()) < 0.95, float(spikes.mean())
    assert "firing rate 0." in out.getvalue() and "torch.Size([4, 10])" in out.getvalue()


def test_the_first_two_commands_keep_their_shape():
    first, second = (b.strip() for b in blocks("bash")[:2])
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && ") and "pip install -e ." in first
    assert first.endswith("&& spikeforge train --recipe digits")
    assert second.endswith("python -m pytest -q")


def test_the_quick_start_follow_up_commands_parse_and_read_the_saved_run():
    follow_up = blocks("bash")[2]
    commands = [line.split("#")[0].strip() for line in follow_up.splitlines() if line.strip()]
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "spikeforge"
        build_parser().parse_args(words[1:])
    assert "runs/digits" in commands[0] and "runs/digits/best.pt" in commands[1]


def test_no_reference_outside_the_repository():
    assert "SPEC" not in README


def test_every_data_source_is_listed():
    for name, src in SOURCES.items():
        assert f"| {name} | {src.url}" in README, name
    assert "## BPTT, SSF or DSR?" in README
