"""The engine in-process on the embedded digits: learning, files, protocols, resume, NaN, AMP, eval."""
import csv
import os
import math

import pytest
import torch

from spikeforge.train import config as C
from spikeforge.train import engine
from spikeforge.train.engine import (
    NonFiniteLoss,
    load_checkpoint,
    protocols,
    train,
)


def quiet(*_):
    pass


def rows_of(path):
    return list(csv.DictReader(path.read_text().splitlines()))


def digits(out=None, **keys):
    cfg = C.load_recipe("digits")
    for key, value in {"train.output": str(out) if out else None, **keys}.items():
        C.set_key(cfg, key, value)
    return cfg


def test_digits_reaches_85_percent_in_three_epochs_and_writes_its_run_dir(tmp_path):
    """Stated accuracy: >= 85 % test accuracy after 3 epochs (lr 3e-3, batch 64; chance 10 %)."""
    result = train(digits(tmp_path, **{"train.epochs": 3, "optim.lr": 3e-3}), log=quiet)
    assert result["test_acc"] >= 0.85
    rows = rows_of(tmp_path / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert result["best_test_acc"] == max(float(r["test_acc"]) for r in rows)
    rates = rows_of(tmp_path / "firing_rates.csv")
    assert [r["epoch"] for r in rates] == ["1", "2", "3"] and all(0 < float(r["sn1"]) < 1 for r in rates)
    last = load_checkpoint(tmp_path / "last.pt")
    assert (last["epoch"], last["step"], last["global_step"]) == (3, 0, 3 * (1437 // 64))
    assert last["config"]["optim"]["lr"] == 3e-3 and last["version"]["spikeforge"]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["history"][-1]["test_acc"] == result["best_test_acc"]
    from spikeforge.commands import evaluate_checkpoint  # the command layer reads checkpoints

    assert evaluate_checkpoint(tmp_path / "best.pt")["acc"] == pytest.approx(result["best_test_acc"], abs=1e-12)
    assert (tmp_path / "config.yaml").is_file()


def test_protocols_from_hand_made_history():
    """A = max test accuracy; B = test accuracy at the first epoch of best validation accuracy (SPEC §7.2)."""
    rows = [{"epoch": 1, "val_acc": 0.5, "test_acc": 0.6}, {"epoch": 2, "val_acc": 0.8, "test_acc": 0.7},
            {"epoch": 3, "val_acc": 0.8, "test_acc": 0.9}, {"epoch": 4, "val_acc": 0.7, "test_acc": 0.95},
            {"epoch": 5, "train_acc": 1.0}]
    assert protocols(rows) == {"A": 0.95, "A_epoch": 4, "B": 0.7, "B_epoch": 2}
    assert protocols([{"epoch": 1, "test_acc": 0.3}])["B"] is None


def test_protocol_b_with_a_validation_split(tmp_path):
    result = train(digits(tmp_path, **{"train.epochs": 2, "train.val_fraction": 0.15, "train.batch_size": 128}), log=quiet)
    rows = rows_of(tmp_path / "metrics.csv")
    best_val = max(rows, key=lambda r: float(r["val_acc"]))
    assert result["best_val_epoch"] == int(best_val["epoch"]) and result["protocol_b"] == float(best_val["test_acc"])


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    """Two epochs, stop, resume for the third == three epochs straight (CPU, same seed), bit for bit."""
    keys = {"train.epochs": 3, "train.batch_size": 128}
    full = train(digits(tmp_path / "full", **keys), log=quiet)["model"]
    train(digits(tmp_path / "cut", **keys), log=quiet, stop_after=2)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    resumed = train(digits(tmp_path / "cut", **keys), log=quiet, resume=tmp_path / "cut" / "last.pt")["model"]
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    full_rows = rows_of(tmp_path / "full" / "metrics.csv")
    cut_rows = rows_of(tmp_path / "cut" / "metrics.csv")
    assert [r["test_acc"] for r in cut_rows] == [r["test_acc"] for r in full_rows]


class NanOnCall(torch.nn.Module):
    """Cross-entropy, except that call number ``bad`` (1-based) returns NaN."""

    def __init__(self, bad):
        super().__init__()
        self.bad, self.calls = bad, 0

    def forward(self, out, y):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(out.logits, y)
        return loss * math.nan if self.calls == self.bad else loss


def test_nan_loss_stops_saves_and_names_the_step(tmp_path, monkeypatch):
    """Batch size 128: 11 batches per epoch; the 14th training loss is NaN -> epoch 2, batch 3, global step 14."""
    monkeypatch.setattr(engine, "build_loss", lambda cfg: NanOnCall(bad=14))  # eval_every 5: no test pass before
    cfg = digits(tmp_path, **{"train.epochs": 3, "train.batch_size": 128, "train.eval_every": 5})
    with pytest.raises(NonFiniteLoss, match=r"loss is nan at epoch 2, batch 3 \(global step 14\).*saved .*last.pt"):
        train(cfg, log=quiet)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert (ckpt["epoch"], ckpt["step"], ckpt["global_step"]) == (1, 2, 13)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())  # the bad step was not applied


def test_amp_bf16_and_clip_and_mixup_smoke(tmp_path):
    """bf16 autocast on CPU with gradient clipping and mixup still learns (> 30 % after one epoch; chance 10 %)."""
    cfg = digits(tmp_path, **{"train.epochs": 1, "train.amp": "bf16", "train.clip_grad": 1.0, "train.mixup": 0.2,
                              "optim.lr": 1e-2})
    assert train(cfg, log=quiet)["test_acc"] > 0.3
    C.set_key(cfg, "train.amp", "fp16")
    with pytest.raises(ValueError, match="fp16' needs a CUDA device"):
        train(cfg, log=quiet)


def test_rtd_needs_sequences():
    with pytest.raises(ValueError, match="train.rtd_T needs sequence input"):
        train(digits(**{"train.epochs": 1, "train.rtd_T": 2}), log=quiet)


def test_sequences_go_time_first_and_rtd_draws_once_per_global_batch(tmp_path, monkeypatch):
    """Frames ``[N, T=4, 64]`` reach the model as ``[T, B, 64]``; random temporal delete keeps 2 of 4 steps and
    draws exactly one randperm per global batch from the run's generator (seeded with train.seed)."""
    seen = []

    def fake_sets(cfg):
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(96, 4, 64, generator=g), torch.randint(0, 10, (96,), generator=g)
        ds = torch.utils.data.TensorDataset(x, y)
        return {"train": ds, "test": ds}

    monkeypatch.setattr(engine, "build_datasets", fake_sets)
    real_build = engine.build_model

    def spy_model(cfg):
        model = real_build(cfg)
        model.fc1.register_forward_pre_hook(lambda m, args: seen.append((m.training, tuple(args[0].shape))))
        return model

    monkeypatch.setattr(engine, "build_model", spy_model)
    train(digits(tmp_path, **{"train.epochs": 2, "train.batch_size": 32, "train.rtd_T": 2}), log=quiet)
    assert [s for t, s in seen if t] == [(2, 32, 64)] * 6 and {s for t, s in seen if not t} == {(4, 96, 64)}
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        torch.randperm(4, generator=g)
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["rng"]["rtd"], g.get_state())


def test_resume_takes_a_new_learning_rate(tmp_path):
    """--resume with --lr: the schedule follows the new config (lr 0 -> the weights stay those of epoch 1)."""
    keys = {"train.epochs": 2, "train.batch_size": 256, "schedule.name": "constant"}
    train(digits(tmp_path, **keys), log=quiet, stop_after=1)
    after_one = load_checkpoint(tmp_path / "last.pt")["model"]
    resumed = train(digits(tmp_path, **keys, **{"optim.lr": 0.0}), log=quiet, resume=tmp_path / "last.pt")
    assert all(torch.equal(v, after_one[k]) for k, v in resumed["model"].state_dict().items())
    assert load_checkpoint(tmp_path / "last.pt")["history"][-1]["lr"] == 0.0


def test_configure_backends_deterministic_sets_cublas_workspace_and_cuda_autotunes(monkeypatch):
    import torch.backends.cudnn as cudnn

    calls = []
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda on, warn_only=False: calls.append((on, warn_only)))
    monkeypatch.setattr(cudnn, "benchmark", False)
    engine.configure_backends(False, torch.device("cuda"))
    assert cudnn.benchmark is True and calls == [] and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    engine.configure_backends(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and calls == [(True, True)] and cudnn.benchmark is False
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's choice stays
    engine.configure_backends(True, torch.device("cpu"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    cudnn.benchmark = False
    engine.configure_backends(False, torch.device("cpu"))
    assert cudnn.benchmark is False
