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


def test_kernel_traffic_reported_for_the_fused_kernel(cpu_built):
    """The cpu row carries the bytes its ops read and write (24 per element and step, plus six 0-dim
    parameter reads) and the rate they give; the naive loop runs no spikeforge op and has neither."""
    rows = {r["impl"]: r for r in neuron.run([5], numel=300, repeats=1, as_json=True, kernels=["cpu", "torch"])}
    cpu = rows["spikeforge-cpu"]
    assert cpu["kernel_bytes"] == 24 * 5 * 300 + 6 * 4
    assert abs(cpu["kernel_gb_per_s"] - cpu["kernel_bytes"] / (cpu["fwdbwd_ms"] * 1e-3) / 1e9) < 1e-9
    naive = rows["spikeforge-torch (naive autograd loop)"]
    assert "kernel_bytes" not in naive and "copy_fraction" not in naive
