"""The one evaluation loop: accuracy and mean loss over a loader, any module or a spikeforge model."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from spikeforge.models import create_model
from spikeforge.train.evaluate import evaluate


class _Fixed(nn.Module):
    """Logits that pick class 0 for every sample: ``[T, B, N] -> [B, 2]``."""

    def forward(self, x):
        return torch.stack([x.new_ones(x.shape[1]), x.new_zeros(x.shape[1])], 1)


def test_accuracy_and_loss_over_batches_of_sequences():
    x, y = torch.randn(10, 4, 3), torch.tensor([0] * 7 + [1] * 3)  # [B, T, N] samples of an undeclared module
    data = DataLoader(TensorDataset(x, y), batch_size=4)
    res = evaluate(_Fixed(), data, input_dims=1)
    assert res == {"loss": None, "acc": pytest.approx(0.7), "samples": 10}
    ce = nn.CrossEntropyLoss()
    res = evaluate(_Fixed(), data, lambda out, t: ce(out, t), input_dims=1)
    assert res["loss"] == pytest.approx(float(ce(_Fixed()(x.transpose(0, 1)), y)), abs=1e-6)


def test_a_model_takes_its_forward_output_and_the_dims_come_from_it():
    model = create_model("digits_snn")
    x, y = torch.rand(6, 64), torch.arange(6) % 10
    res = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=4))
    with torch.no_grad():
        expected = (model(x).argmax(1) == y).double().mean().item()
    assert res["acc"] == pytest.approx(expected) and not model.training


def test_an_empty_loader_is_named():
    with pytest.raises(ValueError, match="val: the data set is empty"):
        evaluate(_Fixed(), DataLoader(TensorDataset(torch.randn(0, 2, 3), torch.zeros(0, dtype=torch.long))),
                 input_dims=1, desc="val")
