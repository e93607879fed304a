"""The command line: train summary, eval, recipes, plot, clear errors and exit codes."""
import pytest

from spikeforge.cli import build_parser, main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--epochs", "2", "--batch-size", "128", "--lr", "0.003", "--output", str(out),
                 "--set", "train.val_fraction=0.15"]) == 0
    return out


def test_flags_reach_the_run_and_eval_reproduces_its_test_accuracy(run_dir, capsys):
    from spikeforge.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["config"]["optim"]["lr"] == 0.003 and ckpt["config"]["train"]["val_fraction"] == 0.15
    assert main(["eval", "--checkpoint", str(run_dir / "last.pt")]) == 0
    want = ckpt["history"][-1]["test_acc"]
    assert f"test accuracy: {100 * want:.2f} %" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(run_dir / "last.pt"), "--split", "val"]) == 0
    assert f"val accuracy: {100 * ckpt['history'][-1]['val_acc']:.2f} %" in capsys.readouterr().out


def test_train_summary_lines(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--batch-size", "256", "--set", "train.val_fraction=0.15"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "protocol A (max test accuracy):" in out
    assert "protocol B (test at best validation epoch 1):" in out


def test_plot_writes_pngs(run_dir, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(run_dir), "--neurons", "16"]) == 0
    names = sorted(line.rsplit("/", 1)[-1] for line in capsys.readouterr().out.split())
    assert names == ["accuracy.png", "firing_rates.png", "loss.png", "raster.png"]
    for name in names:
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipes_keep_assumed_and_unverified_visible(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    digits = next(line for line in lines if line.startswith("digits "))
    assert "(assumed) loss.name" in digits and "none (embedded default)" in digits


@pytest.mark.parametrize("argv, message", [
    (["train", "--recipe", "nope"], "recipe 'nope' is not known; `spikeforge recipes` lists all"),
    (["train", "--recipe", "digts"], "recipe 'digts' is not known; did you mean: digits?"),
    (["train", "--recipe", "digits", "--config", "x.yaml"], "--recipe digits and --config x.yaml both name a config"),
    (["train", "--set", "optim.foo=1"],
     "optimizer 'adam' has no option optim.foo; valid: optim.lr, optim.weight_decay, optim.betas, optim.eps"),
    (["train", "--set", "optim.betas=[0.9]"], "optim.betas must be a list of 2 numbers, got [0.9]"),
    (["train", "--set", "schedule.warmup_stepz=5"], "schedule 'cosine' has no option schedule.warmup_stepz; valid:"),
    (["train", "--set", "train.epochs=abc"], "--set: train.epochs must be an integer >= 1, got 'abc'"),
    (["train", "--set", "train.epochs=2.5"], "--set: train.epochs must be an integer >= 1, got 2.5"),
    (["train", "--set", "optim.lr=abc"], "--set: optim.lr must be a number >= 0, got 'abc'"),
    (["train", "--set", "train.compile=maybe"], "--set: train.compile must be true, false or one of default, "
     "reduce-overhead, max-autotune, max-autotune-no-cudagraphs, got 'maybe'"),
    (["train", "--compile", "fast"], "train.compile must be true, false or one of default, reduce-overhead"),
    (["train", "--device", "gpu"], "--device: train.device must be cpu or cuda (cuda:N for one GPU), got 'gpu'"),
    (["models", "xyz"], "no model name matches 'xyz'; `spikeforge models` lists all"),
    (["recipes", "digts"], "recipe 'digts' is not known; did you mean: digits?"),
    (["train", "--set", "train.foo=1"], "unknown key 'train.foo'"),
    (["train", "--model", "resnet999"], "model 'resnet999' is not registered"),
    (["train", "--method", "bpt"], "method 'bpt' is not registered; did you mean: bptt? choose one of: bptt, dsr, ssf"),
    (["train", "--set", "data.name=mnist", "--data-dir", "/nonexistent-dir", "--model", "plif_mnist",
      "--set", "data.split_seed=null"], "dataset 'mnist': bad option"),
    (["train", "--resume", "/nonexistent/last.pt"], "checkpoint '/nonexistent/last.pt' does not exist"),
    (["eval", "--checkpoint", "/nonexistent/best.pt"], "does not exist"),
    (["plot", "/nonexistent-run"], "metrics.csv' does not exist"),
])
def test_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_missing_data_files_are_named(tmp_path, capsys):
    cfg = tmp_path / "mnist.yaml"
    cfg.write_text("data: {name: mnist}\nmodel: {name: plif_mnist, T: 2}\n")
    assert main(["train", "--config", str(cfg), "--data-dir", str(tmp_path)]) == 2
    assert "t10k-images-idx3-ubyte" in capsys.readouterr().err


def test_flags_map_to_config_keys():
    args = build_parser().parse_args(["train", "--amp", "bf16", "--compile", "--sync-bn", "--T", "6"])
    assert (args.amp, args.compile, args.sync_bn, args.T) == ("bf16", True, True, 6)
    args = build_parser().parse_args(["train"])
    assert args.compile is None and args.sync_bn is None  # unset flags leave the recipe's values
    assert build_parser().parse_args(["train", "--compile", "reduce-overhead"]).compile == "reduce-overhead"


def test_compile_mode_reaches_torch_compile(monkeypatch):
    """``--compile reduce-overhead`` (CUDA graphs of the step's graphs on a GPU) is torch.compile's mode; bare
    ``--compile`` its default."""
    import torch

    from spikeforge.train import config as C
    from spikeforge.train import engine

    modes = []
    monkeypatch.setattr(torch, "compile", lambda net, mode=None: modes.append(mode) or net)
    recipe = C.load_recipe("digits")
    for value in (True, "reduce-overhead"):
        cfg = C.resolve({**recipe, "train": {**recipe["train"], "compile": value}})
        engine.build_parts(cfg, engine.setup("cpu"))
    assert modes == [None, "reduce-overhead"]


def test_threads_flag(capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["train", "--threads", "0"]) == 2
        assert "--threads must be >= 1, got 0" in capsys.readouterr().err
        assert main(["train", "--threads", "2", "--epochs", "1", "--batch-size", "512"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_sync_bn_converts_batchnorm_tb_on_cpu_and_refuses_torch_batchnorm():
    """``--sync-bn`` runs on any backend (gloo on CPU): our BN layers get ``sync``; a torch BN is named."""
    import torch

    from spikeforge.layers import BatchNormTB
    from spikeforge.train.distributed import Dist, convert_sync_bn

    model = torch.nn.Sequential(BatchNormTB(3))
    assert convert_sync_bn(model, Dist()) is model and model[0].sync
    with pytest.raises(ValueError, match="torch BatchNorm1d"):
        convert_sync_bn(torch.nn.Sequential(torch.nn.BatchNorm1d(3)), Dist())


def test_models_takes_a_part_of_a_name(capsys):
    """`spikeforge models sew_7` lists the names containing it (a shell pattern still works)."""
    assert main(["models", "sew_7"]) == 0
    assert capsys.readouterr().out.split()[0] == "sew_7b_gesture"
    assert main(["models", "sew_7*"]) == 0
    assert capsys.readouterr().out.split()[0] == "sew_7b_gesture"


def test_recipes_name_prints_its_yaml_and_a_part_lists_matches(capsys):
    from spikeforge.train import config as C

    assert main(["recipes", "digits"]) == 0
    assert capsys.readouterr().out == C.recipe_text("digits")
    assert main(["recipes", "plif-"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [n for n in C.list_recipes() if n.startswith("plif-")] and len(names) == 6


def test_digits_recipe_runs_on_one_thread(capsys):
    """a tiny model on a busy machine: the digits recipe sets train.threads 1; --threads overrides it."""
    import torch

    torch.set_num_threads(2)
    assert main(["train", "--epochs", "1", "--batch-size", "512"]) == 0
    assert torch.get_num_threads() == 1 and ", 1 threads, " in capsys.readouterr().out


def test_output_into_a_closed_pipe_ends_without_a_traceback():
    """``spikeforge models | head -1``: the reader leaves early; no BrokenPipeError traceback, exit 141."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "spikeforge", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=0)
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err
