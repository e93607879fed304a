"""The engine as the user runs it, in subprocesses: SIGKILL + --resume and SIGINT + --resume end with the
weights of an uninterrupted run bit for bit (CPU); 2 processes under torchrun (gloo) equal 1 process."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from spikeforge.train.checkpoint import load_checkpoint

RUN = ["--recipe", "digits", "--epochs", "2", "--batch-size", "128"]  # 11 global batches per epoch
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def spikeforge(*args, **kw):
    return subprocess.run([sys.executable, "-m", "spikeforge", *args], env=ENV, capture_output=True, text=True,
                          timeout=240, check=False, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    done = spikeforge("train", *RUN, "--output", str(out))
    assert done.returncode == 0, done.stderr
    return load_checkpoint(out / "last.pt")


# `spikeforge train ...` whose process sends itself ``SIG`` right after global step ``AT`` (a real signal, at a
# deterministic point: polling from outside missed the moment once the run got fast).
SIGNAL_SELF = """
import os, signal, sys
from spikeforge.cli import main
from spikeforge.train import engine
real = engine.train_epoch
def train_epoch(p, prog, stop, on_step):
    def step():
        on_step()
        if prog.global_step == {at}:
            os.kill(os.getpid(), signal.{sig})
    return real(p, prog, stop, step)
engine.train_epoch = train_epoch
sys.exit(main(sys.argv[1:]))
"""


def run_and_signal(out, sig, at):
    """A run that checkpoints every 4 steps; it gets ``sig`` after global step ``at``."""
    code = SIGNAL_SELF.format(at=at, sig=sig.name)
    done = subprocess.run([sys.executable, "-c", code, "train", *RUN, "--output", str(out),
                           "--set", "train.checkpoint_every=4"], env=ENV, capture_output=True, text=True,
                          timeout=240, check=False)
    return done.returncode, done.stderr


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for name in a:
        if atol == 0.0:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=0.0, atol=atol, msg=name)


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path, reference):
    rc, _ = run_and_signal(tmp_path, signal.SIGKILL, at=7)
    assert rc == -signal.SIGKILL
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (0, 4)  # killed mid-epoch at step 7; steps 5-7 are lost and redone
    done = spikeforge("train", "--resume", str(tmp_path / "last.pt"))
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stdout
    final = load_checkpoint(tmp_path / "last.pt")
    assert (final["epoch"], final["global_step"]) == (2, 22)
    assert_same_weights(final["model"], reference["model"])
    assert [r["train_loss"] for r in final["history"]] == [r["train_loss"] for r in reference["history"]]


def test_sigint_saves_exits_130_and_resumes_exactly(tmp_path, reference):
    rc, stderr = run_and_signal(tmp_path, signal.SIGINT, at=6)
    assert rc == 130, stderr
    assert "interrupted at epoch 1, batch 7; resume with --resume" in stderr  # the step under way finishes
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert (ckpt["epoch"], ckpt["step"], ckpt["global_step"]) == (0, 7, 7)
    done = spikeforge("train", "--resume", str(tmp_path / "last.pt"))
    assert done.returncode == 0, done.stderr
    assert_same_weights(load_checkpoint(tmp_path / "last.pt")["model"], reference["model"])


def test_two_processes_torchrun_gloo_equal_one_process(tmp_path, reference):
    """Same global batch (128 = 2 x 64): DDP's averaged gradient is the global-batch mean; weights agree to 1e-6."""
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "spikeforge", "train", *RUN, "--output", str(tmp_path)],
                          env=ENV, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("protocol A") == 1  # only rank 0 prints
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["world"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    assert_same_weights(ckpt["model"], reference["model"], atol=1e-6)
    for mine, ref in zip(ckpt["history"], reference["history"]):
        assert mine["test_acc"] == pytest.approx(ref["test_acc"], abs=1 / 360 + 1e-12)
        assert mine["train_loss"] == pytest.approx(ref["train_loss"], abs=1e-5)


BN_RUN = ["--recipe", "digits", "--epochs", "1", "--batch-size", "128", "--set", "model.batchnorm=true", "--sync-bn"]


@pytest.mark.parametrize("method", ["bptt", "ssf"])
def test_two_processes_sync_bn_equal_one_process(tmp_path, method):
    """A BN model (digits_snn + BatchNormTB) under ``--sync-bn``: 2 gloo processes of 64 equal 1 process of 128
    (weights and BN running statistics to 1e-6); without ``--sync-bn`` each rank's BN sees only its 64."""
    one = spikeforge("train", *BN_RUN, "--method", method, "--output", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "spikeforge", "train", *BN_RUN, "--method", method, "--output", str(tmp_path / "two")],
                         env=ENV, capture_output=True, text=True, timeout=240, check=False)
    assert two.returncode == 0, two.stderr[-3000:]
    ref, ckpt = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert ckpt["world"] == 2 and "bn1.running_var" in ckpt["model"]
    assert_same_weights(ckpt["model"], ref["model"], atol=1e-6)
