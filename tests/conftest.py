"""Fixtures shared across the test tree, and the test session's own torch.compile cache.

Inductor and AOTAutograd cache compiled graphs across processes (``TORCHINDUCTOR_CACHE_DIR``, by default under
the system's temp directory). A cached backward graph keeps the custom ops' argument lists of the code that
compiled it, so a cache filled by an older checkout can replay a call that no longer fits; the tests (and the
processes they start) use a fresh directory of their own unless one is set.
"""
import atexit
import os
import shutil
import tempfile

import pytest

if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # before torch is imported
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="spikeforge-tests-inductor-")
    atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)

from spikeforge.neuron.kernels import cpu as cpu_kernel  # noqa: E402


@pytest.fixture(scope="session")
def cpu_built():
    """Build (or load) the C++ kernel extension once; skip the tests that need it where it cannot be built."""
    try:
        cpu_kernel.build_op()
    except RuntimeError as exc:
        pytest.skip(f"the cpu kernel cannot be built here: {exc}")
