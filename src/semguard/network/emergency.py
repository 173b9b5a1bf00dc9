"""Emergency-network experiments: critical-content fidelity against SNR, priority against uniform.

Images: :class:`~semguard.network.priority.PrioritySoftCast` on the shipped photos, the region of
interest the central quarter (or a saliency map); metric the region's PSNR, optionally with a
partial-band jammer.  Text: :mod:`~semguard.network.emergency_text`.  ``gain_at`` reads off the SNR each scheme needs to reach a fidelity
threshold (linear interpolation on the SNR grid) and their difference in dB.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.network.priority import (
    PrioritySoftCast,
    jammer,
    region_psnr,
    roi_weights,
    saliency_weights,
)
from semguard.registry import build

__all__ = ["gain_at", "image_sweep", "snr_to_reach"]


def snr_to_reach(snrs: Sequence[float], values: Sequence[float], threshold: float) -> float | None:
    """Lowest SNR (linear interpolation) at which ``values`` (increasing in SNR) reach ``threshold``."""
    pts = list(zip(snrs, values))
    if pts[0][1] >= threshold:
        return float(pts[0][0])
    for (s0, v0), (s1, v1) in pairwise(pts):
        if v0 < threshold <= v1:
            return float(s0 + (threshold - v0) * (s1 - s0) / (v1 - v0))
    return None


def gain_at(rows: list[dict], metric: str, threshold: float, *, a: str = "priority", b: str = "uniform",
            key: str = "scheme") -> dict:
    """SNR each of schemes ``a`` and ``b`` needs for ``metric >= threshold``, and ``b``'s minus ``a``'s."""
    out = {}
    for name in (a, b):
        sel = sorted((r["snr_db"], r[metric]) for r in rows if r[key] == name)
        out[name] = snr_to_reach([s for s, _ in sel], [v for _, v in sel], threshold)
    out["gain_db"] = None if None in (out[a], out[b]) else out[b] - out[a]
    out["threshold"] = threshold
    return out


@torch.no_grad()
def image_sweep(images: Tensor, snrs: Sequence[float], *, channel: str = "awgn", weight: float = 16.0,
                roi: tuple[int, int, int, int] | None = None, saliency: bool = False, jam_psr_db: float | None = None,
                jam_targeted: bool = False, seed: int = 0, codec: SemanticCodec | None = None) -> list[dict]:
    """Region PSNR and background PSNR per SNR for uniform and priority allocation."""
    from semguard.codecs.zoo import pretrained
    ps = PrioritySoftCast(codec or pretrained("softcast-cbr1_6"))
    h, w = images.shape[-2:]
    roi = roi or (h // 4, w // 4, h // 2, w // 2)
    wroi, mask = roi_weights((h, w), roi, block=ps.codec.block, weight=weight)
    ch = build("channel", channel)
    rows = []
    for snr in snrs:
        for scheme in ("uniform", "priority"):
            g = torch.Generator().manual_seed(seed)
            psnr_in, psnr_out = [], []
            for i in range(images.shape[0]):
                x = images[i:i + 1]
                wt = None if scheme == "uniform" else (saliency_weights(x[0], block=ps.codec.block) if saliency else wroi)
                s, scale = ps.encode(x, wt)
                st = ch.sample_state(1, s.shape[1], snr, generator=g)
                interf = None
                if jam_psr_db is not None:
                    interf = st.h * jammer(tuple(s.shape), s.abs().square(), psr_db=jam_psr_db, targeted=jam_targeted,
                                           generator=g)
                y = ch.equalize(ch.apply(s, st, generator=g, interference=interf), st)
                xh = ps.decode(y, st, scale, (h, w), wt)
                psnr_in.append(float(region_psnr(xh, x, mask)))
                psnr_out.append(float(region_psnr(xh, x, ~mask)))
            rows.append({"snr_db": snr, "scheme": scheme, "roi_psnr": sum(psnr_in) / len(psnr_in),
                         "background_psnr": sum(psnr_out) / len(psnr_out)})
    return rows
