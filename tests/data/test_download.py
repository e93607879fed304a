"""Downloads against a local HTTP server on 127.0.0.1 serving fake files in the real formats (no internet).

Each downloadable set of :data:`SOURCES` is checked with its real table entry (file names, unpacking,
folders) whose URLs, checksums and sizes are swapped for the loopback server's fake archives; the
same reader (``create_dataset``) then reads the result. The failure tests cover a truncated body, a
wrong checksum (MD5 and SHA-256), a server error on the resuming request, an interrupted download
resumed with ``Range``, a broken archive (no half tree left) and the sets that need a manual step.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from spikeforge.cli import main
from spikeforge.data import create_dataset
from spikeforge.data import download as D
from spikeforge.data.download import SOURCES, DownloadError, ManualDownload, download_dataset, fetch
from spikeforge.train.builders import build_datasets, prepare_data
from spikeforge.train.config import resolve
from tests.fake_data import write_fake_dataset

DOWNLOADABLE = [n for n, s in SOURCES.items() if s.downloadable]
MANUAL = [n for n, s in SOURCES.items() if s.manual is not None]


# ----------------------------------------------------------------------------------------- the server
class _Plan:
    """What the server does, per request: ``files`` path -> bytes; ``modes`` path -> list of modes used in
    turn (the last repeats): ``ok`` (Range honoured), ``truncate`` (Content-Length of the whole, ``cut``
    bytes sent, connection closed), ``error_on_range`` (500 to a Range request), ``ignore_range`` (200)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, list[str]] = {}
        self.cut = 0
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def mode(self, path: str) -> str:
        with self.lock:
            modes = self.modes.get(path, ["ok"])
            return modes.pop(0) if len(modes) > 1 else modes[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        plan: _Plan = self.server.plan  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        plan.requests.append((self.path, rng))
        body = plan.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        mode = plan.mode(self.path)
        start = int(rng[6:].split("-")[0]) if rng and mode != "ignore_range" else 0
        if mode == "error_on_range" and rng:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if start >= len(body) and rng:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Connection", "close")
        self.end_headers()
        if mode == "truncate":
            self.wfile.write(body[start:start + plan.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.plan = _Plan()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _url(httpd, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


# ------------------------------------------------------------------------------- fake archives
def _pack(res: D.Resource, fake_root: Path) -> bytes:
    """The bytes of ``res`` built from a fake data set: a gzip of one IDX file, or a tar.gz / zip whose top
    level is the folder ``res.provides``."""
    if res.unpack == "gunzip":
        (path,) = [p for p in fake_root.rglob(res.provides) if p.is_file()]
        return gzip.compress(path.read_bytes(), mtime=0)
    buf = io.BytesIO()
    top = fake_root / res.provides
    if res.unpack == "tar":
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            tf.add(top, arcname=res.provides)
    else:
        with zipfile.ZipFile(buf, "w") as zf:
            for p in sorted(top.rglob("*")):
                zf.write(p, p.relative_to(fake_root).as_posix())
    return buf.getvalue()


def _served(httpd, name: str, fake_root: Path, algo: str = "md5") -> D.Source:
    """``SOURCES[name]`` with each file served by ``httpd`` from the fake set, checksums and sizes its own."""
    resources = []
    for res in SOURCES[name].resources:
        body = _pack(res, fake_root)
        path = f"/{name}/{res.filename}"
        httpd.plan.files[path] = body
        digest = hashlib.new(algo, body).hexdigest()
        resources.append(dataclasses.replace(res, urls=(_url(httpd, path),), size=len(body),
                                             md5=digest if algo == "md5" else None,
                                             sha256=digest if algo == "sha256" else None))
    return dataclasses.replace(SOURCES[name], resources=tuple(resources))


def _one_file(httpd, n: int = 200_000, **kw) -> tuple[D.Resource, bytes]:
    body = bytes(range(256)) * (n // 256)
    httpd.plan.files["/blob.bin"] = body
    res = D.Resource("blob.bin", (_url(httpd, "/blob.bin"),), hashlib.md5(body).hexdigest(), None, len(body),
                     "none", "", "blob.bin")
    return dataclasses.replace(res, **kw), body


def _fetch(res: D.Resource, root: Path, retries: int = 0) -> Path:
    return fetch(res, root, progress=False, retries=retries, timeout=5)


def _interrupted(httpd, root: Path, modes: list[str], cut: int) -> tuple[D.Resource, bytes]:
    """A first download of ``/blob.bin`` that breaks off after ``cut`` bytes; later requests follow ``modes``."""
    res, body = _one_file(httpd)
    httpd.plan.modes["/blob.bin"] = ["truncate", *modes]
    httpd.plan.cut = cut
    with pytest.raises(DownloadError):
        _fetch(res, root)
    return res, body


# ------------------------------------------------------------------------------------------ success
@pytest.mark.parametrize("name", DOWNLOADABLE)
def test_download_then_the_same_reader_reads_it(name, server, tmp_path):
    fake = write_fake_dataset(name, tmp_path / "fake")
    src = _served(server, name, fake)
    root = tmp_path / "data"
    lines: list[str] = []
    assert download_dataset(src, root, progress=False, retries=0, log=lines.append) == root
    assert len(lines) == len(src.resources)
    got, want = create_dataset(name, root, "test"), create_dataset(name, fake, "test")
    assert len(got) == len(want) > 0
    assert torch.equal(got[0][0], want[0][0]) and int(got[0][1]) == int(want[0][1])
    leftovers = [p.name for p in root.rglob("*") if p.name.endswith((".part", ".gz", ".zip", ".tar.gz"))
                 or p.name.startswith(".")]
    assert leftovers == []  # archives removed once unpacked, no temp folders
    n = len(server.plan.requests)
    download_dataset(src, root, progress=False, retries=0, log=lines.append)  # already in place: no request
    assert len(server.plan.requests) == n and lines[-1].endswith("already in place")


def test_sha256_entries_are_checked(server, tmp_path):
    fake = write_fake_dataset("cifar10", tmp_path / "fake")
    src = _served(server, "cifar10", fake, algo="sha256")
    assert src.resources[0].md5 is None and src.resources[0].sha256 is not None
    download_dataset(src, tmp_path / "data", progress=False, retries=0, log=lambda s: None)
    assert len(create_dataset("cifar10", tmp_path / "data", "test")) == 4


# --------------------------------------------------------------------------------------- failures
def test_truncated_download_raises_and_keeps_the_part(server, tmp_path):
    """Content-Length says 199 936 bytes, the server sends 50 000 and closes: an OSError, no final file."""
    res, body = _one_file(server)
    server.plan.modes["/blob.bin"] = ["truncate"]
    server.plan.cut = 50_000
    with pytest.raises(DownloadError, match=r"sent 50000 of 199936 bytes"):
        _fetch(res, tmp_path)
    assert not (tmp_path / "blob.bin").exists()
    assert (tmp_path / "blob.bin.part").read_bytes() == body[:50_000]


def test_interrupted_download_resumes_with_range(server, tmp_path):
    res, body = _interrupted(server, tmp_path, ["ok"], 70_000)
    path = _fetch(res, tmp_path)
    assert server.plan.requests == [("/blob.bin", None), ("/blob.bin", "bytes=70000-")]
    assert path.read_bytes() == body and not (tmp_path / "blob.bin.part").exists()


def test_a_retry_resumes_within_one_call(server, tmp_path):
    res, body = _one_file(server)
    server.plan.modes["/blob.bin"] = ["truncate", "ok"]
    server.plan.cut = 1_000
    assert _fetch(res, tmp_path, retries=1).read_bytes() == body
    assert [r for _, r in server.plan.requests] == [None, "bytes=1000-"]


def test_server_error_on_the_resuming_request(server, tmp_path):
    """The first response breaks off, the Range request gets a 500: OSError naming it, the .part untouched;
    once the server recovers the download completes from where it was."""
    res, body = _interrupted(server, tmp_path, ["error_on_range", "ok"], 30_000)
    with pytest.raises(DownloadError, match="HTTP 500"):
        _fetch(res, tmp_path)
    assert (tmp_path / "blob.bin.part").read_bytes() == body[:30_000]
    assert _fetch(res, tmp_path).read_bytes() == body
    assert [r for _, r in server.plan.requests] == [None, "bytes=30000-", "bytes=30000-"]


def test_a_server_ignoring_range_restarts_the_file(server, tmp_path):
    res, body = _interrupted(server, tmp_path, ["ignore_range"], 10_000)
    assert _fetch(res, tmp_path).read_bytes() == body


@pytest.mark.parametrize("algo", ["md5", "sha256"])
def test_wrong_checksum_raises_and_deletes_the_part(algo, server, tmp_path):
    res, body = _one_file(server, md5=None)
    res = dataclasses.replace(res, **{algo: hashlib.new(algo, b"other bytes").hexdigest()})
    with pytest.raises(ValueError, match=rf"blob.bin failed its {algo.upper()} check: expected "):
        _fetch(res, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_is_refused(server, tmp_path):
    res, _ = _one_file(server, size=123)
    with pytest.raises(DownloadError, match="announces 199936 bytes, expected 123"):
        _fetch(res, tmp_path)


def test_a_broken_archive_leaves_no_half_tree(server, tmp_path):
    """N-MNIST's Train.zip with one byte of its last member flipped (the checksum matching the broken bytes):
    unpacking fails at that member's CRC after the others were written, and nothing is where the reader looks."""
    fake = write_fake_dataset("nmnist", tmp_path / "fake")
    src = _served(server, "nmnist", fake)
    res = src.resources[0]
    path = f"/nmnist/{res.filename}"
    body = bytearray(server.plan.files[path])
    with zipfile.ZipFile(io.BytesIO(bytes(body))) as zf:
        last = zf.infolist()[-1]
    data_at = last.header_offset + 30 + len(last.filename.encode()) + len(last.extra)
    body[data_at + 2] ^= 0xFF
    server.plan.files[path] = bytes(body)
    res = dataclasses.replace(res, md5=hashlib.md5(body).hexdigest())
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="cannot unpack .*Bad CRC-32"):
        download_dataset(dataclasses.replace(src, resources=(res,)), root, progress=False, retries=0, log=print)
    assert sorted(p.name for p in root.iterdir()) == ["Train.zip"]  # the verified archive kept, no half tree


def test_an_archive_escaping_its_folder_is_refused(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", b"x")
    body = buf.getvalue()
    server.plan.files["/evil.zip"] = body
    res = D.Resource("evil.zip", (_url(server, "/evil.zip"),), hashlib.md5(body).hexdigest(), None, len(body), "zip",
                     "", "Train")
    src = D.Source("mnist", (res,))
    with pytest.raises(ValueError, match="unsafe member path"):
        download_dataset(src, tmp_path / "data", progress=False, retries=0, log=print)
    assert not (tmp_path / "evil.txt").exists()


# ----------------------------------------------------------------------------- manual sets, CLI, recipe
@pytest.mark.parametrize("name", MANUAL)
def test_manual_sets_say_where_and_which_layout(name, tmp_path, capsys):
    with pytest.raises(ManualDownload, match="https://") as info:
        download_dataset(name, tmp_path)
    assert SOURCES[name].layout in str(info.value)
    assert main(["data", "download", name, "--data-dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "cannot be downloaded automatically" in err and "Expected layout under --data-dir:" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_downloads_and_reports_an_unreachable_server(server, tmp_path, monkeypatch, capsys):
    fake = write_fake_dataset("mnist", tmp_path / "fake")
    monkeypatch.setattr(D, "SOURCES", {"mnist": _served(server, "mnist", fake)})
    assert main(["data", "download", "mnist", "--data-dir", str(tmp_path / "d"), "--retries", "0"]) == 0
    assert "mnist is ready in" in capsys.readouterr().out
    assert len(create_dataset("mnist", tmp_path / "d", "train")) == 12
    dead = dataclasses.replace(SOURCES["mnist"], resources=tuple(
        dataclasses.replace(r, urls=("http://127.0.0.1:9/" + r.filename,)) for r in SOURCES["mnist"].resources))
    monkeypatch.setattr(D, "SOURCES", {"mnist": dead})
    assert main(["data", "download", "mnist", "--data-dir", str(tmp_path / "e"), "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert "could not download train-images-idx3-ubyte.gz" in err and "ConnectionRefusedError" in err
    assert "place the files yourself under" in err and "DIR/MNIST/raw" in err


def test_recipe_download_true_fetches_before_building(server, tmp_path, monkeypatch):
    fake = write_fake_dataset("fmnist", tmp_path / "fake")
    monkeypatch.setattr(D, "SOURCES", {"fmnist": _served(server, "fmnist", fake)})
    cfg = resolve({"data": {"name": "fmnist", "root": str(tmp_path / "d"), "download": True}, "model": {"name": "x"}})
    prepare_data(cfg)
    sets = build_datasets(cfg)
    assert len(sets["train"]) == 12 and len(sets["test"]) == 5
    prepare_data(cfg, main=False)  # other ranks never download
    cfg["data"]["root"] = None
    with pytest.raises(ValueError, match="needs data.root"):
        prepare_data(cfg)
    cfg["data"]["download"] = "yes"
    with pytest.raises(ValueError, match="data.download must be true or false"):
        prepare_data(cfg)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="choose one of: cifar10, cifar100"):
        download_dataset("mnist2", "unused")


def test_one_table_of_urls_and_layouts_for_messages_and_downloads():
    """The download table takes page and layout from :mod:`spikeforge.data.sources`; its downloadable set
    is the one the readers' messages advertise."""
    from spikeforge.data import sources

    for name, src in SOURCES.items():
        assert (src.homepage, src.layout) == tuple(sources.where_is(name))
    assert {n for n, s in SOURCES.items() if s.downloadable} == sources.DOWNLOADABLE
