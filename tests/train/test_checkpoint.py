"""Checkpoint RNG states restored on another machine: a checkpoint from more GPUs than are present."""
import random

import numpy as np
import pytest
import torch

from spikeforge.train.checkpoint import rng_states, set_rng_states


def test_restore_cpu_states_exactly():
    saved = rng_states()
    a = (torch.rand(3), np.random.rand(), random.random())
    torch.rand(5), np.random.rand(4), random.random()
    set_rng_states(saved)
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_cuda_states_of_more_devices_than_present_restore_the_first_and_warn(monkeypatch):
    """Saved with 2 GPUs, restored where 1 exists: device 0 gets its state, nothing indexes device 1."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": calls.append((int(state[0]), device)))
    states = {**rng_states(), "cuda": [torch.tensor([7], dtype=torch.uint8), torch.tensor([9], dtype=torch.uint8)]}
    with pytest.warns(UserWarning, match="2 devices, this machine has 1"):
        set_rng_states(states)
    assert calls == [(7, 0)]


def test_cuda_states_absent_or_no_cuda_leave_cuda_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda *a, **k: calls.append(a))
    set_rng_states({**rng_states(), "cuda": None})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    set_rng_states({**rng_states(), "cuda": [torch.tensor([1], dtype=torch.uint8)]})
    assert calls == []
