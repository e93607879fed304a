"""Tensor transforms (SPEC §8.3 augmentation, §8.2 frame resize): hand-made tensors, known outputs."""
import math

import pytest
import torch

from spikeforge.data.transforms import (
    CenterCrop, Compose, Normalize, RandomCrop, RandomHorizontalFlip, RandomResizedCrop, Resize, ToFloat,
    resize_frames,
)


def ramp(*shape):
    return torch.arange(math.prod(shape), dtype=torch.float32).view(*shape)


def test_tofloat_hwc_to_chw():
    x = torch.tensor([[[0, 255, 51]]], dtype=torch.uint8)  # [H=1, W=1, C=3]
    y = ToFloat()(x)
    assert y.shape == (3, 1, 1) and y.dtype == torch.float32
    assert torch.equal(y.flatten(), torch.tensor([0.0, 1.0, 0.2]))
    xb = torch.randint(0, 256, (2, 4, 5, 3), dtype=torch.uint8)
    assert torch.equal(ToFloat()(xb), xb.permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(ToFloat("CHW")(xb), xb.float() / 255)
    with pytest.raises(ValueError, match="expected uint8"):
        ToFloat()(xb.float())


def test_normalize_numbers():
    x = torch.ones(2, 3, 2, 2) * torch.tensor([0.5, 0.2, 1.0]).view(3, 1, 1)
    y = Normalize((0.5, 0.1, 0.0), (0.25, 0.1, 2.0))(x)
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.5]))
    torch.testing.assert_close(Normalize((0.5, 0.1, 0.0), (0.25, 0.1, 2.0))(x[0]), y[0])
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize((0.0,), (0.0,))
    with pytest.raises(ValueError, match="image has 3 channels, mean/std have 1"):
        Normalize((0.0,), (1.0,))(x)


def test_random_crop_offsets_from_seeded_generator():
    x = ramp(2, 3, 6, 7)
    out = RandomCrop((3, 4), padding=1, generator=torch.Generator().manual_seed(5))(x)
    g = torch.Generator().manual_seed(5)
    top = torch.randint(0, 8 - 3 + 1, (2,), generator=g)
    left = torch.randint(0, 9 - 4 + 1, (2,), generator=g)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for b in range(2):
        t, l = int(top[b]), int(left[b])
        assert torch.equal(out[b], padded[b, :, t:t + 3, l:l + 4])
    # unbatched: one draw of top then one of left
    single = RandomCrop(2, generator=torch.Generator().manual_seed(1))(x[0])
    g = torch.Generator().manual_seed(1)
    t, l = int(torch.randint(0, 5, (1,), generator=g)), int(torch.randint(0, 6, (1,), generator=g))
    assert torch.equal(single, x[0, :, t:t + 2, l:l + 2])


def test_random_crop_zero_padding_corner():
    x = torch.ones(1, 4, 4)
    crops = {tuple(RandomCrop(4, padding=4, generator=torch.Generator().manual_seed(s))(x).sum((0,)).flatten().tolist())
             for s in range(40)}
    assert any(sum(c) == 0 for c in crops)  # a crop fully in the zero padding exists among 81 offsets
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(10)(x)


def test_flip_exact():
    x = ramp(5, 1, 2, 3)
    assert torch.equal(RandomHorizontalFlip(1.0)(x), x[..., [2, 1, 0]])
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    out = RandomHorizontalFlip(0.5, generator=torch.Generator().manual_seed(7))(x)
    flip = torch.rand(5, generator=torch.Generator().manual_seed(7)) < 0.5
    for b in range(5):
        assert torch.equal(out[b], x[b].flip(-1) if flip[b] else x[b])
    assert torch.equal(RandomHorizontalFlip(1.0)(x[0]), x[0].flip(-1))


def test_resize_constant_stays_constant_and_shapes():
    c = torch.full((3, 50, 80), 0.3)
    y = Resize(20)(c)
    assert y.shape == (3, 20, 32)  # smaller edge 50 -> 20, 80 -> int(20 * 80 / 50) = 32
    torch.testing.assert_close(y, torch.full_like(y, 0.3))
    assert Resize((60, 90))(c).shape == (3, 60, 90)
    u = torch.full((2, 3, 7, 5), 200, dtype=torch.uint8)
    yu = Resize(9)(u)
    assert yu.dtype == torch.uint8 and yu.shape == (2, 3, 12, 9) and bool((yu == 200).all())
    assert Resize(10)(torch.zeros(3, 10, 20)).shape == (3, 10, 20)


def test_resize_downscale_is_antialiased():
    """Shrinking a 12×12 checkerboard by 3: plain bilinear samples single pixels (0/1), antialiased averages."""
    x = (torch.arange(12)[:, None] + torch.arange(12)[None, :]).remainder(2).float()[None]
    y = Resize((4, 4))(x)
    plain = torch.nn.functional.interpolate(x[None], size=(4, 4), mode="bilinear", align_corners=False)[0]
    assert plain.max() - plain.min() == 1.0
    assert y.max() - y.min() < 0.4
    ref = torch.nn.functional.interpolate(x[None], size=(4, 4), mode="bilinear", align_corners=False, antialias=True)[0]
    assert torch.equal(y, ref)


def test_center_crop_indices():
    x = ramp(1, 7, 8)
    y = CenterCrop((3, 4))(x)
    assert torch.equal(y, x[:, 2:5, 2:6])  # top = round(4 / 2) = 2, left = round(4 / 2) = 2
    assert torch.equal(CenterCrop(2)(ramp(1, 5, 5)), ramp(1, 5, 5)[:, 2:4, 2:4])  # round(1.5) = 2
    with pytest.raises(ValueError, match="larger than the image"):
        CenterCrop(9)(x)


def test_random_resized_crop_params_and_output():
    rrc = RandomResizedCrop(8, generator=torch.Generator().manual_seed(0))
    for _ in range(50):
        t, l, h, w = rrc.params(20, 30)
        assert 0 <= t <= 20 - h and 0 <= l <= 30 - w and h > 0 and w > 0
    # full-scale, unit ratio on a square image: the crop is the whole image
    full = RandomResizedCrop(4, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert full.params(4, 4) == (0, 0, 4, 4)
    x = ramp(3, 4, 4)
    assert torch.equal(full(x), x)
    c = torch.full((2, 3, 20, 30), 0.7)
    out = RandomResizedCrop(8, generator=torch.Generator().manual_seed(1))(c)
    assert out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out, torch.full_like(out, 0.7))


def test_compose_and_repr():
    t = Compose([ToFloat(), RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize((0.5,) * 3, (0.5,) * 3)])
    r = repr(t)
    assert "RandomCrop(size=(32, 32), padding=4)" in r and "RandomHorizontalFlip(p=0.5)" in r
    x = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8)
    assert t(x).shape == (3, 32, 32)
    assert repr(Resize(256)) == "Resize(size=256)" and repr(CenterCrop(224)) == "CenterCrop(size=(224, 224))"


def test_resize_frames_128_to_48():
    f = torch.full((10, 2, 128, 128), 3.0)
    y = resize_frames(f, 48)
    assert y.shape == (10, 2, 48, 48) and y.dtype == torch.float32
    torch.testing.assert_close(y, torch.full_like(y, 3.0))
    z = torch.zeros(4, 3, 2, 128, 128)
    assert resize_frames(z, (48, 40)).shape == (4, 3, 2, 48, 40)
    with pytest.raises(ValueError, match="mode"):
        resize_frames(f, 48, mode="area")


def test_bad_input_shapes():
    for t in (Normalize((0.0,), (1.0,)), RandomCrop(2), RandomHorizontalFlip(), Resize(2), CenterCrop(1)):
        with pytest.raises(ValueError, match=r"expected \[C, H, W\] or \[B, C, H, W\]"):
            t(torch.zeros(4, 4))


def test_normalize_float64_full_precision():
    x = torch.full((1, 2, 2), 0.7, dtype=torch.float64)
    y = Normalize((0.4914,), (0.2023,))(x)
    assert y.dtype == torch.float64 and y[0, 0, 0].item() == (0.7 - 0.4914) / 0.2023
