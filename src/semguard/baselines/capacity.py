"""Ideal-code separation limit: JPEG/WebP at the channel's capacity.

The image is compressed at the LARGEST codec quality whose file fits the bits an ideal
(capacity-achieving, error-free, infinitely long) channel code could carry in ``n`` complex
channel uses: ``n * log2(1 + SNR)`` with ``SNR = Es/N0`` linear (ARCHITECTURE.md, "Separation
baseline rate").  Over fading the budget is ``sum_i log2(1 + |h_i|^2 SNR)`` with the true
coefficients of the transmitted block — *oracle rate adaptation*: the transmitter is assumed
to know the instantaneous post-equalisation SNR, so the ideal code never fails.  This is an
upper bound on any separate source-channel scheme with that source codec (Shannon 1948), not
a system that can be built; :mod:`semguard.baselines.link` is the real, failing one.

When even the lowest quality does not fit, nothing is decodable and the receiver outputs a
flat grey image (0.5 in every channel).  Header overhead counts against the budget, honestly:
a Pillow JPEG (optimised Huffman tables) carries ~280 bytes of headers (quantisation and
Huffman tables, markers; 300-380 bytes up to the first scan on a 256x256 photo), a WebP file
~30 bytes of RIFF/VP8 headers, but libwebp's smallest lossy file is larger than libjpeg's on
small photos (256x256 astronaut: WebP quality 0 is 1662 bytes, JPEG quality 1 is 1390), so
at the lowest budgets JPEG can fit where WebP cannot.

JPEG runs with 4:2:0 or 4:4:4 chroma; ``subsampling="auto"`` (the default) encodes both at the
budget and sends whichever decodes with the higher PSNR, as a transmitter that knows its image
can.  ``best_capacity`` does the same per image over JPEG (both chroma modes) and WebP: the
ideal-code limit of these codecs, not the better codec by the mean over the set.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from semguard.baselines._image import (check_call, check_subsampling, decode_image, encode_image, from_uint8,
                                       GREY_LEVEL, grey, pil_format, psnr_db, to_uint8)
from semguard.channels.base import Channel
from semguard.registry import register

__all__ = ["QUALITY_RANGE", "capacity_bits", "block_capacity_bits", "encode_at_budget", "Encoding",
           "codec_candidates", "best_encoding", "CapacityBaseline", "best_capacity"]

log = logging.getLogger(__name__)

# Pillow's quality ranges: libjpeg clamps 0 to 1; libwebp's lossy quality 0 is a real setting
# (on a 256x256 photo: 1662 bytes at 0 vs 2316 at 1), worth having when the budget is tight
QUALITY_RANGE: dict[str, tuple[int, int]] = {"jpeg": (1, 100), "webp": (0, 100)}
# after bisection, qualities this far above the boundary are also tried, so a locally
# non-monotone size curve (a larger quality giving a smaller file) cannot hide a fitting quality
_SCAN_ABOVE = 3
# file size per (image digest, format, chroma, quality), shared by every budget search in the process:
# a sweep searches the same image at many budgets (each MCS, each SNR), and sizes are a pure function
# of these four, so each quality of each image is encoded once (bounded LRU, ~100 bytes an entry)
_SIZE_CACHE: OrderedDict[tuple[str, str, str, int], int] = OrderedDict()
_SIZE_CACHE_ENTRIES = 200_000


def capacity_bits(n: int, snr_db: float) -> float:
    """AWGN capacity of ``n`` complex channel uses: ``n * log2(1 + 10^(snr_db/10))`` bits."""
    if n < 0:
        raise ValueError(f"n (complex channel uses) must be >= 0, got {n}")
    return n * math.log2(1.0 + 10.0 ** (snr_db / 10.0))


def block_capacity_bits(h: Tensor, snr_db: Tensor | float) -> Tensor:
    """Capacity of fading blocks with receiver and transmitter CSI, ``[B]`` bits.

    ``sum_i log2(1 + |h_i|^2 SNR)`` over the ``n`` symbols of each block; ``h`` is ``[B, n]``
    complex, ``snr_db`` a scalar or ``[B]`` (Es/N0).  Equals :func:`capacity_bits` for ``h = 1``.
    """
    if h.dim() != 2:
        raise ValueError(f"h must be [B, n] fading coefficients, got shape {tuple(h.shape)}")
    snr = torch.pow(10.0, torch.as_tensor(snr_db, dtype=torch.float64, device=h.device) / 10.0)
    snr = snr.reshape(-1, 1) if snr.dim() == 1 else snr
    gain = h.abs().to(torch.float64).square()
    return torch.log2(1.0 + gain * snr).sum(dim=-1)


def encode_at_budget(img_uint8: np.ndarray, fmt: str, budget_bits: float, *,
                     subsampling: str = "4:2:0") -> tuple[bytes, int | None]:
    """Compress at the largest quality whose file size in bits is <= ``budget_bits``.

    Args:
        img_uint8: one image ``[H, W, 3]`` uint8.
        fmt: ``"jpeg"`` or ``"webp"``.
        budget_bits: the bit budget (file bits, headers included).
        subsampling: JPEG chroma subsampling (``"4:2:0"``, ``"4:2:2"``, ``"4:4:4"``; WebP ignores it).

    Returns:
        ``(data, quality)``, quality in :data:`QUALITY_RANGE` (JPEG 1..100, WebP 0..100);
        ``(b"", None)`` when even the lowest quality does not fit.

    Bisection over quality assumes file size grows with quality (true for libjpeg and libwebp
    on natural images: checked over all 100 qualities on a 256x256 photo); after it, the
    qualities up to ``_SCAN_ABOVE`` above the boundary are tried too and the largest fitting
    one wins, which absorbs small non-monotone steps.  ~8-11 encodes per image on the first search;
    later searches of the same image (other budgets) read the sizes found so far from a
    per-process cache and encode only the qualities not seen yet, plus the one returned.
    """
    if not isinstance(img_uint8, np.ndarray) or img_uint8.dtype != np.uint8 \
            or img_uint8.ndim != 3 or img_uint8.shape[2] != 3:
        desc = (f"{img_uint8.dtype} {img_uint8.shape}" if isinstance(img_uint8, np.ndarray)
                else type(img_uint8).__name__)
        raise ValueError(f"img_uint8 must be a uint8 array [H, W, 3], got {desc}")
    pil_format(fmt)
    check_subsampling(subsampling)
    if not math.isfinite(budget_bits):
        raise ValueError(f"budget_bits must be finite, got {budget_bits}")
    cache: dict[int, bytes] = {}
    digest = hashlib.sha256(img_uint8.tobytes()).hexdigest() + f"|{img_uint8.shape}"

    def enc(q: int) -> bytes:
        if q not in cache:
            cache[q] = encode_image(img_uint8, fmt, q, subsampling=subsampling)
            _SIZE_CACHE[(digest, fmt.lower(), subsampling, q)] = len(cache[q])
            if len(_SIZE_CACHE) > _SIZE_CACHE_ENTRIES:
                _SIZE_CACHE.popitem(last=False)
        return cache[q]

    def fits(q: int) -> bool:
        size = _SIZE_CACHE.get((digest, fmt.lower(), subsampling, q))
        return 8 * (len(enc(q)) if size is None else size) <= budget_bits

    q_min, q_max = QUALITY_RANGE[fmt.lower()]
    if not fits(q_min):
        return b"", None
    lo, hi = q_min, q_max
    if fits(hi):
        return enc(hi), hi
    while hi - lo > 1:  # invariant: fits(lo) and not fits(hi)
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    best = lo
    for q in range(hi + 1, min(q_max, hi + _SCAN_ABOVE) + 1):
        if fits(q):
            best = q
    return enc(best), best


@dataclass(frozen=True)
class Encoding:
    """One image's file at a budget: ``data`` (b"" when nothing fits), its codec settings and the
    PSNR (dB) it decodes to (that of flat grey when nothing fits)."""

    data: bytes
    fmt: str
    subsampling: str | None
    quality: int | None
    psnr: float


def codec_candidates(fmt: str, subsampling: str = "auto") -> tuple[tuple[str, str | None], ...]:
    """``(fmt, subsampling)`` pairs a transmitter chooses among: ``fmt`` is ``"jpeg"``, ``"webp"`` or
    ``"best"`` (both); JPEG's ``subsampling`` is a mode or ``"auto"`` (4:2:0 and 4:4:4)."""
    key = fmt.lower()
    if key != "best":
        pil_format(key)
    if subsampling != "auto":
        check_subsampling(subsampling)
    jpeg = (("jpeg", "4:2:0"), ("jpeg", "4:4:4")) if subsampling == "auto" else (("jpeg", subsampling),)
    return {"jpeg": jpeg, "webp": (("webp", None),), "best": jpeg + (("webp", None),)}[key]


def best_encoding(img_uint8: np.ndarray, img_float: np.ndarray, candidates: tuple[tuple[str, str | None], ...],
                  budget_bits: float) -> Encoding:
    """Each candidate at the largest quality that fits ``budget_bits`` (:func:`encode_at_budget`),
    decoded; the one with the highest PSNR against ``img_float [H, W, 3]`` in [0, 1] wins (ties: the
    first).  What a transmitter that knows its image and its budget sends."""
    h, w = img_uint8.shape[:2]
    grey_psnr = psnr_db(np.full(img_float.shape, GREY_LEVEL * 255.0), img_float)
    best = Encoding(b"", candidates[0][0], candidates[0][1], None, grey_psnr)
    for fmt, sub in candidates:
        data, quality = encode_at_budget(img_uint8, fmt, budget_bits, subsampling=sub or "4:2:0")
        if not data:
            continue
        value = psnr_db(decode_image(data, h, w), img_float)
        if not best.data or value > best.psnr:
            best = Encoding(data, fmt, sub, quality, value)
    return best


class CapacityBaseline:
    """JPEG, WebP or the better of both per image at the ideal-code budget (oracle rate
    adaptation on fading channels).

    Args:
        fmt: ``"jpeg"``, ``"webp"`` or ``"best"`` (per image, whichever decodes better).
        subsampling: JPEG chroma: ``"auto"`` (per image the better of 4:2:0 and 4:4:4), or a mode.

    Call: ``(images [B,3,H,W] in [0,1], channel, snr_db, n_symbols, *, generator=None)`` ->
    ``{"x_hat": [B,3,H,W], "bits": [B] file bits sent (0 when nothing fits), "info": [...]}``
    with per-image ``info`` dicts ``quality`` (None: nothing fits), ``format``, ``subsampling``,
    ``mcs`` (``"ideal"``), ``success``, ``budget_bits``.  ``generator`` only draws the fading; no
    noise is simulated because the ideal code is error-free below capacity.
    """

    def __init__(self, *, fmt: str = "webp", subsampling: str = "auto") -> None:
        self.candidates = codec_candidates(fmt, subsampling)
        self.fmt = fmt.lower()
        self.subsampling = subsampling

    def __repr__(self) -> str:
        return f"CapacityBaseline(fmt={self.fmt!r}, subsampling={self.subsampling!r})"

    def __call__(self, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        check_call(images, channel, snr_db, n_symbols)
        b, _, height, width = images.shape
        state = channel.sample_state(b, n_symbols, snr_db, generator=generator)
        budgets = block_capacity_bits(state.h, snr_db).tolist()
        pixels = to_uint8(images)
        floats = images.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        x_hat = grey(b, height, width, images)
        bits = torch.zeros(b, dtype=torch.int64)
        info: list[dict[str, Any]] = []
        for i in range(b):  # one codec search per image: the codec is the work here
            enc = best_encoding(pixels[i], floats[i], self.candidates, budgets[i])
            if enc.data:
                x_hat[i] = from_uint8(decode_image(enc.data, height, width)[None], images)[0]
                bits[i] = 8 * len(enc.data)
            info.append({"quality": enc.quality, "format": enc.fmt if enc.data else None,
                         "subsampling": enc.subsampling if enc.data else None, "mcs": "ideal",
                         "success": bool(enc.data), "budget_bits": budgets[i]})
        log.debug("%s: snr %.1f dB, n %d, qualities %s", self, snr_db, n_symbols,
                  [d["quality"] for d in info])
        return {"x_hat": x_hat, "bits": bits, "info": info}


@register("baseline", "jpeg_capacity")
def jpeg_capacity(**kwargs: Any) -> CapacityBaseline:
    """JPEG (per image the better of 4:2:0 and 4:4:4 chroma) at the ideal-code budget ``n log2(1 + SNR)``."""
    return CapacityBaseline(fmt="jpeg", **kwargs)


@register("baseline", "webp_capacity")
def webp_capacity() -> CapacityBaseline:
    """WebP at the ideal-code budget ``n log2(1 + SNR)``."""
    return CapacityBaseline(fmt="webp")


@register("baseline", "best_capacity")
def best_capacity(**kwargs: Any) -> CapacityBaseline:
    """Per image the best of JPEG 4:2:0, JPEG 4:4:4 and WebP at the ideal-code budget: the
    ideal-code limit of separate coding with these codecs."""
    return CapacityBaseline(fmt="best", **kwargs)
