"""The neuron benchmark runs and reports what it claims (no timing asserts)."""
import json

from spikeforge.bench import neuron


def test_json_rows_and_saved_bytes(capsys):
    rows = neuron.run([3], numel=256, repeats=1, as_json=True, kernels=["torch"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == rows and len(rows) >= 1
    for row in rows:
        assert {"impl", "T", "numel", "fwd_ms", "fwdbwd_ms", "saved_bytes"} <= set(row)
        assert row["T"] == 3 and row["numel"] == 256 and row["fwd_ms"] > 0 and row["saved_bytes"] > 0
