"""Tiny-ImageNet / ImageNet folder trees (SPEC §8.3): real JPEGs in tmp_path, labels, lazy decode, errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from spikeforge.data import create_dataset
from spikeforge.data.image_folder import decode_image, imagenet_samples, tiny_imagenet_samples

WNIDS = ["n02", "n01", "n03"]  # wnids.txt order is not sorted, as in the real file


def jpeg(path, size=(16, 12), seed=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path, format="JPEG", quality=90)


def pillow_rgb(path):
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def make_tiny(root, per_class=2, size=(64, 64)):
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    s = 0
    for w in WNIDS:
        for i in range(per_class):
            jpeg(base / "train" / w / "images" / f"{w}_{i}.JPEG", size, seed=s)
            s += 1
    lines = []
    for i, w in enumerate(["n03", "n01", "n02", "n03"]):
        jpeg(base / "val" / "images" / f"val_{i}.JPEG", size, seed=100 + i)
        lines.append(f"val_{i}.JPEG\t{w}\t0\t1\t30\t40")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return base


def make_imagenet(root, size=(40, 30)):
    for split, n in (("train", 2), ("val", 1)):
        for k, w in enumerate(sorted(WNIDS)):
            for i in range(n):
                jpeg(root / split / w / f"{w}_{i}.JPEG", size, seed=10 * k + i + (50 if split == "val" else 0))


def test_decode_matches_pillow_and_converts_grey(tmp_path):
    p, q = tmp_path / "a.JPEG", tmp_path / "g.jpg"
    jpeg(p, (16, 12))
    jpeg(q, (9, 7), mode="L")
    x = decode_image(p)
    assert x.dtype == torch.uint8 and x.shape == (12, 16, 3) and torch.equal(x, pillow_rgb(p))
    g = decode_image(q)
    assert g.shape == (7, 9, 3) and torch.equal(g[..., 0], g[..., 2]) and torch.equal(g, pillow_rgb(q))


def test_tiny_train_labels_sorted_wnids(tmp_path):
    base = make_tiny(tmp_path)
    samples, classes = tiny_imagenet_samples(tmp_path, "train")
    assert classes == ["n01", "n02", "n03"] and len(samples) == 6
    for path, label in samples:
        assert classes[label] in path
    assert tiny_imagenet_samples(base, "train") == (samples, classes)  # root = the folder itself
    s2, c2 = tiny_imagenet_samples(tmp_path, "test", class_order="wnids")
    assert c2 == WNIDS and [c2[y] for _, y in s2] == ["n03", "n01", "n02", "n03"]
    ds = create_dataset("tiny_imagenet", root=str(tmp_path), split="test", class_order="wnids")
    assert [int(ds[i][1]) for i in range(4)] == [2, 1, 0, 2]
    with pytest.raises(ValueError, match="class_order must be"):
        tiny_imagenet_samples(tmp_path, class_order="alpha")


def test_tiny_val_annotations_and_dataset(tmp_path):
    base = make_tiny(tmp_path)
    samples, classes = tiny_imagenet_samples(tmp_path, "test")
    assert [(p.rsplit("/", 1)[1], classes[y]) for p, y in samples] == [
        ("val_0.JPEG", "n03"), ("val_1.JPEG", "n01"), ("val_2.JPEG", "n02"), ("val_3.JPEG", "n03")]
    ds = create_dataset("tiny_imagenet", root=str(tmp_path), split="test", normalize=False)
    x, y = ds[1]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and int(y) == 0 and y.dtype == torch.int64
    ref = pillow_rgb(base / "val" / "images" / "val_1.JPEG").permute(2, 0, 1).float() / 255
    assert torch.equal(x, ref)
    tr = create_dataset("tiny_imagenet", root=str(tmp_path), split="train",
                        generator=torch.Generator().manual_seed(0))
    assert tr[0][0].shape == (3, 64, 64)


def test_tiny_errors_name_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="wnids.txt not found"):
        tiny_imagenet_samples(tmp_path)
    base = make_tiny(tmp_path)
    ann = base / "val" / "val_annotations.txt"
    good = ann.read_text()
    ann.write_text(good.replace("n01", "n99"))
    with pytest.raises(ValueError, match=r"val_annotations.txt:2: wnid 'n99' is not in .*wnids.txt"):
        tiny_imagenet_samples(tmp_path, "test")
    ann.write_text(good + "val_9.JPEG\tn01\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"val_annotations.txt:5: image .*val_9.JPEG does not exist"):
        tiny_imagenet_samples(tmp_path, "test")
    ann.write_text(good.replace("val_3.JPEG\tn03\t0\t1\t30\t40\n", ""))
    with pytest.raises(ValueError, match="no annotation for 1 image.*val_3.JPEG"):
        tiny_imagenet_samples(tmp_path, "test")
    ann.write_text("val_0.JPEG n01\n")
    with pytest.raises(ValueError, match="tab-separated"):
        tiny_imagenet_samples(tmp_path, "test")
    ann.unlink()
    with pytest.raises(ValueError, match="val_annotations.txt: missing"):
        tiny_imagenet_samples(tmp_path, "val")
    import shutil
    shutil.rmtree(base / "train" / "n02")
    with pytest.raises(ValueError, match=r"train/n02/images: missing train folder for wnid n02"):
        tiny_imagenet_samples(tmp_path, "train")


def test_imagenet_labels_and_eval_transform(tmp_path):
    make_imagenet(tmp_path)
    samples, classes = imagenet_samples(tmp_path, "val")
    assert classes == ["n01", "n02", "n03"] and [y for _, y in samples] == [0, 1, 2]
    ds = create_dataset("imagenet", root=str(tmp_path), split="test", normalize=False, resize_size=32, crop_size=24)
    x, y = ds[2]
    assert x.shape == (3, 24, 24) and int(y) == 2
    # Resize(32): smaller edge 30 -> 32, the other int(32 * 40 / 30) = 42; centre crop 24 of (32, 42)
    img = pillow_rgb(tmp_path / "val" / "n03" / "n03_0.JPEG").permute(2, 0, 1).float() / 255
    big = torch.nn.functional.interpolate(img[None], size=(32, 42), mode="bilinear", align_corners=False,
                                          antialias=False)[0]
    torch.testing.assert_close(x, big[:, 4:28, 9:33])
    tr = create_dataset("imagenet", root=str(tmp_path), split="train", crop_size=16,
                        generator=torch.Generator().manual_seed(0))
    assert len(tr) == 6 and tr[0][0].shape == (3, 16, 16)
    va = create_dataset("imagenet", root=str(tmp_path), split="val", val_fraction=0.5, crop_size=16, resize_size=20)
    assert len(va) == 3 and va[0][0].shape == (3, 16, 16)


def test_imagenet_errors_name_path(tmp_path):
    with pytest.raises(ValueError, match="--data-dir.*train/<wnid>"):
        create_dataset("imagenet", root=None)
    with pytest.raises(FileNotFoundError, match="train not found"):
        imagenet_samples(tmp_path)
    make_imagenet(tmp_path)
    jpeg(tmp_path / "val" / "n77" / "a.JPEG")
    with pytest.raises(ValueError, match=r"val/n77: wnid 'n77' has no folder in .*train"):
        imagenet_samples(tmp_path, "val")


def test_undecodable_image_names_path(tmp_path):
    make_imagenet(tmp_path)
    bad = tmp_path / "train" / "n01" / "n01_0.JPEG"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    (tmp_path / "train" / "n02" / "n02_0.JPEG").write_bytes(b"not an image at all")
    ds = create_dataset("imagenet", root=str(tmp_path), split="train", crop_size=8)
    for i in (0, 2):
        with pytest.raises((ValueError, OSError), match="cannot decode image") as e:
            ds[i]
        assert ds.samples[i][0] in str(e.value)
    assert ds[1][0].shape == (3, 8, 8)
