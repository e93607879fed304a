"""``spikeforge bench models``: one JSON object per model with the documented keys; unknown names raise."""
import json

import pytest

from spikeforge.bench.models import run
from spikeforge.cli import main


def test_bench_models_json_rows(capsys):
    assert main(["bench", "models", "--model", "digits_snn", "--batch", "4", "--steps", "1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert {"method", "model", "T", "batch", "step_ms", "peak_mem_mb"} <= set(row)
    assert (row["model"], row["method"], row["T"], row["batch"]) == ("digits_snn", "bptt", 4, 4)  # the model's own T
    assert row["step_ms"] > 0


def test_bench_models_unknown_name():
    with pytest.raises(ValueError, match="no registered model matches"):
        run(["no_such_net"], "bptt", 2, 32, 1, True)
