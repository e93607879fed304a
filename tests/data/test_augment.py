"""MNIST crop + flip / RandomAffine (SPEC §7.2 PLIF vs the PLIF code) and DSR's DVS-CIFAR10 frame crop:
outputs checked against hand-built expectations, with the generator's draws replayed."""
import pytest
import torch
import torch.nn.functional as F

from spikeforge.data import create_dataset
from spikeforge.data.event_datasets import FrameRandomCrop
from spikeforge.data.static_datasets import static_transform
from spikeforge.data.transforms import RandomAffine, RandomCrop, RandomHorizontalFlip
from spikeforge.train.builders import build_datasets
from spikeforge.train.config import apply_overrides, load_recipe
from tests.data.test_idx import write_mnist
from tests.fake_data import write_fake_dataset

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def ramp(*shape: int) -> torch.Tensor:
    return torch.arange(1, torch.Size(shape).numel() + 1, dtype=torch.float32).view(*shape)


def fixed_affine(angle: float, tx: int, ty: int, scale: float) -> RandomAffine:
    """A RandomAffine whose draw is fixed to the given parameters."""
    t = RandomAffine(0)
    t.params = lambda h, w: (angle, tx, ty, scale)
    return t


# ------------------------------------------------------------------------------------------ MNIST
def test_mnist_train_crop_flip_replays_generator(tmp_path):
    data = write_mnist(tmp_path, n_train=12, n_test=5)
    ds = create_dataset("mnist", root=str(tmp_path), split="train", normalize=False,
                        generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # per item: top, left (RandomCrop), then one rand (flip)
    flips, offsets = set(), set()
    for i in range(12):
        top, left = (int(torch.randint(0, 28 + 8 - 28 + 1, (1,), generator=g)) for _ in range(2))
        flip = bool(torch.rand(1, generator=g)[0] < 0.5)
        padded = F.pad(torch.from_numpy(data["train"][0][i]).float().div(255), (4, 4, 4, 4))
        want = padded[top:top + 28, left:left + 28]
        want = want.flip(-1) if flip else want
        assert torch.equal(ds[i][0], want[None])
        flips.add(flip)
        offsets.add((top, left))
    assert flips == {False, True} and len(offsets) > 1  # both branches and several offsets exercised


@pytest.mark.parametrize("augment", [True, "affine"])
def test_mnist_test_split_untouched(tmp_path, augment):
    data = write_mnist(tmp_path, n_train=12, n_test=5)
    te = create_dataset("mnist", root=str(tmp_path), split="test", augment=augment,
                        generator=torch.Generator().manual_seed(0))
    for i in range(5):
        want = (torch.from_numpy(data["test"][0][i]).float().div(255) - MNIST_MEAN) / MNIST_STD
        torch.testing.assert_close(te[i][0], want[None], rtol=0, atol=1e-6)
    va = create_dataset("mnist", root=str(tmp_path), split="val", val_fraction=0.25, augment=augment, normalize=False)
    idx = va.indices[0]
    assert torch.equal(va[0][0], torch.from_numpy(data["train"][0][idx]).float().div(255)[None])


def test_fmnist_train_not_augmented(tmp_path):
    data = write_mnist(tmp_path, n_train=12, n_test=5)
    tr = create_dataset("fmnist", root=str(tmp_path), split="train", normalize=False)
    for i in range(12):
        assert torch.equal(tr[i][0], torch.from_numpy(data["train"][0][i]).float().div(255)[None])


def test_mnist_affine_option_is_the_plif_code_transform(tmp_path):
    data = write_mnist(tmp_path, n_train=12, n_test=5)
    tr = create_dataset("mnist", root=str(tmp_path), split="train", augment="affine", normalize=False,
                        generator=torch.Generator().manual_seed(7))
    ref = RandomAffine(30, (0.15, 0.15), (0.85, 1.11), generator=torch.Generator().manual_seed(7))
    changed = 0
    for i in range(6):
        x = torch.from_numpy(data["train"][0][i]).float().div(255)[None]
        out = tr[i][0]
        assert torch.equal(out, ref(x))
        changed += not torch.equal(out, x)
    assert changed == 6
    tf = static_transform("mnist", True, "affine").transforms
    assert repr(tf[1]) == "RandomAffine(degrees=30.0, translate=(0.15, 0.15), scale=(0.85, 1.11))"
    assert [type(t) for t in static_transform("mnist", True).transforms[1:3]] == [RandomCrop, RandomHorizontalFlip]


def test_affine_only_for_mnist(tmp_path):
    write_fake_dataset("cifar10", tmp_path / "c")
    with pytest.raises(ValueError, match="MNIST option only"):
        create_dataset("cifar10", root=str(tmp_path / "c"), split="train", augment="affine")
    with pytest.raises(ValueError, match="MNIST option only"):
        create_dataset("cifar10", root=str(tmp_path / "c"), split="test", augment="affine")
    for name in ("fmnist", "cifar100", "tiny_imagenet", "imagenet"):
        with pytest.raises(ValueError, match="MNIST option only"):
            static_transform(name, True, "affine")
    with pytest.raises(ValueError, match="augment must be"):
        static_transform("mnist", True, "flip")


def test_recipe_yaml_augment_reaches_the_transform(tmp_path):
    root = str(write_fake_dataset("mnist", tmp_path))
    cfg = apply_overrides(load_recipe("plif-mnist"), {}, [f"data.root={root}"])
    sets = build_datasets(cfg)
    assert [type(t) for t in sets["train"].transform.transforms[1:3]] == [RandomCrop, RandomHorizontalFlip]
    cfg = apply_overrides(load_recipe("plif-mnist"), {}, [f"data.root={root}", "data.augment=affine"])
    sets = build_datasets(cfg)
    assert isinstance(sets["train"].transform.transforms[1], RandomAffine)
    assert not any(isinstance(t, RandomAffine) for t in sets["test"].transform.transforms)


# ------------------------------------------------------------------------------------ RandomAffine
def test_affine_identity_is_exact():
    x = torch.rand(3, 2, 7, 9)
    t = RandomAffine(0, (0.0, 0.0), (1.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert torch.equal(t(x), x) and torch.equal(t(x[0]), x[0])


def test_affine_integer_translation_zero_fill():
    x = ramp(1, 3, 4)
    want = torch.tensor([[[0., 0., 0., 0.], [0., 1., 2., 3.], [0., 5., 6., 7.]]])  # tx = +1 (right), ty = +1 (down)
    assert torch.equal(fixed_affine(0.0, 1, 1, 1.0)(x), want)
    want = torch.tensor([[[7., 8., 0., 0.], [11., 12., 0., 0.], [0., 0., 0., 0.]]])  # tx = -2, ty = -1
    assert torch.equal(fixed_affine(0.0, -2, -1, 1.0)(x), want)


def test_affine_drawn_translation_replays_generator():
    x = ramp(2, 5, 6)
    seen = set()
    for seed in range(12):
        out = RandomAffine(0, (0.5, 0.5), generator=torch.Generator().manual_seed(seed))(x)
        g = torch.Generator().manual_seed(seed)
        draws = [torch.empty(1).uniform_(lo, hi, generator=g).item() for lo, hi in ((0, 0), (-3, 3), (-2.5, 2.5))]
        tx, ty = round(draws[1]), round(draws[2])
        want = torch.zeros_like(x)
        want[:, max(ty, 0):5 + min(ty, 0), max(tx, 0):6 + min(tx, 0)] = x[:, max(-ty, 0):5 - max(ty, 0),
                                                                          max(-tx, 0):6 - max(tx, 0)]
        assert torch.equal(out, want), (seed, tx, ty)
        seen.add((tx, ty))
    assert any(tx and ty for tx, ty in seen)


def test_affine_rotation_90_is_rot90():
    x = ramp(2, 5, 5)
    # torchvision's affine convention: a positive angle turns the image clockwise, i.e. rot90 with k = -1
    assert torch.equal(fixed_affine(90.0, 0, 0, 1.0)(x), torch.rot90(x, -1, dims=(-2, -1)))
    assert torch.equal(fixed_affine(-90.0, 0, 0, 1.0)(x), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.equal(fixed_affine(180.0, 0, 0, 1.0)(x), torch.rot90(x, 2, dims=(-2, -1)))
    assert torch.equal(fixed_affine(90.0, 0, 0, 1.0)(x[None])[0], torch.rot90(x, -1, dims=(-2, -1)))


def test_affine_scale_two_nearest():
    x = ramp(1, 4, 4)
    # output centres ±0.5, ±1.5 read the input at ±0.25, ±0.75 → rows/columns 1, 1, 2, 2
    idx = torch.tensor([1, 1, 2, 2])
    assert torch.equal(fixed_affine(0.0, 0, 0, 2.0)(x), x[:, idx][:, :, idx])


def test_affine_draw_order():
    t = RandomAffine(30, (0.15, 0.1), (0.85, 1.11), generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    angle, dx, dy, s = (torch.empty(1).uniform_(lo, hi, generator=g).item()
                        for lo, hi in ((-30, 30), (-0.15 * 20, 0.15 * 20), (-0.1 * 10, 0.1 * 10), (0.85, 1.11)))
    assert t.params(10, 20) == (angle, round(dx), round(dy), s)


def test_affine_invalid_args():
    for kw in ({"degrees": -1}, {"degrees": 0, "translate": (1.5, 0.0)}, {"degrees": 0, "translate": (0.1,)},
               {"degrees": 0, "scale": (0.0, 1.0)}, {"degrees": 0, "scale": (1.2, 1.0)}):
        with pytest.raises(ValueError, match="RandomAffine"):
            RandomAffine(**kw)
    with pytest.raises(ValueError, match="float tensor"):
        RandomAffine(0)(torch.zeros(1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        RandomAffine(0)(torch.zeros(4, 4))


# --------------------------------------------------------------------------------- DVS-CIFAR10 crop
def replay_crop(frames: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """One (top, left) draw for the whole sample, applied to every frame of the zero-padded frames."""
    H, W = frames.shape[-2:]
    top, left = (int(torch.randint(0, 2 * pad + 1, (1,), generator=g)) for _ in range(2))
    return F.pad(frames, (pad,) * 4)[..., top:top + H, left:left + W]


def test_frame_crop_one_offset_for_all_frames():
    frames = ramp(4, 2, 6, 7)
    shifted = 0
    for seed in range(8):
        out = FrameRandomCrop(2, generator=torch.Generator().manual_seed(seed))(frames)
        assert torch.equal(out, replay_crop(frames, 2, torch.Generator().manual_seed(seed)))
        # every frame moved by the same offset: locate frame 0's offset, check all frames against it
        padded = F.pad(frames, (2,) * 4)
        offs = [(t, l) for t in range(5) for l in range(5) if torch.equal(out[0], padded[0, :, t:t + 6, l:l + 7])]
        assert len(offs) == 1
        t, l = offs[0]
        assert torch.equal(out, padded[..., t:t + 6, l:l + 7])
        shifted += offs[0] != (2, 2)
    assert shifted > 0
    assert torch.equal(FrameRandomCrop(0)(frames), frames)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="padding"):
            FrameRandomCrop(bad)
    with pytest.raises(ValueError, match=r"\[T, C, H, W\]"):
        FrameRandomCrop(2)(frames[0])


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory):
    return str(write_fake_dataset("cifar10_dvs", tmp_path_factory.mktemp("cifar10_dvs")))


def test_cifar10_dvs_crop_padding(dvs_root):
    kw = {"root": dvs_root, "T": 3, "resize": (12, 12)}
    tr = create_dataset("cifar10_dvs", split="train", crop_padding=4, generator=torch.Generator().manual_seed(1), **kw)
    plain = create_dataset("cifar10_dvs", split="train", **kw)
    g = torch.Generator().manual_seed(1)
    for i in (0, 0, 45):
        x = tr[i][0]
        assert x.shape == (3, 2, 12, 12) and torch.equal(x, replay_crop(plain[i][0], 4, g))
    te = create_dataset("cifar10_dvs", split="test", crop_padding=4, **kw)
    assert te.transform is None and torch.equal(te[0][0], create_dataset("cifar10_dvs", split="test", **kw)[0][0])


def test_cifar10_dvs_crop_padding_errors(dvs_root):
    with pytest.raises(ValueError, match="tet=True"):
        create_dataset("cifar10_dvs", root=dvs_root, tet=True, crop_padding=4)
    with pytest.raises(ValueError, match="not both"):
        create_dataset("cifar10_dvs", root=dvs_root, crop_padding=4, transform=lambda x: x)
    for split in ("train", "test"):
        with pytest.raises(ValueError, match="padding must be"):
            create_dataset("cifar10_dvs", root=dvs_root, split=split, crop_padding=-1)


def test_dsr_recipe_crops_train_frames(dvs_root):
    cfg = apply_overrides(load_recipe("dsr-vgg11-dvscifar10"), {}, [f"data.root={dvs_root}"])
    assert cfg["data"]["crop_padding"] == 4
    sets = build_datasets(cfg)
    assert repr(sets["train"].transform) == "FrameRandomCrop(padding=4)" and sets["test"].transform is None
