"""Where each file-based data set comes from and how its folder (``--data-dir``) is laid out.

The one place for these URLs (readers' error messages and the download command use it). No imports
beyond the standard library, so any tool can read it cheaply. ``digits`` is embedded (scikit-learn)
and needs no files.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["SOURCES", "Source", "where_is", "where_to_get"]


class Source(NamedTuple):
    """``url``: the official page or file; ``layout``: what ``--data-dir`` must hold."""

    url: str
    layout: str


_IDX = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
        "(optionally .gz; directly in DIR, in DIR/raw or DIR/{sub}/raw)")

SOURCES: dict[str, Source] = {
    "mnist": Source("http://yann.lecun.com/exdb/mnist/", _IDX.format(sub="MNIST")),
    "fmnist": Source("https://github.com/zalandoresearch/fashion-mnist", _IDX.format(sub="FashionMNIST")),
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                      "DIR/cifar-10-batches-py/data_batch_1..5 and test_batch (the archive unpacked)"),
    "cifar100": Source("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                       "DIR/cifar-100-python/train and test (the archive unpacked)"),
    "tiny_imagenet": Source("http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                            "DIR/tiny-imagenet-200/wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, "
                            "val/val_annotations.txt (the zip unpacked)"),
    "imagenet": Source("https://image-net.org/download.php",
                       "DIR/train/<wnid>/*.JPEG and DIR/val/<wnid>/*.JPEG (ILSVRC-2012, registration needed; "
                       "val sorted into class folders)"),
    "nmnist": Source("https://data.mendeley.com/datasets/468j46mzdv/1",
                     "DIR/Train/<digit>/<id>.bin and DIR/Test/<digit>/<id>.bin (Train.zip and Test.zip unpacked)"),
    "dvs128_gesture": Source("https://ibm.ent.box.com/s/3hiq58ww1pbbjrinh367ykfdf60xsfm8/folder/50167556794",
                             "DIR or DIR/DvsGesture: userNN_<lighting>.aedat, userNN_<lighting>_labels.csv, "
                             "trials_to_train.txt, trials_to_test.txt (DvsGesture.tar.gz unpacked)"),
    "cifar10_dvs": Source("https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671",
                          "DIR/<class>/cifar10_<class>_<i>.aedat for the 10 classes airplane ... truck "
                          "(the per-class zips unpacked)"),
}
#: sets that need no files (shown by ``spikeforge data download``)
EMBEDDED: dict[str, Source] = {
    "digits": Source("https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
                     "nothing: embedded in scikit-learn"),
}

#: the sets ``spikeforge data download NAME`` fetches (the others need a manual step or no files)
DOWNLOADABLE = frozenset({"mnist", "fmnist", "cifar10", "cifar100", "tiny_imagenet", "nmnist", "cifar10_dvs"})


def where_is(name: str) -> Source:
    """The :class:`Source` of data set ``name``; an unknown name raises listing the known ones."""
    known = {**SOURCES, **EMBEDDED}
    if name not in known:
        raise ValueError(f"data set {name!r} has no recorded source; known: {', '.join(sorted(known))}")
    return known[name]


def where_to_get(name: str) -> str:
    """``"pass its folder with --data-dir DIR (expected: ...); official source: URL"`` ("" for unknown names)."""
    src = SOURCES.get(name)
    if src is None:
        return ""
    fetch = f" (or: spikeforge data download {name} --data-dir DIR)" if name in DOWNLOADABLE else ""
    return f"pass its folder with --data-dir DIR{fetch} (expected: {src.layout}); official source: {src.url}"
