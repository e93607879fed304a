"""CLI subcommands analyze / quantize / energy / export on a real (1-epoch) digits checkpoint."""
from __future__ import annotations

import argparse
import json

import nir
import pytest
import torch

from spikeforge.commands import add_tool_parsers


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    from spikeforge.train.config import load_recipe
    from spikeforge.train.engine import train

    cfg = load_recipe("digits")
    cfg["train"]["epochs"] = 1
    cfg["train"]["output"] = str(tmp_path_factory.mktemp("run"))
    train(cfg, log=lambda *_: None)
    return f"{cfg['train']['output']}/last.pt"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="spikeforge")
    add_tool_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_analyze_writes_figures_and_summary(checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "analysis"
    assert run("analyze", "--checkpoint", checkpoint, "--recipe", "digits", "--out", str(out),
               "--samples", "0", "3", "--max-samples", "100") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 100 and 0.0 <= summary["accuracy"] <= 1.0
    assert set(summary["rates"]) == {"sn1"} and 0 < summary["rates"]["sn1"] < 1
    assert summary["mean_rate"] == pytest.approx(summary["rates"]["sn1"])
    expected = {"firing_rates.png", "channel_maps_s0.png", "input_vs_spikes_s0.png", "raster_s0.png",
                "channel_maps_s3.png", "input_vs_spikes_s3.png", "raster_s3.png"}
    assert set(summary["figures"]) == expected
    for name in expected:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sn1" in capsys.readouterr().out


def test_quantize_reports_and_writes(checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "q4.pt"
    assert run("quantize", "--bits", "4", "--checkpoint", checkpoint, "--max-samples", "200", "--out", str(out)) == 0
    assert "4-bit" in capsys.readouterr().out
    state = torch.load(out, weights_only=False)
    assert state["quantized_bits"] == 4
    assert state["model"]["fc1.module.weight"].unique().numel() <= 15


def test_energy_json(checkpoint, capsys) -> None:
    assert run("energy", "--checkpoint", checkpoint, "--max-samples", "50", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    fc1, fc2 = report["layers"]
    assert fc1["kind"] == "MAC" and fc2["kind"] == "SOP"
    assert fc1["ann_macs"] == 64 * 128 and fc2["ann_macs"] == 128 * 10
    assert report["total"]["energy_pj"] == pytest.approx(fc1["macs"] * 4.6 + fc2["sops"] * 0.9)


def test_export_nir(checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "digits.nir"
    assert run("export", "--format", "nir", "--checkpoint", checkpoint, "--out", str(out), "--dt", "0.5") == 0
    graph = nir.read(str(out))
    assert set(graph.nodes) == {"input", "fc1", "sn1", "fc2", "output"}
    assert graph.metadata["dt"] == 0.5


def test_bad_input_names_it(checkpoint, tmp_path) -> None:
    with pytest.raises(ValueError, match="bits must be an integer in 2..16, got 1"):
        run("quantize", "--bits", "1", "--checkpoint", checkpoint)
    with pytest.raises(ValueError, match="does not exist"):
        run("energy", "--checkpoint", str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="holds a 'digits_snn' model, which does not fit the 'plif_mnist'"):
        run("energy", "--checkpoint", checkpoint, "--recipe", "plif-mnist")
    with pytest.raises(SystemExit):
        run("export", "--format", "onnx", "--checkpoint", checkpoint, "--out", "x")
