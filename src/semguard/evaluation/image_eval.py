"""Measure image fidelity over a channel: a learned codec or a separation baseline.

The ``*_samples`` functions return one value per image and channel draw (draw-major: the first
``N`` entries are every image under draw 0), so a report can pair two systems image by image;
``eval_codec`` and ``eval_baseline`` are their means.
"""

from __future__ import annotations


import torch
from torch import Tensor

from semguard.baselines.base import Baseline
from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.link import Link
from semguard.metrics.image import MS_SSIM_MIN_SIDE, ms_ssim, psnr, ssim

__all__ = ["fidelity", "fidelity_per_image", "codec_samples", "baseline_samples", "eval_codec", "eval_baseline"]


def fidelity_per_image(x_hat: Tensor, x: Tensor) -> dict[str, Tensor]:
    """PSNR (dB), SSIM and (for images >= 161 px) MS-SSIM of each image of a batch, ``[B]`` each."""
    out = {"psnr": psnr(x_hat, x), "ssim": ssim(x_hat, x)}
    if min(x.shape[-2:]) >= MS_SSIM_MIN_SIDE:
        out["ms_ssim"] = ms_ssim(x_hat, x)
    return {k: v.detach().float().cpu() for k, v in out.items()}


def fidelity(x_hat: Tensor, x: Tensor) -> dict[str, float]:
    """Mean PSNR (dB), SSIM and (for images >= 161 px) MS-SSIM of a batch."""
    return {k: float(v.mean()) for k, v in fidelity_per_image(x_hat, x).items()}


def _means(samples: dict[str, Tensor]) -> dict[str, float]:
    return {k: float(v.mean()) for k, v in samples.items()}


@torch.no_grad()
def codec_samples(codec: SemanticCodec | Link, images: Tensor, channel: Channel | None, snr_db: float, *,
                  realizations: int = 1, seed: int = 0, batch: int = 8) -> dict[str, Tensor]:
    """Fidelity of a codec over ``channel`` (or of a whole :class:`Link`, ``channel=None``) on each
    of ``images [N, 3, H, W]`` under each of ``realizations`` channel draws: ``[realizations * N]``
    per metric, draw-major."""
    link = codec if isinstance(codec, Link) else Link(codec, channel)
    if isinstance(codec, Link) and channel is not None and channel is not codec.channel:
        raise ValueError("a Link brings its own channel: pass channel=None")
    link.eval()
    device = next(link.codec.parameters()).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    parts: dict[str, list[Tensor]] = {}
    for _ in range(realizations):
        for i in range(0, images.shape[0], batch):
            x = images[i:i + batch].to(device)
            x_hat = link(x, snr_db, generator=gen)["output"]
            for k, v in fidelity_per_image(x_hat, x).items():
                parts.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


def eval_codec(codec: SemanticCodec | Link, images: Tensor, channel: Channel | None, snr_db: float, *,
               realizations: int = 1, seed: int = 0, batch: int = 8) -> dict[str, float]:
    """Average fidelity of ``codec`` on ``images [N, 3, H, W]`` over ``realizations`` channel draws."""
    return _means(codec_samples(codec, images, channel, snr_db, realizations=realizations, seed=seed, batch=batch))


def baseline_samples(baseline: Baseline, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                     realizations: int = 1, seed: int = 0) -> dict[str, Tensor]:
    """Per image and draw (draw-major), a separation baseline's fidelity, the size of the file it
    sent (``file_bytes``, headers included), whether the image was delivered (1/0) and, when the baseline reports it for every image (the fading AMC), the
    ``psnr_expected`` it chose its modulation and coding for."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    parts: dict[str, list[Tensor]] = {}
    for _ in range(realizations):
        out = baseline(images, channel, snr_db, n_symbols, generator=gen)
        for k, v in fidelity_per_image(out["x_hat"], images).items():
            parts.setdefault(k, []).append(v)
        info = out["info"]
        parts.setdefault("file_bytes", []).append(torch.as_tensor(out["bits"]).float().cpu() / 8)
        parts.setdefault("delivered", []).append(torch.tensor([float(bool(i.get("success", True))) for i in info]))
        if all("psnr_expected" in i for i in info):
            parts.setdefault("psnr_expected", []).append(torch.tensor([float(i["psnr_expected"]) for i in info]))
    res = {k: torch.cat(v) for k, v in parts.items()}
    if "psnr_expected" in res and res["psnr_expected"].numel() != res["psnr"].numel():
        del res["psnr_expected"]  # some draws did not report it: no mean over a subset
    return res


def eval_baseline(baseline: Baseline, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                  realizations: int = 1, seed: int = 0) -> dict[str, float]:
    """Average fidelity of a separation baseline; also the fraction of images delivered and, when
    the baseline reports it per image (the fading AMC), the mean ``psnr_expected``."""
    return _means(baseline_samples(baseline, images, channel, snr_db, n_symbols, realizations=realizations,
                                   seed=seed))
