"""Image <-> codec-bytes helpers shared by the separation baselines (private).

Images cross the public boundary as float tensors ``[B, 3, H, W]`` in ``[0, 1]``; the codecs
(Pillow's libjpeg / libwebp) work on ``uint8`` arrays ``[H, W, 3]``.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from semguard.channels.base import Channel

__all__ = ["FORMATS", "ENCODE_OPTIONS", "SUBSAMPLING", "pil_format", "check_call", "to_uint8", "from_uint8",
           "encode_image", "decode_image", "grey", "GREY_LEVEL", "psnr_db", "check_subsampling"]

# public name -> Pillow format name
FORMATS: dict[str, str] = {"jpeg": "JPEG", "webp": "WEBP"}

# The strongest standard settings of each codec: JPEG with optimised Huffman tables (baseline
# sequential; chroma subsampling chosen by the caller, 4:2:0 by default as in Pillow), lossy WebP
# with the slowest/best method (its lossy mode is always 4:2:0).
ENCODE_OPTIONS: dict[str, dict[str, object]] = {"JPEG": {"optimize": True}, "WEBP": {"method": 6}}
# JPEG chroma subsampling -> Pillow's ``subsampling`` code
SUBSAMPLING: dict[str, int] = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}

# what a receiver shows when nothing could be decoded
GREY_LEVEL = 0.5


def pil_format(fmt: str) -> str:
    """``"jpeg"``/``"webp"`` (any case) -> Pillow's format name; ValueError otherwise."""
    key = fmt.lower()
    if key not in FORMATS:
        raise ValueError(f"image format must be one of {sorted(FORMATS)}, got {fmt!r}")
    return FORMATS[key]


def check_call(images: Tensor, channel: Channel, snr_db: float, n_symbols: int) -> None:
    """Boundary checks for a baseline call; raises ValueError/TypeError naming the bad field."""
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [B, 3, H, W], got {shape}")
    if images.shape[0] < 1 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images must be non-empty, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
    lo, hi = float(images.min()), float(images.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    if not isinstance(channel, Channel):
        raise TypeError(f"channel must be a semguard Channel, got {type(channel).__name__}")
    if isinstance(snr_db, bool) or not isinstance(snr_db, (int, float)) or not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite float (Es/N0 in dB), got {snr_db!r}")
    if isinstance(n_symbols, bool) or not isinstance(n_symbols, int) or n_symbols < 1:
        raise ValueError(f"n_symbols must be a positive int (complex channel uses), got {n_symbols!r}")


def to_uint8(images: Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` float in [0, 1] -> ``[B, H, W, 3]`` uint8 (rounded to nearest level)."""
    arr = images.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(arr.permute(0, 2, 3, 1).numpy())


def from_uint8(arr: np.ndarray, like: Tensor) -> Tensor:
    """``[B, H, W, 3]`` uint8 -> ``[B, 3, H, W]`` float in [0, 1] with ``like``'s device/dtype."""
    t = torch.from_numpy(np.array(arr, copy=True)).permute(0, 3, 1, 2)
    return t.to(device=like.device, dtype=like.dtype) / 255.0


def check_subsampling(subsampling: str) -> str:
    """``"4:4:4"``/``"4:2:2"``/``"4:2:0"`` -> itself; ValueError otherwise."""
    if subsampling not in SUBSAMPLING:
        raise ValueError(f"subsampling must be one of {sorted(SUBSAMPLING)}, got {subsampling!r}")
    return subsampling


def encode_image(img: np.ndarray, fmt: str, quality: int, *, subsampling: str = "4:2:0") -> bytes:
    """Compress one ``[H, W, 3]`` uint8 image with Pillow at ``quality`` (1..100); ``subsampling``
    is JPEG's chroma subsampling (ignored for WebP)."""
    name = pil_format(fmt)
    opts = dict(ENCODE_OPTIONS[name])
    if name == "JPEG":
        opts["subsampling"] = SUBSAMPLING[check_subsampling(subsampling)]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=name, quality=int(quality), **opts)
    return buf.getvalue()


def decode_image(data: bytes, height: int, width: int) -> np.ndarray:
    """Decode codec bytes to ``[H, W, 3]`` uint8; trailing padding bytes are ignored by both codecs."""
    with Image.open(io.BytesIO(data)) as im:
        out = np.array(im.convert("RGB"))  # a writable copy
    if out.shape != (height, width, 3):
        raise ValueError(f"decoded image has shape {out.shape}, expected {(height, width, 3)}")
    return out


def grey(batch: int, height: int, width: int, like: Tensor) -> Tensor:
    """Flat grey ``[B, 3, H, W]`` images at :data:`GREY_LEVEL`: the output when nothing decodes."""
    return torch.full((batch, 3, height, width), GREY_LEVEL, dtype=like.dtype, device=like.device)


def psnr_db(x_hat: np.ndarray, x: np.ndarray) -> float:
    """PSNR (dB, peak 1) of a decoded ``[H, W, 3]`` uint8 image against the float original
    ``[H, W, 3]`` in [0, 1] -- the transmitter's own check when it picks a codec per image."""
    from semguard.metrics.image import psnr  # the one PSNR definition

    def batch(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).permute(2, 0, 1).unsqueeze(0)

    return float(psnr(batch(x_hat.astype(np.float64) / 255.0), batch(x)))
