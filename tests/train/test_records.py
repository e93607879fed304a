"""Run records: CSV round trip (None as empty cells) and TensorBoard scalars through a stand-in writer."""
import sys
import types

import pytest

from spikeforge.train.records import Scalars, read_csv, write_csv


def test_csv_round_trip_with_missing_values(tmp_path):
    rows = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.25, "test_acc": 0.75}]
    write_csv(tmp_path / "m.csv", rows)
    assert (tmp_path / "m.csv").read_text().splitlines() == ["epoch,train_loss,test_acc", "1,0.5,", "2,0.25,0.75"]
    assert read_csv(tmp_path / "m.csv") == [{"epoch": 1.0, "train_loss": 0.5, "test_acc": None},
                                            {"epoch": 2.0, "train_loss": 0.25, "test_acc": 0.75}]
    with pytest.raises(ValueError, match="does not exist; is this a run directory"):
        read_csv(tmp_path / "missing.csv")


def test_scalars_go_to_tensorboard_when_it_is_importable(tmp_path, monkeypatch):
    calls = []

    class Writer:
        def __init__(self, logdir):
            calls.append(("init", logdir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    s = Scalars(tmp_path)
    s.add({"epoch": 3, "test_acc": 0.5, "val_acc": None}, 3)
    s.add({"sn1": 0.125}, 3, prefix="firing_rate/")
    s.close()
    assert calls == [("init", str(tmp_path / "tb")), ("test_acc", 0.5, 3), ("firing_rate/sn1", 0.125, 3), ("close",)]
    Scalars(None).add({"x": 1.0}, 0)  # no run directory: nothing written, no error
