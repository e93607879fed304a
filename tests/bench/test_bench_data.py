"""The data benchmark runs and reports what it claims (no timing asserts)."""
import json

from spikeforge.bench import data


def test_json_rows(capsys):
    rows = data.run(n_events=2000, frame_events=500, T=4, repeats=1, as_json=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == rows
    tasks = {(r["impl"], r["task"]) for r in rows}
    for task in ("decode nmnist_bin", "decode aedat3.1", "decode aedat2.0", "frames count T=4", "frames time T=4"):
        assert ("spikeforge", task) in tasks
    for row in rows:
        assert {"device", "dtype", "torch", "seconds", "events"} <= set(row) and row["seconds"] > 0
        assert (row.get("events_per_s") or row.get("frames_per_s")) > 0


def test_writers_roundtrip(tmp_path):
    from spikeforge.data import read_aedat2, read_aedat31, read_nmnist
    import numpy as np

    for name, w, r, W in (("a.bin", data.write_nmnist, read_nmnist, 34),
                          ("b.aedat", data.write_aedat31, read_aedat31, 128),
                          ("c.aedat", data.write_aedat2, read_aedat2, 128)):
        ev = data.synthetic_events(300, W, W, seed=1)
        w(str(tmp_path / name), ev)
        np.testing.assert_array_equal(r(str(tmp_path / name)), ev)


def test_cli_parser():
    import argparse

    p = argparse.ArgumentParser()
    data.add_parser(p.add_subparsers(dest="bench"))
    a = p.parse_args(["data", "--json", "--events", "10"])
    assert a.json and a.events == 10 and callable(a.func)
