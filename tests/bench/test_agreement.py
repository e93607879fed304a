"""One-step vs faithful on replayed spikes (digits_snn, no BN): the first layer's gradients agree exactly."""
import pytest

from spikeforge.bench.agreement import gradient_agreement


@pytest.mark.parametrize("method", ["ssf", "dsr"])
def test_first_layer_identical_on_replayed_spikes(method):
    rows = {r["param"]: r for r in gradient_agreement("digits_snn", method, T=4, batch=16)}
    # fc1 sees the static input: one-step W·mean(x) and the per-step Σ_t (1/T)·… are the same numbers
    assert rows["fc1.module.weight"]["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert rows["fc1.module.weight"]["norm_ratio"] == pytest.approx(1.0, abs=1e-5)
    # fc2 sees the spikes: SSF aggregates them with λ = 0.9 weights, the faithful run with the time mean
    fc2 = rows["fc2.module.weight"]
    assert 0.99 < fc2["cosine"] <= 1.0 + 1e-9
    if method == "dsr":  # DSR-IF aggregates with the uniform weights: identical
        assert fc2["cosine"] == pytest.approx(1.0, abs=1e-6)
