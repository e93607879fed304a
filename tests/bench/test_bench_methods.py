"""``spikeforge bench methods``: JSON rows with the documented keys, per method and T, in both memory modes."""
import json

import pytest

from spikeforge.cli import main


@pytest.mark.parametrize("live", [False, True])
def test_bench_methods_json_rows(capsys, live):
    args = ["bench", "methods", "--model", "digits_snn", "--T", "2", "--batch", "4", "--steps", "1",
            "--methods", "bptt", "ssf", "--store-mb", "0", "--json"] + (["--live-memory"] if live else [])
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["T"]) for r in rows] == [("bptt", 2), ("ssf", 2)]
    for row in rows:
        assert {"method", "model", "T", "batch", "step_ms", "peak_mem_mb"} <= set(row)
        assert row["step_ms"] > 0 and row["batch"] == 4
        assert row["memory"] == ("live" if live else "rss")


def test_bench_methods_reports_a_method_the_model_cannot_take(capsys):
    assert main(["bench", "methods", "--model", "digits_snn", "--T", "1", "--batch", "2", "--steps", "1",
                 "--methods", "ssf", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "error" in row and "T >= 2" in row["error"]
