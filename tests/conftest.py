"""Fixtures shared across the test tree."""
import pytest

from spikeforge.neuron.kernels import cpu as cpu_kernel


@pytest.fixture(scope="session")
def cpu_built():
    """Build (or load) the C++ kernel extension once; skip the tests that need it where it cannot be built."""
    try:
        cpu_kernel.build_op()
    except RuntimeError as exc:
        pytest.skip(f"the cpu kernel cannot be built here: {exc}")
