"""``python -m spikeforge.bench.gpu_check``: its CPU dry run works end to end from the source tree with
matplotlib, nir, h5py, tonic and tensorboard unimportable (the GPU machine has none of them), and a part
that fails or hangs is recorded while the next ones still run. No timing is asserted."""
import json
import os
import subprocess
import sys
from pathlib import Path

from spikeforge.bench.gpu_check import ROOT, Part, run_parts, write_summary

PARTS = ["environment", "kernel_tests", "bench_neuron", "bench_models", "ddp", "ddp_sync_bn_ssf", "amp_fp16", "amp_bf16",
         "bench_methods", "bench_methods_sew", "bench_methods_graphs"]

BLOCK = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"matplotlib", "nir", "h5py", "tonic", "tensorboard"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the gpu_check test)", name=name)
sys.meta_path.insert(0, _Block())
"""


def test_dry_run_from_the_source_tree(tmp_path):
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCK)  # imported by every Python process the check starts
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(block)]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "spikeforge.bench.gpu_check", "--out", str(out), "--dry-run"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    summary = json.loads((out / "summary.json").read_text())
    status = {p["part"]: p["status"] for p in summary["parts"]}
    assert list(status) == PARTS
    assert done.returncode == 0, (status, done.stdout[-3000:])
    assert status.pop("amp_fp16") == "skipped" and status.pop("bench_methods_graphs") == "skipped"
    assert set(status.values()) == {"passed"}
    assert "--device cpu --dry-run" in summary["header"]
    env_info = json.loads((out / "environment.json").read_text())
    assert env_info["gpus"] == "no CUDA device" and env_info["torch"]
    for bench in ("bench_neuron", "bench_models", "bench_methods", "bench_methods_sew"):
        rows = [json.loads(line) for line in (out / f"{bench}.jsonl").read_text().splitlines()]
        assert rows and all(r["device"] == "cpu" for r in rows), bench
    assert (out / "ddp_run" / "last.pt").exists() and (out / "amp_bf16_run" / "last.pt").exists()
    assert (out / "ddp_sync_bn_ssf_run" / "last.pt").exists()
    assert "test accuracy" in (out / "ddp.log").read_text()
    assert "skipped" in (out / "kernel_tests.log").read_text()  # the CUDA kernel tests skip without CUDA
    md = (out / "summary.md").read_text()
    assert "| ddp | passed |" in md and "### bench_neuron" in md
    assert "matplotlib" not in done.stderr


def test_failures_are_recorded_and_the_next_parts_run(tmp_path):
    py = sys.executable
    parts = [Part("boom", [py, "-c", "import sys; print('some output'); sys.exit('it broke')"], 60),
             Part("hang", [py, "-c", "import time; print('started', flush=True); time.sleep(60)"], 2),
             Part("missing", [str(tmp_path / "no-such-program")], 60),
             Part("fine", [py, "-c", "print('ok')"], 60),
             Part("skip", None, 0, skip_reason="needs CUDA")]
    results = run_parts(parts, tmp_path)
    by = {r["part"]: r for r in results}
    assert [r["part"] for r in results] == ["boom", "hang", "missing", "fine", "skip"]
    assert (by["boom"]["status"], by["boom"]["returncode"], by["boom"]["error"]) == ("failed", 1, "it broke")
    assert (tmp_path / "boom.log").read_text() == "some output\n"
    assert by["hang"]["status"] == "timeout" and "started" in (tmp_path / "hang.log").read_text()
    assert by["missing"]["status"] == "failed" and "No such file" in by["missing"]["error"]
    assert by["fine"]["status"] == "passed" and (tmp_path / "fine.log").read_text() == "ok\n"
    assert by["skip"] == {"part": "skip", "command": None, "files": [], "status": "skipped", "reason": "needs CUDA"}
    md = write_summary(results, tmp_path, "test")
    assert "| boom | failed |" in md and "| hang | timeout |" in md
    assert json.loads(Path(tmp_path / "summary.json").read_text())["parts"] == results


def test_out_of_budget_parts_are_not_run(tmp_path):
    results = run_parts([Part("late", [sys.executable, "-c", "print(1)"], 60)], tmp_path, budget_s=0)
    assert results[0]["status"] == "not run" and "time budget" in results[0]["reason"]
