"""``--device cpu|cuda`` of ``spikeforge bench neuron|methods|models`` (SPEC §10): rows name the device;
``--device cuda`` where torch finds no CUDA device is a clear error (exit 2), not a traceback.
CUDA itself is exercised by ``python -m spikeforge.bench.gpu_check`` on a GPU machine."""
import json
import sys

import pytest
import torch

from spikeforge.bench import device as bench_device
from spikeforge.bench import models as bench_models
from spikeforge.bench import neuron
from spikeforge.cli import main


def test_neuron_rows_name_the_device(capsys):
    rows = neuron.run([2], numel=64, repeats=1, as_json=True, kernels=["torch"], device="cpu")
    assert rows and all(r["device"] == "cpu" and r["device_name"] for r in rows)
    assert all("peak_mem_mb" not in r for r in rows)  # CPU: no allocator peak to report
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows


def test_methods_and_models_rows_name_the_device(capsys):
    assert main(["bench", "methods", "--model", "digits_snn", "--T", "2", "--batch", "2", "--steps", "1",
                 "--methods", "bptt", "--device", "cpu", "--json"]) == 0
    assert main(["bench", "models", "--model", "digits_snn", "--batch", "2", "--steps", "1", "--device", "cpu",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["device"] == "cpu" and row["device_name"] and row["memory"] == "rss" and row["step_ms"] > 0


@pytest.mark.parametrize("bench", [["neuron", "--T", "2", "--numel", "8"],
                                   ["methods", "--model", "digits_snn", "--T", "2", "--methods", "bptt"],
                                   ["models", "--model", "digits_snn"]])
def test_cuda_without_a_device_is_a_clear_error(bench, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", *bench, "--device", "cuda", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing measured, no subprocess started
    assert "bench --device cuda: no CUDA device is available" in captured.err and "--device cpu" in captured.err


def test_device_choices_are_cpu_and_cuda(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "neuron", "--device", "mps"])
    assert "invalid choice: 'mps'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="must be one of cpu, cuda"):
        bench_device.resolve_device("meta")


def test_compare_spikingjelly_without_a_counterpart_says_so(capsys):
    rows = bench_models.run(["digits_snn"], "bptt", 2, 32, 1, True, "cpu", compare_spikingjelly=True)
    assert [r["model"] for r in rows] == ["digits_snn", "spikingjelly"]
    assert "no SpikingJelly counterpart" in rows[1]["error"] and "sew_resnet18" in rows[1]["error"]


@pytest.fixture
def no_stand_in_left():
    """Drop the torchvision stand-in that importing SpikingJelly's zoo may put in ``sys.modules``."""
    yield
    if getattr(sys.modules.get("torchvision"), "spikeforge_stand_in", False):
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]


def test_spikingjelly_row_when_it_does_not_import(monkeypatch, no_stand_in_left):
    monkeypatch.setitem(sys.modules, "spikingjelly", None)  # import spikingjelly -> ImportError
    row = bench_models.measure_spikingjelly_one("sew_resnet18", 2, 1, 16, 1)
    assert row["model"] == "spikingjelly:sew_resnet18" and row["device"] == "cpu"
    assert row["error"].startswith("spikingjelly's model zoo does not import: ")


def test_spikingjelly_sew_resnet18_step_where_it_imports(no_stand_in_left):
    try:
        bench_models._import_spikingjelly_zoo()
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"spikingjelly's model zoo does not import here: {err}")
    row = bench_models.measure_spikingjelly_one("sew_resnet18", 2, 1, 16, 1, num_classes=10)
    assert "error" not in row, row
    assert (row["T"], row["batch"], row["input"], row["device"]) == (2, 1, [3, 16, 16], "cpu") and row["step_ms"] > 0
