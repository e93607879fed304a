"""The one batch adapter: loader batch -> model input (sequences time first, static images unchanged)."""
import torch
from torch import nn

from spikeforge.train.batches import input_dims, model_batch, model_input, time_first


class _Declared(nn.Module):
    input_shape = (2, 4, 4)


def test_sequences_go_time_first_static_batches_pass():
    seq, static = torch.randn(5, 3, 2, 4, 4), torch.randn(5, 2, 4, 4)  # [B, T, C, H, W], [B, C, H, W]
    assert time_first(seq, 3).shape == (3, 5, 2, 4, 4)
    assert time_first(static, 3) is static


def test_input_dims_from_the_model_else_from_the_sample():
    assert input_dims(_Declared(), torch.randn(3, 2, 4, 4)) == 3  # a [T, C, H, W] sample of a declared model
    assert input_dims(nn.Identity(), torch.randn(3, 2, 4, 4)) == 4  # undeclared: the sample is one step
    assert model_input(_Declared(), torch.randn(5, 3, 2, 4, 4)).shape == (3, 5, 2, 4, 4)
    assert model_input(nn.Identity(), torch.randn(5, 3, 2, 4, 4)).shape == (5, 3, 2, 4, 4)


def test_model_batch_moves_and_transposes():
    x, y = model_batch((torch.randn(5, 3, 2, 4, 4), torch.arange(5)), 3, torch.device("cpu"))
    assert x.shape == (3, 5, 2, 4, 4) and y.tolist() == [0, 1, 2, 3, 4]
