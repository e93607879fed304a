"""Training tests run torch on one thread: the models are tiny, and on a shared 2-core machine two
OpenMP threads contending with other processes made an epoch of digits up to 30x slower.

They also run in a temporary working directory: ``spikeforge train`` saves to ``runs/<recipe>`` by default."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
