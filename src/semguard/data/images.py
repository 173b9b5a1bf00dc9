"""Natural-image data: file loading, folders of images (Kodak or any), random-crop sampling.

Images are uint8 ``[3, H, W]`` on disk/in memory and float ``[0, 1]`` when handed to a codec.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["ALIGN", "IMAGE_SUFFIXES", "load_image", "list_images", "ImageFolder", "CropSampler", "center_crop",
           "random_crops", "crops_by_source"]

log = logging.getLogger(__name__)

ALIGN = 16  # evaluation images are cropped to multiples of this: the deepest codec layout's downsampling
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def load_image(path: str | Path) -> Tensor:
    """Read an image file as RGB uint8 ``[3, H, W]`` (grey and alpha are converted)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from e
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def list_images(root: str | Path) -> list[Path]:
    """Image files directly in or below ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


def center_crop(img: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Central ``size`` crop of ``[..., H, W]``; the image must be at least that large."""
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = img.shape[-2:]
    if h < th or w < tw:
        raise ValueError(f"image {h}x{w} is smaller than the crop {th}x{tw}")
    top, left = (h - th) // 2, (w - tw) // 2
    return img[..., top:top + th, left:left + tw]


def _downscale(img: Tensor, factor: float) -> Tensor:
    if factor == 1.0:
        return img
    h, w = img.shape[-2:]
    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    pil = pil.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).contiguous()


class ImageFolder(Dataset[Tensor]):
    """Every image under ``root`` (a Kodak folder, or any), as float ``[3, H, W]`` in [0, 1].

    Args:
        root: folder searched recursively.
        crop: central crop size for evaluation (None: full image cropped down to a multiple of
            :data:`ALIGN`, so every image-codec layout can code it).
    """

    def __init__(self, root: str | Path, *, crop: int | None = None) -> None:
        self.files = list_images(root)
        self.crop = crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        img = load_image(self.files[i])
        if self.crop is not None:
            img = center_crop(img, self.crop)
        else:
            h, w = img.shape[-2:]
            img = center_crop(img, (h - h % ALIGN, w - w % ALIGN))
        return img.float() / 255.0


def random_crops(images: Sequence[Tensor], n: int, size: int, generator: torch.Generator) -> Tensor:
    """``n`` random ``size x size`` crops ``[n, 3, size, size]`` of float ``[3, H, W]`` images (the
    image chosen uniformly, then the position), for small studies; training uses :class:`CropSampler`."""
    which = torch.randint(len(images), (n,), generator=generator).tolist()
    out = []
    for i in which:
        img = images[i]
        y = int(torch.randint(img.shape[1] - size + 1, (1,), generator=generator))
        x = int(torch.randint(img.shape[2] - size + 1, (1,), generator=generator))
        out.append(img[:, y:y + size, x:x + size])
    return torch.stack(out)


def crops_by_source(images: Sequence[Tensor], n_per: int, size: int, generator: torch.Generator, *,
                    short_side: int | None = 256) -> tuple[Tensor, Tensor]:
    """``n_per`` random ``size x size`` crops of each float ``[3, H, W]`` image in [0, 1], after
    downscaling it (antialiased, never up) to a ``short_side``-pixel shorter side (None: full size).

    Returns crops ``[len(images) * n_per, 3, size, size]`` and the source index of each ``[N]``
    (long), the label a per-source non-IID split partitions on.
    """
    if n_per < 1 or size < 1:
        raise ValueError(f"n_per and size must be >= 1, got {n_per} and {size}")
    out, src = [], []
    for k, img in enumerate(images):
        short = min(img.shape[-2:])
        if short_side is not None and short > short_side:
            hw = [max(size, round(d * short_side / short)) for d in img.shape[-2:]]
            img = torch.nn.functional.interpolate(img[None].float(), size=hw, mode="bilinear", antialias=True,
                                                  align_corners=False)[0].clamp(0, 1)
        if min(img.shape[-2:]) < size:
            raise ValueError(f"image {k} ({tuple(img.shape[-2:])}) is smaller than the {size}x{size} crop")
        out.append(random_crops([img], n_per, size, generator))
        src.append(torch.full((n_per,), k, dtype=torch.long))
    return torch.cat(out), torch.cat(src)


class CropSampler:
    """Random crops from images held in memory (the training source for image codecs).

    Each image is kept at several resolutions, given as the length of its shorter side after
    downscaling (never upscaling).  Crops from a 2560x1600 photo at full size are mostly flat
    patches; at a 256-512-pixel short side a 64x64 crop holds as much detail as the photos a
    codec is evaluated on (a 256x256 image of a whole scene).  Sources are drawn in proportion
    to their area; ``sample`` draws a batch with random horizontal flips.

    Args:
        images: uint8 ``[3, H, W]`` tensors (any sizes).
        crop: crop side in pixels (a multiple of 4).
        short_sides: shorter-side lengths each image is resized to (images already smaller are
            kept once at their own size); sizes below ``crop`` are skipped.
    """

    def __init__(self, images: Sequence[Tensor], *, crop: int = 64,
                 short_sides: Sequence[int] = (256, 384, 512)) -> None:
        if crop % 4:
            raise ValueError(f"crop must be a multiple of 4, got {crop}")
        if not short_sides or min(short_sides) <= 0:
            raise ValueError(f"short_sides must be positive pixel counts, got {tuple(short_sides)}")
        self.crop = crop
        pool: list[Tensor] = []
        for img in images:
            short = min(img.shape[-2:])
            factors = sorted({min(1.0, s / short) for s in short_sides})
            for f in factors:
                scaled = _downscale(img, f)
                if min(scaled.shape[-2:]) >= crop:
                    pool.append(scaled)
        if not pool:
            raise ValueError(f"no image is at least {crop}x{crop} pixels at any scale")
        self.pool = pool
        areas = torch.tensor([p.shape[-1] * p.shape[-2] for p in pool], dtype=torch.float64)
        self.weights = areas / areas.sum()
        log.info("crop sampler: %d images x scales -> %d sources, %.1f Mpx", len(images), len(pool),
                 float(areas.sum()) / 1e6)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """A float ``[batch, 3, crop, crop]`` batch in [0, 1]."""
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        u = torch.rand(batch, 3, generator=generator, dtype=torch.float64)
        c = self.crop
        out = torch.empty(batch, 3, c, c, dtype=torch.uint8)
        for b in range(batch):  # one slice per crop: a copy, no per-pixel work
            src = self.pool[int(idx[b])]
            h, w = src.shape[-2:]
            top, left = int(u[b, 0] * (h - c + 1)), int(u[b, 1] * (w - c + 1))
            patch = src[:, top:top + c, left:left + c]
            out[b] = patch.flip(-1) if u[b, 2] < 0.5 else patch
        return out.float() / 255.0
