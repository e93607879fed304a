"""One command that checks spikeforge on a GPU machine and keeps every output.

    PYTHONPATH=. python3 -m spikeforge.bench.gpu_check --out gpu_check_out        # on the GPU, < 10 min
    PYTHONPATH=. python3 -m spikeforge.bench.gpu_check --out /tmp/dry --dry-run   # the plumbing, on CPU

Runs from the source tree (no install, no console script, no network); each part is a subprocess
with its own time limit, its stdout and stderr saved under ``--out``; a part that fails, times out or
cannot start is recorded and the next one runs. Parts, in order:

1. ``environment``: Python, torch, CUDA, GPUs, Triton, SpikingJelly versions (``environment.json``);
2. ``kernel_tests``: ``pytest -q tests/neuron -m "not slow"``: with CUDA this includes
   ``tests/neuron/kernels/test_triton_cuda.py``, the Triton kernel compiled for the GPU against the CPU oracle
   (80 cases + fire-ratio cases), besides the interpreter and CPU tests;
3. ``bench_neuron``: ``bench neuron --device cuda`` at numel 2^24, T = 8 and 32, float32 and bfloat16
   (SpikingJelly's row where it imports; a ``torch copy_`` bandwidth row; our rows' kernel GB/s and share of it);
4. ``bench_models``: ``bench models --device cuda --compare-spikingjelly`` for SEW-ResNet-18, 224x224,
   T = 4, batch 32 (the model's T);
5. ``ddp``: ``torchrun --standalone --nproc-per-node 2 -m spikeforge train --recipe digits`` for one
   epoch: NCCL where the machine has two GPUs, else gloo on CUDA tensors (both ranks share the GPU);
   ``ddp_sync_bn_ssf``: the same under ssf with a BN layer and ``--sync-bn`` (the statistics and the flow
   backward all-reduced over the processes);
6. ``amp_fp16``, ``amp_bf16``: ``train --recipe digits --amp fp16|bf16 --device cuda``, one epoch;
7. ``bench_methods``: ``bench methods --device cuda`` on resnet19, batch 64, 32x32 (bptt, ssf, dsr; T = 2, 6,
   16: the one-step methods' targets), and ``bench_methods_sew``: SEW-ResNet-18, 224x224, T = 4, batch 32
   (bptt, ssf; against SpikingJelly's BPTT step of ``bench_models``);
8. ``bench_methods_graphs``: resnet19, batch 64, T = 16, bptt and ssf under ``--compile reduce-overhead``
   (the whole step without graph breaks, replayed as CUDA graphs).

``--dry-run`` (implied by ``--device cpu``) runs the same parts on the CPU (``--device cuda --dry-run``:
on the GPU) at toy sizes (the neuron
tests reduced to the CUDA test file, which then skips; fp16 skipped: it needs CUDA), to show that the
script itself works. Results: ``summary.json`` (one object per part: status, return code, seconds,
command, files, a one-line result) and ``summary.md`` (the same as a table, then the benchmark rows);
the summary is printed at the end. Exit status 0 when every part passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Part", "main", "plan", "run_parts", "write_summary"]

ROOT = Path(__file__).resolve().parents[2]  # the source tree: spikeforge/bench/gpu_check.py -> root


@dataclass
class Part:
    """One step of the check: ``argv`` run from the source tree, stdout to ``stdout_name`` under ``--out``."""

    name: str
    argv: list[str] | None  # None: skipped, for ``skip_reason``
    timeout_s: float
    stdout_name: str = ""
    skip_reason: str = ""
    kind: str = "command"  # command | pytest | bench | train
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stdout_name = self.stdout_name or f"{self.name}.log"


def _py() -> list[str]:
    return [sys.executable]


def _spikeforge(*args: str) -> list[str]:
    return [*_py(), "-m", "spikeforge", *args]


def plan(out: Path, device: str, dry_run: bool, cuda_devices: int) -> list[Part]:
    """The parts for ``device`` (``cuda`` or ``cpu``); toy sizes when ``dry_run``."""
    d = device
    parts = [Part("environment", [*_py(), "-m", "spikeforge.bench.gpu_check", "--environment"], 120,
                  "environment.json", kind="environment")]
    tests = ["tests/neuron/kernels/test_triton_cuda.py"] if dry_run else ["tests/neuron", "-m", "not slow"]
    parts.append(Part("kernel_tests", [*_py(), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                                       f"--junitxml={out / 'kernel_tests.xml'}", *tests], 300, kind="pytest"))
    if dry_run:
        neuron = ["--T", "2", "--numel", "256", "--repeats", "1", "--kernels", "torch", "--dtype", "float32", "bfloat16"]
        models = ["--model", "digits_snn", "--batch", "2", "--steps", "1"]
        methods = ["--model", "digits_snn", "--T", "2", "--batch", "2", "--steps", "1", "--methods", "bptt"]
        sew_methods = ["--model", "digits_snn", "--T", "2", "--batch", "2", "--steps", "1", "--methods", "ssf"]
    else:
        neuron = ["--T", "8", "32", "--numel", str(1 << 24), "--repeats", "10", "--dtype", "float32", "bfloat16"]
        models = ["--model", "sew_resnet18", "--size", "224", "--batch", "32", "--steps", "5"]
        methods = ["--model", "resnet19", "--T", "2", "6", "16", "--batch", "64", "--steps", "5",
                   "--methods", "bptt", "ssf", "dsr"]
        sew_methods = ["--model", "sew_resnet18", "--size", "224", "--T", "4", "--batch", "32", "--steps", "5",
                       "--methods", "bptt", "ssf"]
        graphs = ["--model", "resnet19", "--T", "16", "--batch", "64", "--steps", "5", "--methods", "bptt", "ssf",
                  "--compile", "reduce-overhead"]
    parts.append(Part("bench_neuron", _spikeforge("bench", "neuron", "--device", d, "--json", *neuron), 200,
                      "bench_neuron.jsonl", kind="bench"))
    parts.append(Part("bench_models", _spikeforge("bench", "models", "--device", d, "--json", "--compare-spikingjelly",
                                                  *models), 150, "bench_models.jsonl", kind="bench"))
    backend = "nccl" if d == "cuda" and cuda_devices >= 2 else "gloo"
    train = ["--recipe", "digits", "--device", d, "--epochs", "1", "--batch-size", "128", "--threads", "1"]
    for name, extra in (("ddp", []), ("ddp_sync_bn_ssf", ["--method", "ssf", "--sync-bn", "--set", "model.batchnorm=true"])):
        parts.append(Part(name, [*_py(), "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                                 "-m", "spikeforge", "train", *train, *extra, "--output", str(out / f"{name}_run"),
                                 "--set", f"train.dist_backend={backend}"], 120, kind="train",
                          env={"OMP_NUM_THREADS": "1"}))
    for amp in ("fp16", "bf16"):
        if amp == "fp16" and d != "cuda":
            parts.append(Part(f"amp_{amp}", None, 0, skip_reason="fp16 autocast (with a GradScaler) needs CUDA"))
            continue
        parts.append(Part(f"amp_{amp}", _spikeforge("train", *train, "--amp", amp, "--output", str(out / f"amp_{amp}_run")),
                          90, kind="train"))
    parts.append(Part("bench_methods", _spikeforge("bench", "methods", "--device", d, "--json", *methods), 240,
                      "bench_methods.jsonl", kind="bench"))
    parts.append(Part("bench_methods_sew", _spikeforge("bench", "methods", "--device", d, "--json", *sew_methods), 120,
                      "bench_methods_sew.jsonl", kind="bench"))
    if dry_run or d != "cuda":
        parts.append(Part("bench_methods_graphs", None, 0, skip_reason="CUDA graphs (--compile reduce-overhead) need "
                                                                        "CUDA and full sizes"))
    else:
        parts.append(Part("bench_methods_graphs", _spikeforge("bench", "methods", "--device", d, "--json", *graphs),
                          240, "bench_methods_graphs.jsonl", kind="bench"))
    return parts


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _result_line(part: Part, stdout: str, stderr: str) -> str:
    """One line saying what the part found: pytest's counts, bench rows, the accuracy of a run."""
    if part.kind == "pytest":
        lines = [line for line in (stdout + stderr).splitlines() if " in " in line and
                 any(w in line for w in ("passed", "failed", "skipped", "error", "no tests ran"))]
        return lines[-1].strip("= ") if lines else ""
    if part.kind == "bench":
        rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        errors = [r for r in rows if "error" in r]
        return f"{len(rows)} rows" + (f", {len(errors)} with an error" if errors else "")
    if part.kind == "train":
        lines = [line for line in stdout.splitlines() if line.startswith("test accuracy")]
        return lines[-1] if lines else ""
    if part.kind == "environment":
        try:
            env = json.loads(stdout)
            return f"torch {env['torch']}, CUDA {env['cuda']}, {env['gpus']}"
        except (ValueError, KeyError):
            return ""
    return ""


def run_parts(parts: list[Part], out: Path, budget_s: float = 570.0) -> list[dict[str, Any]]:
    """Run ``parts`` in order, each within its own limit and what is left of ``budget_s``; never stop early."""
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + budget_s
    results = []
    for part in parts:
        row: dict[str, Any] = {"part": part.name, "command": part.argv and " ".join(part.argv), "files": []}
        left = deadline - time.monotonic()
        if part.argv is None or left < 5:
            row.update(status="skipped" if part.argv is None else "not run",
                       reason=part.skip_reason or f"out of the time budget ({budget_s:.0f} s)")
            results.append(row)
            print(f"[gpu_check] {part.name}: skipped ({row['reason']})", flush=True)
            continue
        stdout_path, stderr_path = out / part.stdout_name, out / f"{part.name}.stderr.log"
        row["files"] = [stdout_path.name, stderr_path.name]
        print(f"[gpu_check] {part.name}: {row['command']}", flush=True)
        start = time.monotonic()
        try:
            done = subprocess.run(part.argv, cwd=ROOT, env=_env(part.env), capture_output=True, text=True,
                                  timeout=min(part.timeout_s, left), check=False)
            stdout, stderr, rc = done.stdout, done.stderr, done.returncode
            status = "passed" if rc == 0 else "failed"
        except subprocess.TimeoutExpired as err:
            stdout = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
            stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
            rc, status = None, "timeout"
            stderr += f"\n[gpu_check] killed after {min(part.timeout_s, left):.0f} s\n"
        except OSError as err:  # the command could not start
            stdout, stderr, rc, status = "", f"{type(err).__name__}: {err}\n", None, "failed"
        stdout_path.write_text(stdout)
        stderr_path.write_text(stderr)
        row.update(status=status, returncode=rc, seconds=round(time.monotonic() - start, 1))
        try:
            row["result"] = _result_line(part, stdout, stderr)
        except Exception as err:  # noqa: BLE001 - a summary line must not end the check
            row["result"] = f"(result not readable: {err})"
        if status != "passed":
            lines = [line.strip() for line in stderr.splitlines() if line.strip().strip("=")]
            errors = [line for line in lines if "error" in line.lower()]
            row["error"] = ((errors or lines or ["(no stderr)"])[-1])[:300]
        results.append(row)
        print(f"[gpu_check] {part.name}: {status} in {row['seconds']} s  {row.get('result', '')}", flush=True)
    return results


def _bench_tables(out: Path) -> list[str]:
    lines = []
    for name in ("bench_neuron", "bench_models", "bench_methods", "bench_methods_sew", "bench_methods_graphs"):
        path = out / f"{name}.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        if not rows:
            continue
        lines += ["", f"### {name}", ""]
        for r in rows:
            if "error" in r:
                lines.append(f"- {r.get('impl') or r.get('model')} T={r.get('T')}: not run: {r['error']}")
            elif "copy_ms" in r:
                lines.append(f"- {r['impl']} T={r['T']} numel={r['numel']}: {r['copy_ms']:.3f} ms, {r['gb_per_s']:.0f} GB/s")
            elif "fwd_ms" in r:
                peak = f", peak {r['peak_mem_mb']:.0f} MiB" if "peak_mem_mb" in r else ""
                rate = ""
                if "kernel_gb_per_s" in r:
                    rate = f", kernels {r['kernel_bytes'] / 1e9:.2f} GB at {r['kernel_gb_per_s']:.0f} GB/s"
                    rate += f" ({100 * r['copy_fraction']:.0f}% of copy)" if "copy_fraction" in r else ""
                lines.append(f"- {r['impl']} T={r['T']} {r.get('dtype', 'float32')} numel={r['numel']}: "
                             f"fwd {r['fwd_ms']:.3f} ms, fwd+bwd {r['fwdbwd_ms']:.3f} ms, "
                             f"saved {r['saved_bytes'] / 2**20:.0f} MiB{peak}{rate}")
            else:
                lines.append(f"- {r['model']} {r['method']} T={r['T']} batch={r['batch']} input={r.get('input')}: "
                             f"step {r['step_ms']:.1f} ms, peak {r['peak_mem_mb']:.0f} MiB ({r.get('memory')})"
                             + (f" [{r['neuron_implementation']}]" if "neuron_implementation" in r else ""))
    return lines


def write_summary(results: list[dict[str, Any]], out: Path, header: str) -> str:
    """``summary.json`` and ``summary.md`` under ``out``; returns the markdown."""
    (out / "summary.json").write_text(json.dumps({"header": header, "parts": results}, indent=1))
    md = [f"# spikeforge GPU check: {header}", "", "| part | status | seconds | result |", "|---|---|---|---|"]
    for r in results:
        detail = r.get("result") or r.get("reason") or ""
        if r.get("error"):
            detail = (detail + "; " if detail else "") + f"error: {r['error']}"
        md.append(f"| {r['part']} | {r['status']} | {r.get('seconds', '')} | {detail.replace('|', '/')} |")
    md += _bench_tables(out)
    text = "\n".join(md) + "\n"
    (out / "summary.md").write_text(text)
    return text


def environment() -> dict[str, Any]:
    """Versions and devices of this machine (the ``environment`` part, printed as JSON)."""
    import importlib.metadata as md

    import torch

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    smi = shutil.which("nvidia-smi")
    commit = None
    if shutil.which("git") and (ROOT / ".git").exists():
        done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        commit = done.stdout.strip() or None
    return {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "gpus": gpus or "no CUDA device", "triton": version("triton"), "spikingjelly": version("spikingjelly"),
            "numpy": version("numpy"), "cpu_count": os.cpu_count(), "source_commit": commit,
            "nvidia_smi": subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout.strip()
            if smi else None}


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spikeforge.bench.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="folder for every part's output and the summary")
    p.add_argument("--device", choices=("cuda", "cpu"), help="cuda (default) or cpu (implies --dry-run)")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="toy sizes, on the CPU unless --device cuda is given (checks the script itself)")
    p.add_argument("--only", nargs="+", metavar="PART", help="run these parts only")
    p.add_argument("--budget-s", dest="budget_s", type=float, default=570.0, help="all parts together (default 570 s)")
    p.add_argument("--environment", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.environment:
        print(json.dumps(environment(), indent=1))
        return 0
    if args.out is None:
        p.error("--out is required")
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    dry = args.dry_run or args.device == "cpu"
    n_gpus = _cuda_devices()
    if args.device == "cuda" and n_gpus == 0:
        print("gpu_check: --device cuda but torch finds no CUDA device; the CUDA parts will fail "
              "(use --dry-run for the CPU plumbing check)", file=sys.stderr)
    parts = plan(args.out.resolve(), args.device, dry, n_gpus)
    if args.only:
        unknown = sorted(set(args.only) - {q.name for q in parts})
        if unknown:
            p.error(f"unknown part(s) {', '.join(unknown)}; parts: {', '.join(q.name for q in parts)}")
        parts = [q for q in parts if q.name in args.only]
    results = run_parts(parts, args.out.resolve(), args.budget_s)
    header = f"--device {args.device}{' --dry-run' if dry else ''}, {n_gpus} CUDA device(s), {time.strftime('%Y-%m-%d %H:%M:%S')}"
    print(write_summary(results, args.out.resolve(), header))
    return 0 if all(r["status"] in ("passed", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
