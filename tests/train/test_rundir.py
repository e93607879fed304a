"""Run directories and resuming: a new run never overwrites an earlier one; --resume continues
the run its checkpoint belongs to, refuses another model or method and lists what the flags change."""
import re
import shutil

import pytest

from spikeforge.cli import main
from spikeforge.train import config as C
from spikeforge.train.checkpoint import load_checkpoint
from spikeforge.train.engine import train
from spikeforge.train.rundir import checkpoint_path, prepare_run_dir

QUICK = ["--epochs", "1", "--batch-size", "512"]


def test_a_new_run_goes_beside_an_earlier_one_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--output", str(out)]) == 0
    first = (out / "metrics.csv").read_bytes(), (out / "last.pt").read_bytes()
    (out / "loss.png").write_bytes(b"old plot")
    capsys.readouterr()
    assert main(["train", *QUICK, "--lr", "0.01", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"run directory {out} is not empty (an earlier run); writing to {out}-1 instead" in text
    assert f"run directory: {out}-1" in text
    assert ((out / "metrics.csv").read_bytes(), (out / "last.pt").read_bytes()) == first
    assert load_checkpoint(tmp_path / "run-1" / "last.pt")["config"]["train"]["output"] == f"{out}-1"
    assert main(["train", *QUICK, "--output", str(out), "--overwrite"]) == 0
    assert "--overwrite, the previous run's files were deleted" in capsys.readouterr().out
    assert not (out / "loss.png").exists() and (out / "last.pt").read_bytes() != first[1]


def test_a_saved_config_starts_a_fresh_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *QUICK, "--output", str(out)]) == 0
    assert main(["train", "--config", str(out / "config.yaml")]) == 0
    assert f"writing to {out}-1 instead" in capsys.readouterr().out and (tmp_path / "run-1" / "last.pt").is_file()


def test_default_output_is_runs_recipe(capsys):
    assert main(["train", *QUICK]) == 0
    assert main(["train", *QUICK]) == 0
    text = capsys.readouterr().out
    assert "run directory: runs/digits\n" in text + "\n" and "writing to runs/digits-1 instead" in text


def digits_cfg(out, **keys):
    cfg = C.load_recipe("digits")
    for key, value in {"train.output": str(out), "train.batch_size": 256, "train.epochs": 2, **keys}.items():
        C.set_key(cfg, key, value)
    return cfg


@pytest.fixture()
def half_run(tmp_path):
    """A 2-epoch run stopped after epoch 1, copied to ``copy/``: (original, copy)."""
    train(digits_cfg(tmp_path / "orig"), log=lambda *_: None, stop_after=1)
    shutil.copytree(tmp_path / "orig", tmp_path / "copy")
    return tmp_path / "orig", tmp_path / "copy"


def test_resume_continues_the_run_of_the_checkpoint_and_takes_a_run_dir(half_run, capsys):
    orig, copy = half_run
    before = (orig / "metrics.csv").read_bytes()
    assert main(["train", "--resume", str(copy)]) == 0
    text = capsys.readouterr().out
    assert f"resumed from {copy / 'last.pt'} at epoch 2, batch 0; all settings as saved" in text
    assert f"run directory: {copy}" in text
    assert (orig / "metrics.csv").read_bytes() == before  # the original run is untouched
    assert load_checkpoint(copy / "last.pt")["epoch"] == 2


def test_resume_says_which_settings_the_flags_change(half_run, capsys):
    _, copy = half_run
    assert main(["train", "--resume", str(copy / "last.pt"), "--lr", "0.5"]) == 0
    assert "settings changed by the flags (they apply from here on): optim.lr 0.001 -> 0.5" in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--method", "ssf"], "--resume: the checkpoint was trained with method.name='bptt', not 'ssf'"),
    (["--model", "plif_mnist"], "--resume: the checkpoint was trained with model.name='digits_snn', not 'plif_mnist'"),
    (["--recipe", "digits"], "--resume continues a run with its saved config"),
    (["--set", "model.hidden=32"], "does not fit this model"),
])
def test_resume_refuses_another_model_or_method_in_one_line(half_run, capsys, flags, message):
    _, copy = half_run
    assert main(["train", "--resume", str(copy), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_resume_of_a_directory_without_last_pt(tmp_path):
    with pytest.raises(ValueError, match="has no last.pt"):
        checkpoint_path(tmp_path)


def test_prepare_run_dir_counts_up_past_used_siblings(tmp_path):
    for name in ("a", "a-1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "last.pt").write_text("x")
    assert prepare_run_dir(tmp_path / "a", log=lambda *_: None) == tmp_path / "a-2"
    assert prepare_run_dir(tmp_path / "b", log=lambda *_: None) == tmp_path / "b"  # new: used as it is


def test_header_and_epoch_lines_say_what_runs(capsys):
    assert main(["train", "--epochs", "2", "--batch-size", "512"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"model digits_snn \([\d,]+ parameters\), method bptt, device cpu, T=4, 1 threads, "
                        r"2 epochs of 2 batches of 512, run directory runs/digits", lines[0]), lines[0]
    assert re.fullmatch(r"epoch   1  lr 0\.001  train loss .* test loss .* acc .* %  \d+\.\d\d s", lines[1]), lines[1]
    assert lines[2].startswith("epoch   2  lr 0.0005  ")


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    from spikeforge.train import engine

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "build_parts", interrupted)
    assert main(["train"]) == 130
    err = capsys.readouterr().err
    assert err == "spikeforge: interrupted (Ctrl-C) before a checkpoint could be saved; nothing new was written\n"


def test_eval_takes_a_run_directory(half_run, capsys, tmp_path):
    """``eval --checkpoint RUN_DIR`` reads its best.pt (else last.pt); a directory with neither says so."""
    run = half_run[0]
    assert main(["eval", "--checkpoint", str(run)]) == 0
    assert "test" in capsys.readouterr().out
    assert checkpoint_path(run, prefer=("best.pt", "last.pt"), flag="--checkpoint").name == "best.pt"
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--checkpoint", str(tmp_path / "empty")]) == 2
    assert "--checkpoint: run directory" in capsys.readouterr().err
