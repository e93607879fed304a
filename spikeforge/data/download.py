"""Download the public data sets from their official sources (SPEC §10 ``spikeforge data download``).

``download_dataset(name, root)`` fetches every file of set ``name`` into ``root`` so that the usual
reader (``create_dataset(name, root)``) reads it afterwards; ``spikeforge data download NAME
[--data-dir DIR]`` and ``download: true`` in a recipe's ``data`` section call it. A set that needs a
licence or a manual step raises :class:`ManualDownload`, whose message gives the URL and the layout
the reader expects.

Each file is:

- **resumable**: bytes go to ``<file>.part``; a later call asks for the rest with an HTTP ``Range``
  request (a server that ignores it answers 200 and the file starts again);
- **checked**: the byte count (the published size, else the server's ``Content-Length``) and the
  checksums the table holds (MD5 and/or SHA-256), before the ``.part`` is renamed to its final name;
  a mismatch deletes the ``.part`` and raises ``ValueError`` naming file, expected and received value;
- **atomic**: archives are unpacked into a temporary folder inside ``root`` and the folder the reader
  wants is renamed into place last (gzip members are written to a ``.part`` and renamed), so a half
  file or half-unpacked tree is never where a reader looks. The archive is deleted once unpacked.

Checksums: the official sources publish MD5 values (the ones torchvision, tonic and SpikingJelly
record); no official SHA-256 values exist for these files, so every entry below carries MD5 and the
byte size where it is known. :class:`Resource` takes ``sha256`` too and then checks both. None of
these values was verified against the real servers in this repository's tests (they run offline on
the loopback with fake files); they are copied from the public loaders named beside each entry.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from tqdm import tqdm

from spikeforge.data.sources import where_is as _where

__all__ = ["SOURCES", "DownloadError", "ManualDownload", "Resource", "Source", "download_dataset", "fetch",
           "file_digest", "get_source"]

_CHUNK = 1 << 16
_USER_AGENT = "spikeforge-data-download/0.1 (+urllib)"


class DownloadError(OSError):
    """A file could not be fetched (network, HTTP status, a connection closed early); the ``.part`` is kept."""


class ManualDownload(ValueError):
    """The set has no direct public link: the message says where to get it and the layout to place."""


@dataclass(frozen=True)
class Resource:
    """One file of a set.

    Args:
        filename: the name it is saved under in ``root`` (the archive, or the ``.gz`` file).
        urls: the official URL first, then mirrors of the same bytes (tried in order).
        md5: published MD5 hex digest (or None).
        sha256: published SHA-256 hex digest (or None).
        size: published size in bytes (None: the server's ``Content-Length`` is checked instead).
        unpack: ``"gunzip"`` (one ``.gz`` member, written as ``filename`` minus ``.gz``), ``"tar"``,
            ``"zip"`` or ``"none"``.
        dest: folder under ``root`` the unpacked result goes to (``"MNIST/raw"``; ``""`` = ``root``).
        provides: the entry under ``root/dest`` that exists once this file is in place (its check for
            "already downloaded"); for archives, the top-level folder the archive must yield.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None
    sha256: str | None
    size: int | None
    unpack: str
    dest: str
    provides: str

    def __post_init__(self) -> None:
        if self.unpack not in ("gunzip", "tar", "zip", "none"):
            raise ValueError(f"Resource {self.filename}: unpack must be gunzip, tar, zip or none, got {self.unpack!r}")
        if not self.urls:
            raise ValueError(f"Resource {self.filename}: needs at least one URL")


@dataclass(frozen=True)
class Source:
    """Where set ``name`` comes from: ``resources`` to fetch (empty = manual only), the homepage, and
    the layout under ``--data-dir`` its reader expects (both from :mod:`spikeforge.data.sources`)."""

    name: str
    resources: tuple[Resource, ...] = ()
    manual: str | None = None  # why it cannot be fetched, and the steps to take

    @property
    def homepage(self) -> str:
        """The official page (:data:`spikeforge.data.sources.SOURCES`, the one place for it)."""
        return _where(self.name).url

    @property
    def layout(self) -> str:
        """What ``--data-dir`` must hold for the reader (:data:`spikeforge.data.sources.SOURCES`)."""
        return _where(self.name).layout

    @property
    def downloadable(self) -> bool:
        return bool(self.resources)


def _idx(base: str, mirrors: tuple[str, ...], folder: str, files: tuple[tuple[str, str, int], ...]) -> tuple[Resource, ...]:
    return tuple(Resource(f, tuple(m + f for m in (base, *mirrors)), md5, None, size, "gunzip", folder, f[:-3])
                 for f, md5, size in files)


_FIGSHARE = "https://ndownloader.figshare.com/files/"
_NMNIST = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"

_TABLE = (
    # MD5 and sizes: torchvision.datasets.MNIST.resources (yann.lecun.com, then PyTorch's S3 mirror of
    # the same files); sizes as the servers report them.
    Source("mnist",
           _idx("http://yann.lecun.com/exdb/mnist/", ("https://ossci-datasets.s3.amazonaws.com/mnist/",), "MNIST/raw", (
               ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
               ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881),
               ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1648877),
               ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4542)))),
    # MD5: torchvision.datasets.FashionMNIST.resources (Zalando's S3 bucket, the project's README links).
    Source("fmnist",
           _idx("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (), "FashionMNIST/raw", (
               ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
               ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515),
               ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4422102),
               ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5148)))),
    # MD5: the CIFAR page (https://www.cs.toronto.edu/~kriz/cifar.html) and torchvision's CIFAR10/100.
    Source("cifar10",
           (Resource("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                     "c58f30108f718f92721af3b95e74349a", None, 170498071, "tar", "", "cifar-10-batches-py"),)),
    Source("cifar100",
           (Resource("cifar-100-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                     "eb9058c3a382ffc7106e4002c42a8d85", None, 169001437, "tar", "", "cifar-100-python"),)),
    # MD5 and size: the value the CS231n archive is checked against by common loaders (no page publishes one).
    Source("tiny_imagenet",
           (Resource("tiny-imagenet-200.zip", ("http://cs231n.stanford.edu/tiny-imagenet-200.zip",),
                     "90528d7ca1a48142e341f4ef8d21d0de", None, 248100043, "zip", "", "tiny-imagenet-200"),)),
    # N-MNIST (Orchard et al. 2015) on Mendeley Data, DOI 10.17632/468j46mzdv.1; MD5: tonic.datasets.NMNIST.
    Source("nmnist",
           (Resource("Train.zip", (_NMNIST + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded",),
                     "20959b8e626244a1b502305a9e6e2031", None, None, "zip", "", "Train"),
            Resource("Test.zip", (_NMNIST + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded",),
                     "69ca8762b2fe404d9b9bad1103e97832", None, None, "zip", "", "Test"))),
    # CIFAR10-DVS (Li et al. 2017), figshare "CIFAR10-DVS New" (article 4724671): one zip per class;
    # MD5: SpikingJelly's CIFAR10DVS.resource_url_md5.
    Source("cifar10_dvs",
           tuple(Resource(f"{c}.zip", (_FIGSHARE + fid,), md5, None, None, "zip", "", c) for c, fid, md5 in (
               ("airplane", "7712788", "0afd5c4bf9ae06af762a77b180354fdd"),
               ("automobile", "7712791", "8438dfeba3bc970c94962d995b1b9bdd"),
               ("bird", "7712794", "a9c207c91c55b9dc2002dc21c684d785"),
               ("cat", "7712812", "52c63c677c2b15fa5146a8daf4d56687"),
               ("deer", "7712815", "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
               ("dog", "7712818", "f379ebdf6703d16e0a690782e62639c3"),
               ("frog", "7712842", "cad6ed91214b1c7388a5f6ee56d08803"),
               ("horse", "7712851", "e7cbbf77bec584ffbf913f00e682782a"),
               ("ship", "7712836", "41c7bd7d6b251be82557c6cce9a7d5c9"),
               ("truck", "7712839", "89f3922fd147d9aeff89e76a2b0b70a7")))),
    Source("dvs128_gesture",
           # MD5 of DvsGesture.tar.gz: SpikingJelly's DVS128Gesture.resource_url_md5
           manual="IBM serves DvsGesture.tar.gz through a Box folder with no direct file link. Download it "
                  "from https://ibm.ent.box.com/s/3hiq58ww1pbbjrinh367ykfdf60xsfm8/folder/50167556794 "
                  "(MD5 8a5c71fb11e24e5ca5b11866ca6c00a1) and unpack it into the data folder: "
                  "tar -xzf DvsGesture.tar.gz -C DIR"),
    Source("imagenet",
           manual="ImageNet (ILSVRC-2012) needs an account and acceptance of its terms of access. Download "
                  "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org/download.php, "
                  "unpack the per-class train tars into train/<wnid>/ and sort the val images into "
                  "val/<wnid>/ (e.g. with the valprep.sh script of the PyTorch ImageNet example)."),
    Source("digits"),
)

#: data set name -> :class:`Source` (read-only; the one table of download sources)
SOURCES: Mapping[str, Source] = MappingProxyType({s.name: s for s in _TABLE})


def get_source(name: str) -> Source:
    """The :class:`Source` of ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"data set {name!r} has no download source; choose one of: {', '.join(sorted(SOURCES))}") from None


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest (``"md5"`` or ``"sha256"``) of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, res: Resource, name: str) -> None:
    """Raise ``ValueError`` (and delete ``path``) when its size or a checksum differs from ``res``."""
    got = path.stat().st_size
    if res.size is not None and got != res.size:
        path.unlink()
        raise ValueError(f"{name}: {res.filename} has {got} bytes, expected {res.size}; the partial file was "
                         "deleted, run the download again")
    for algo, want in (("md5", res.md5), ("sha256", res.sha256)):
        if want is not None:
            digest = file_digest(path, algo)
            if digest != want.lower():
                path.unlink()
                raise ValueError(f"{name}: {res.filename} failed its {algo.upper()} check: expected {want}, got "
                                 f"{digest} (a corrupt or changed file; it was deleted, run the download again)")


def _content_range_start(value: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes START-END/TOTAL`` (None when absent or malformed)."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def _fetch_once(url: str, part: Path, expected: int | None, progress: bool, timeout: float) -> int:
    """Append the rest of ``url`` to ``part`` (a Range request when it has bytes); returns the total size."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and expected is not None and have >= expected:
            return have  # the .part is already whole; the checks decide
        raise DownloadError(f"HTTP {e.code} {e.reason} from {url}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        if have and resp.status == 206 and _content_range_start(resp.headers.get("Content-Range")) == have:
            mode = "ab"
        else:  # 200: the server sent the whole file (Range ignored), start again
            have, mode = 0, "wb"
        total = have + int(length) if length is not None else expected
        if expected is not None and total is not None and total != expected:
            raise DownloadError(f"{url} announces {total} bytes, expected {expected}")
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                                         desc=part.name[:-5], disable=not progress, leave=False) as bar:
            got = have
            try:
                while True:
                    block = resp.read(_CHUNK)
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as e:
                f.flush()
                raise DownloadError(f"connection to {url} broke after {got} of {total or '?'} bytes "
                                    f"({type(e).__name__}); run again to resume from {part}") from None
    if total is not None and got != total:
        raise DownloadError(f"{url} sent {got} of {total} bytes (connection closed early); run again to resume "
                            f"from {part}")
    return got


def fetch(res: Resource, root: str | os.PathLike, name: str = "data", progress: bool = True, retries: int = 2,
          timeout: float = 60.0) -> Path:
    """Download ``res`` into ``root/res.filename`` (resumable, checked) and return that path.

    A verified file already there is kept. Each attempt tries the URLs in order and resumes the
    ``.part``; ``retries`` more attempts follow a failed one (1 s, 2 s, ... apart).

    Raises:
        DownloadError: (an ``OSError``) no URL delivered the file; the ``.part`` stays for a later resume.
        ValueError: the bytes arrived but their size or checksum is wrong (the ``.part`` is deleted).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final, part = root / res.filename, root / (res.filename + ".part")
    if final.exists():
        try:
            _verify(final, res, name)
            return final
        except ValueError:
            pass  # deleted by _verify: fetch it again
    errors: list[str] = []
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(attempt)
        errors = []  # the last attempt's, one per URL
        for url in res.urls:
            try:
                _fetch_once(url, part, res.size, progress, timeout)
            except DownloadError as e:
                errors.append(str(e))
                continue
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                errors.append(f"{url}: {type(reason).__name__}: {reason}")
                continue
            _verify(part, res, name)
            os.replace(part, final)
            return final
    raise DownloadError(f"{name}: could not download {res.filename} ({retries + 1} attempts); last: " + "; ".join(errors))


def _safe_members(names: list[str], archive: Path) -> None:
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"{archive}: unsafe member path {n!r} (absolute or leaving the folder)")


def _unpack(archive: Path, res: Resource, target: Path, name: str) -> None:
    """Unpack ``archive`` so that ``target`` (``root/dest/provides``) appears in one final rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if res.unpack == "gunzip":
        tmp = target.with_name(target.name + ".part")
        try:
            with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        except (OSError, EOFError) as e:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"{name}: {archive} is not a valid gzip file ({type(e).__name__}: {e})") from None
        os.replace(tmp, target)
        return
    if res.unpack == "none":
        os.replace(archive, target)
        return
    with tempfile.TemporaryDirectory(prefix=f".{res.filename}.", dir=target.parent) as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            if res.unpack == "tar":
                with tarfile.open(archive) as tf:
                    _safe_members(tf.getnames(), archive)
                    tf.extractall(tmp, filter="data")
            else:
                with zipfile.ZipFile(archive) as zf:
                    _safe_members(zf.namelist(), archive)
                    zf.extractall(tmp)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{name}: cannot unpack {archive} ({type(e).__name__}: {e})") from None
        found = tmp / res.provides
        if not found.exists():  # some archives wrap everything in one more folder
            inner = [p / res.provides for p in tmp.iterdir() if p.is_dir() and (p / res.provides).exists()]
            if len(inner) != 1:
                top = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
                raise ValueError(f"{name}: {archive} does not hold the folder {res.provides!r} (its top level: {top})")
            found = inner[0]
        os.replace(found, target)


def download_dataset(name: str | Source, root: str | os.PathLike, progress: bool = True, retries: int = 2,
                     timeout: float = 60.0, log=print) -> Path:
    """Fetch, check and unpack every file of set ``name`` into ``root``; returns ``root``.

    Files whose result is already in place are skipped, so running it again after an interruption
    finishes the rest (and resumes a ``.part``). ``name`` may also be a :class:`Source` (tests point one
    at a local server). ``log`` receives one line per file.

    Raises:
        ManualDownload: (a ``ValueError``) the set has no direct link; the message gives URL and layout.
        ValueError: unknown name, a size/checksum mismatch, or an archive without the expected folder.
        DownloadError: (an ``OSError``) the network failed; the message lists each URL tried.
    """
    src = get_source(name) if isinstance(name, str) else name
    if src.manual is not None:
        raise ManualDownload(f"{src.name} cannot be downloaded automatically. {src.manual}\n"
                             f"Homepage: {src.homepage}\nExpected layout under --data-dir: {src.layout}")
    root = Path(root)
    if not src.resources:
        log(f"{src.name}: nothing to download ({src.layout})")
        return root
    for res in src.resources:
        target = root / res.dest / res.provides
        if target.exists():
            log(f"{src.name}: {target} already in place")
            continue
        archive = fetch(res, root / res.dest, src.name, progress, retries, timeout)
        _unpack(archive, res, target, src.name)
        if archive.exists():
            archive.unlink()
        log(f"{src.name}: {target}")
    return root
