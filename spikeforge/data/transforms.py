"""Tensor image transforms (SPEC §8.3 augmentation; §8.2 event-frame resize), no torchvision.

Every transform takes one image ``[C, H, W]`` or a batch ``[B, C, H, W]`` (``ToFloat``: ``[H, W, C]``
/ ``[B, H, W, C]`` uint8) and returns the same layout. Random transforms draw from an optional
``torch.Generator`` (the global RNG when ``None``), one independent draw per image of a batch, in
the order stated in each class. Geometry follows torchvision's conventions (crop offsets, the
RandomResizedCrop sampling loop, the smaller-edge Resize, centre-crop rounding) so results match the
reference code that the papers' numbers come from.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CenterCrop", "Compose", "Normalize", "RandomAffine", "RandomCrop", "RandomHorizontalFlip",
    "RandomResizedCrop", "Resize", "ToFloat", "resize_frames",
]


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size}")
    return size


def _check_image(x: Tensor, name: str) -> bool:
    """Validate ``[C, H, W]`` / ``[B, C, H, W]``; True when batched."""
    if not isinstance(x, Tensor) or x.dim() not in (3, 4):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected [C, H, W] or [B, C, H, W] tensor, got {shape}")
    return x.dim() == 4


def _interpolate(x: Tensor, size: tuple[int, int], antialias: bool | None = None, mode: str = "bilinear") -> Tensor:
    """Bilinear resize of the last two dims of ``x [..., H, W]``; uint8 in → rounded uint8 out."""
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if antialias is None:
        antialias = size[0] < h or size[1] < w  # antialias only matters when shrinking
    y = x.reshape(-1, 1, h, w)
    dtype = y.dtype
    if not y.is_floating_point():
        y = y.float()
    y = F.interpolate(y, size=size, mode=mode, align_corners=False if mode != "nearest" else None,
                      antialias=antialias and mode in ("bilinear", "bicubic"))
    if dtype == torch.uint8:
        y = y.round_().clamp_(0, 255).to(torch.uint8)
    return y.reshape(*lead, *size)


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Callable[[Tensor], Tensor]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Tensor) -> Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])" if inner else "Compose([])"


class ToFloat:
    """uint8 ``[H, W, C]`` / ``[B, H, W, C]`` (``layout="HWC"``, Pillow's) or ``[C, H, W]`` / ``[B, C, H, W]``
    (``layout="CHW"``) → float32 channels-first in ``[0, 1]`` (value / 255)."""

    def __init__(self, layout: str = "HWC") -> None:
        if layout not in ("HWC", "CHW"):
            raise ValueError(f"ToFloat: layout must be 'HWC' or 'CHW', got {layout!r}")
        self.layout = layout

    def __call__(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() not in (3, 4):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"ToFloat: expected a 3- or 4-dim {self.layout} tensor, got {got}")
        if x.dtype != torch.uint8:
            raise ValueError(f"ToFloat: expected uint8 pixels, got {x.dtype}")
        if self.layout == "HWC":
            x = x.movedim(-1, -3)
        return x.to(torch.float32).div_(255.0).contiguous()

    def __repr__(self) -> str:
        return f"ToFloat(layout={self.layout!r})"


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel ``c`` of ``x [C, H, W]`` / ``[B, C, H, W]`` (float)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"Normalize: mean and std need the same non-zero length, "
                             f"got {len(self.mean)} and {len(self.std)}")
        if min(self.std) <= 0:
            raise ValueError(f"Normalize: std must be > 0, got {self.std}")
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        _check_image(x, "Normalize")
        if not x.is_floating_point():
            raise ValueError(f"Normalize: expected a float tensor (apply ToFloat first), got {x.dtype}")
        c = x.shape[-3]
        if c != len(self.mean):
            raise ValueError(f"Normalize: image has {c} channels, mean/std have {len(self.mean)}")
        if x.dtype == torch.float32:
            mean, std = self._mean.to(x.device), self._std.to(x.device)
        else:  # from the Python floats, so float64 keeps full precision
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(c, 1, 1)
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(c, 1, 1)
        return (x - mean).div_(std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomCrop:
    """Zero-pad ``padding`` pixels on every side, then crop ``size`` at a random offset.

    Draws, per image: ``top ~ U{0 .. H + 2p - h}`` for all images of the batch, then
    ``left ~ U{0 .. W + 2p - w}`` (``torch.randint`` with the generator, shape ``[B]``).
    """

    def __init__(self, size: int | Sequence[int], padding: int = 0, generator: torch.Generator | None = None) -> None:
        self.size = _pair(size, "RandomCrop")
        if int(padding) < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")
        self.padding = int(padding)
        self.generator = generator

    def __call__(self, x: Tensor) -> Tensor:
        batched = _check_image(x, "RandomCrop")
        xb = x if batched else x.unsqueeze(0)
        p = self.padding
        b, c, H, W = xb.shape
        h, w = self.size
        if h > H + 2 * p or w > W + 2 * p:
            raise ValueError(f"RandomCrop: crop {self.size} larger than the padded image ({H + 2 * p}, {W + 2 * p})")
        top = torch.randint(0, H + 2 * p - h + 1, (b,), generator=self.generator).tolist()
        left = torch.randint(0, W + 2 * p - w + 1, (b,), generator=self.generator).tolist()
        if p == 0:
            out = torch.stack([xb[i, :, t:t + h, l:l + w] for i, (t, l) in enumerate(zip(top, left))])
        else:  # copy the part of the window that overlaps the image; the rest is the zero padding
            out = xb.new_zeros(b, c, h, w)
            for i, (t, l) in enumerate(zip(top, left)):
                r0, r1 = max(t - p, 0), min(t - p + h, H)
                c0, c1 = max(l - p, 0), min(l - p + w, W)
                if r1 > r0 and c1 > c0:
                    out[i, :, r0 - (t - p):r1 - (t - p), c0 - (l - p):c1 - (l - p)] = xb[i, :, r0:r1, c0:c1]
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror columns (``x[..., ::-1]``) of each image with probability ``p``; one ``torch.rand`` draw per image."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must lie in [0, 1], got {p}")
        self.p, self.generator = float(p), generator

    def __call__(self, x: Tensor) -> Tensor:
        batched = _check_image(x, "RandomHorizontalFlip")
        b = x.shape[0] if batched else 1
        flip = torch.rand(b, generator=self.generator) < self.p
        if not batched:
            return x.flip(-1) if bool(flip[0]) else x
        return torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(-1), x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomAffine:
    """Rotate, shift by whole pixels and scale about the image centre; nearest sampling, zeros outside
    (torchvision's ``RandomAffine`` without shear, on float tensors; PLIF's MNIST augmentation).

    Draws, per image, in this order: ``angle ~ U(-degrees, degrees)``, ``tx = round(U(-a·W, a·W))``,
    ``ty = round(U(-b·H, b·H))`` with ``translate = (a, b)``, ``s ~ U(scale)``. As torchvision's ``affine``,
    a positive angle turns the image clockwise (as displayed, rows down) and pixel ``p`` of the output
    reads the input at ``R(-angle) (p - t) / s`` (coordinates about the centre).
    """

    def __init__(self, degrees: float, translate: Sequence[float] = (0.0, 0.0), scale: Sequence[float] = (1.0, 1.0),
                 generator: torch.Generator | None = None) -> None:
        if float(degrees) < 0:
            raise ValueError(f"RandomAffine: degrees must be >= 0, got {degrees}")
        if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
            raise ValueError(f"RandomAffine: translate must be two fractions in [0, 1], got {translate}")
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomAffine: scale must satisfy 0 < lo <= hi, got {scale}")
        self.degrees = float(degrees)
        self.translate, self.scale = tuple(map(float, translate)), tuple(map(float, scale))
        self.generator = generator

    def params(self, height: int, width: int) -> tuple[float, int, int, float]:
        """``(angle in degrees, tx, ty, scale)`` of one image."""
        def uniform(lo: float, hi: float) -> float:
            return torch.empty(1).uniform_(lo, hi, generator=self.generator).item()
        angle = uniform(-self.degrees, self.degrees)
        mx, my = self.translate[0] * width, self.translate[1] * height
        tx, ty = int(round(uniform(-mx, mx))), int(round(uniform(-my, my)))
        return angle, tx, ty, uniform(*self.scale)

    @staticmethod
    def theta(angle: float, tx: int, ty: int, scale: float, height: int, width: int) -> Tensor:
        """float64 ``[2, 3]`` matrix for ``F.affine_grid`` (normalised coordinates, output → input)."""
        a = math.radians(angle)
        cos, sin = math.cos(a) / scale, math.sin(a) / scale
        # in pixels about the centre: x_in = cos·(x - tx) + sin·(y - ty), y_in = -sin·(x - tx) + cos·(y - ty)
        return torch.tensor([[cos, sin * height / width, -2.0 * (cos * tx + sin * ty) / width],
                             [-sin * width / height, cos, 2.0 * (sin * tx - cos * ty) / height]], dtype=torch.float64)

    def __call__(self, x: Tensor) -> Tensor:
        batched = _check_image(x, "RandomAffine")
        if not x.is_floating_point():
            raise ValueError(f"RandomAffine: expected a float tensor (apply ToFloat first), got {x.dtype}")
        xb = x if batched else x.unsqueeze(0)
        H, W = xb.shape[-2:]
        theta = torch.stack([self.theta(*self.params(H, W), H, W) for _ in range(xb.shape[0])])
        grid = F.affine_grid(theta.to(xb.dtype).to(xb.device), list(xb.shape), align_corners=False)
        out = F.grid_sample(xb, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale})"


class RandomResizedCrop:
    """Crop a random area fraction ``scale`` and aspect ``ratio`` (w / h), then resize to ``size`` (bilinear).

    torchvision's sampling: up to 10 tries of ``area = H·W·U(scale)``, ``log r ~ U(log ratio)``,
    ``w = round(√(area·r))``, ``h = round(√(area/r))``; accepted when it fits, then ``top ~ U{0..H-h}``,
    ``left ~ U{0..W-w}``; otherwise a centred crop with the ratio clamped to ``ratio``. Per image.
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), generator: torch.Generator | None = None) -> None:
        self.size = _pair(size, "RandomResizedCrop")
        if not (0 < scale[0] <= scale[1] <= 1.0):
            raise ValueError(f"RandomResizedCrop: scale must satisfy 0 < lo <= hi <= 1, got {scale}")
        if not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"RandomResizedCrop: ratio must satisfy 0 < lo <= hi, got {ratio}")
        self.scale, self.ratio = tuple(map(float, scale)), tuple(map(float, ratio))
        self.generator = generator

    def params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, h, w)`` of one crop of a ``height × width`` image."""
        g = self.generator
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * torch.empty(1).uniform_(self.scale[0], self.scale[1], generator=g).item()
            aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g).item())
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=g).item())
                left = int(torch.randint(0, width - w + 1, (1,), generator=g).item())
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x: Tensor) -> Tensor:
        batched = _check_image(x, "RandomResizedCrop")
        xb = x if batched else x.unsqueeze(0)
        outs = []
        for img in xb:
            top, left, h, w = self.params(img.shape[-2], img.shape[-1])
            outs.append(_interpolate(img[:, top:top + h, left:left + w], self.size))
        out = torch.stack(outs)
        return out if batched else out[0]

    def __repr__(self) -> str:
        ratio = tuple(round(r, 4) for r in self.ratio)
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={ratio})"


class Resize:
    """Bilinear resize (antialiased when shrinking). ``size`` int: the smaller edge becomes ``size`` and the
    other keeps the aspect (``int(size · long / short)``, torchvision's rule); ``(h, w)``: exactly that."""

    def __init__(self, size: int | Sequence[int], antialias: bool | None = None) -> None:
        if isinstance(size, int):
            if size <= 0:
                raise ValueError(f"Resize: size must be positive, got {size}")
            self.size: int | tuple[int, int] = size
        else:
            self.size = _pair(size, "Resize")
        self.antialias = antialias

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if not isinstance(self.size, int):
            return self.size
        if height <= width:
            return self.size, int(self.size * width / height)
        return int(self.size * height / width), self.size

    def __call__(self, x: Tensor) -> Tensor:
        _check_image(x, "Resize")
        return _interpolate(x, self.output_size(x.shape[-2], x.shape[-1]), self.antialias)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class CenterCrop:
    """The central ``size`` window: ``top = round((H - h) / 2)``, ``left = round((W - w) / 2)`` (torchvision's)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size, "CenterCrop")

    def __call__(self, x: Tensor) -> Tensor:
        _check_image(x, "CenterCrop")
        H, W = x.shape[-2:]
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"CenterCrop: crop {self.size} larger than the image ({H}, {W})")
        top, left = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
        return x[..., top:top + h, left:left + w]

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


def resize_frames(frames: Tensor, size: int | Sequence[int], mode: str = "bilinear", antialias: bool = False) -> Tensor:
    """Resize event frames (SPEC §8.2: DVS-CIFAR10 128 → 48 for DSR/TET).

    Args:
        frames: ``[T, 2, H, W]`` or ``[T, B, 2, H, W]`` (or any ``[..., H, W]``) float counts per pixel.
        size: output ``(h, w)`` or one int for a square.
        mode: ``"bilinear"`` (default; align_corners=False) or ``"nearest"``.
        antialias: default False, as the tensor ``Resize`` of the reference code's torchvision
            versions; True averages over the whole footprint when shrinking.

    Returns:
        float ``[..., h, w]``, same leading dims (counts are interpolated, not re-summed).
    """
    size = _pair(size, "resize_frames")
    if not isinstance(frames, Tensor) or frames.dim() < 3:
        raise ValueError(f"resize_frames: expected [T, 2, H, W], got {getattr(frames, 'shape', type(frames))}")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"resize_frames: mode must be 'bilinear' or 'nearest', got {mode!r}")
    if not frames.is_floating_point():
        frames = frames.float()
    return _interpolate(frames, size, antialias=antialias, mode=mode)
