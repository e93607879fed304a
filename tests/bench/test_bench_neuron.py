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


def test_dtypes_each_get_their_rows(cpu_built, capsys):
    """``--dtype float32 bfloat16``: a row per implementation and dtype, the layer run on that dtype (the cpu
    kernel's ops take float32, so its kernel bytes are the float32 ones); an unknown name is refused."""
    import pytest

    rows = neuron.run([2], numel=64, repeats=1, as_json=True, kernels=["cpu", "torch"], dtypes=["float32", "bfloat16"])
    assert [(r["impl"].split()[0], r["dtype"]) for r in rows if r["impl"].startswith("spikeforge")] == [
        ("spikeforge-cpu", "float32"), ("spikeforge-torch", "float32"),
        ("spikeforge-cpu", "bfloat16"), ("spikeforge-torch", "bfloat16")]
    assert all("error" not in r for r in rows if r["impl"].startswith("spikeforge"))
    by = {(r["impl"], r["dtype"]): r for r in rows}
    assert by["spikeforge-cpu", "bfloat16"]["kernel_bytes"] == by["spikeforge-cpu", "float32"]["kernel_bytes"]
    naive = "spikeforge-torch (naive autograd loop)"
    assert 2 * by[naive, "bfloat16"]["saved_bytes"] == by[naive, "float32"]["saved_bytes"]  # it ran in bf16
    with pytest.raises(ValueError, match="--dtype"):
        neuron.run([2], numel=64, repeats=1, as_json=True, kernels=["torch"], dtypes=["float8"])
