"""Measure image fidelity over a channel: a learned codec or a separation baseline."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.evaluation.metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr, ssim

__all__ = ["fidelity", "eval_codec", "eval_baseline"]


def fidelity(x_hat: Tensor, x: Tensor) -> dict[str, float]:
    """Mean PSNR (dB), SSIM and (for images >= 161 px) MS-SSIM of a batch."""
    out = {"psnr": float(psnr(x_hat, x).mean()), "ssim": float(ssim(x_hat, x).mean())}
    if min(x.shape[-2:]) >= MS_SSIM_MIN_SIDE:
        out["ms_ssim"] = float(ms_ssim(x_hat, x).mean())
    return out


@torch.no_grad()
def eval_codec(codec: SemanticCodec, images: Tensor, channel: Channel, snr_db: float, *,
               realizations: int = 1, seed: int = 0, batch: int = 8) -> dict[str, float]:
    """Average fidelity of ``codec`` on ``images [N, 3, H, W]`` over ``realizations`` channel draws."""
    codec.eval()
    device = next(codec.parameters()).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    sums: dict[str, float] = {}
    count = 0
    for _ in range(realizations):
        for i in range(0, images.shape[0], batch):
            x = images[i:i + batch].to(device)
            x_hat = codec(x, channel, snr_db, generator=gen)["x_hat"]
            for k, v in fidelity(x_hat, x).items():
                sums[k] = sums.get(k, 0.0) + v * x.shape[0]
            count += x.shape[0]
    return {k: v / count for k, v in sums.items()}


def eval_baseline(baseline: Any, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                  realizations: int = 1, seed: int = 0) -> dict[str, float]:
    """Average fidelity of a separation baseline; also the fraction of images delivered and, when
    the baseline reports it per image (the fading AMC), the mean ``psnr_expected``."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    sums: dict[str, float] = {}
    delivered = 0
    expected: list[float] = []
    for _ in range(realizations):
        out = baseline(images, channel, snr_db, n_symbols, generator=gen)
        for k, v in fidelity(out["x_hat"], images).items():
            sums[k] = sums.get(k, 0.0) + v
        delivered += sum(bool(i.get("success", True)) for i in out["info"])
        expected += [i["psnr_expected"] for i in out["info"] if "psnr_expected" in i]
    res = {k: v / realizations for k, v in sums.items()}
    res["delivered"] = delivered / (realizations * images.shape[0])
    if expected and len(expected) == realizations * images.shape[0]:
        res["psnr_expected"] = sum(expected) / len(expected)
    return res
