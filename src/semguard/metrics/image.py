"""Fidelity metrics: PSNR (peak 1, per image), SSIM / MS-SSIM (pytorch-msssim), accuracy."""

from __future__ import annotations

import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim import ssim as _ssim
from torch import Tensor

__all__ = ["psnr", "ssim", "ms_ssim", "accuracy", "MS_SSIM_MIN_SIDE"]

# pytorch-msssim's 5-scale MS-SSIM with an 11-tap window needs sides > (11 - 1) * 2**4
MS_SSIM_MIN_SIDE = 161


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two image batches [B, C, H, W] of one shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")


def psnr(x_hat: Tensor, x: Tensor, eps: float = 1e-10) -> Tensor:
    """PSNR in dB per image, peak 1, for images in [0, 1]: ``[B]``."""
    _check_pair(x_hat, x)
    mse = (x_hat.float() - x.float()).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(eps))


def ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """SSIM per image (Gaussian window 11, sigma 1.5), ``[B]``."""
    _check_pair(x_hat, x)
    return _ssim(x_hat.float().clamp(0, 1), x.float(), data_range=1.0, size_average=False)


def ms_ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """MS-SSIM per image, ``[B]``; images need both sides >= 161 px (5 scales)."""
    _check_pair(x_hat, x)
    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px a side, got "
                         f"{tuple(x.shape[-2:])}")
    return _ms_ssim(x_hat.float().clamp(0, 1), x.float(), data_range=1.0, size_average=False)


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of correct top-1 decisions (a 0-dim tensor)."""
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [B, K] and labels [B], got {tuple(logits.shape)}, {tuple(labels.shape)}")
    return (logits.argmax(dim=1) == labels).float().mean()
