"""The training loop and the CLI on the embedded digits."""
import csv

import pytest
import torch

from spikeforge.cli import main
from spikeforge.train import config as C
from spikeforge.train.engine import train


def test_digits_learns_in_three_epochs(tmp_path):
    cfg = C.load_recipe("digits")
    C.set_key(cfg, "train.epochs", 3)
    C.set_key(cfg, "optim.lr", 3e-3)
    C.set_key(cfg, "train.output", str(tmp_path))
    result = train(cfg, log=lambda *_: None)
    assert result["test_acc"] > 0.7  # chance is 0.1
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 3 and ckpt["config"]["optim"]["lr"] == 3e-3
    assert (tmp_path / "config.yaml").is_file()


def test_cli_train_prints_accuracy(capsys):
    assert main(["train", "--recipe", "digits", "--epochs", "1", "--set", "train.batch_size=128"]) == 0
    assert "test accuracy:" in capsys.readouterr().out


def test_cli_errors_are_clear(capsys):
    assert main(["train", "--recipe", "nope"]) == 2
    assert "recipe 'nope' is not known" in capsys.readouterr().err
    assert main(["train", "--set", "optim.foo=1"]) == 2
    assert "unknown key 'optim.foo'" in capsys.readouterr().err
    assert main(["train", "--model", "resnet999"]) == 2
    assert "model 'resnet999' is not registered" in capsys.readouterr().err


def test_cli_lists(capsys):
    assert main(["recipes"]) == 0 and "digits" in capsys.readouterr().out
    assert main(["models"]) == 0 and "9,610" in capsys.readouterr().out


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    """Two epochs, stop, resume for the third == three epochs straight (CPU, same seed)."""
    def cfg(out):
        c = C.load_recipe("digits")
        C.set_key(c, "train.epochs", 3)
        C.set_key(c, "train.output", str(out))
        return c

    full = train(cfg(tmp_path / "full"), log=lambda *_: None)["model"]
    train(cfg(tmp_path / "cut"), log=lambda *_: None, stop_after=2)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["epoch"] == 2
    resumed = train(cfg(tmp_path / "cut"), log=lambda *_: None, resume=tmp_path / "cut" / "last.pt")["model"]
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    rows = list(csv.DictReader(open(tmp_path / "cut" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]


def test_resume_errors(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", str(bad)]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
