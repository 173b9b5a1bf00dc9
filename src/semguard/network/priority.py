"""Priority-aware analog image transmission: unequal protection of the critical region.

SoftCast (Jakubczak and Katabi, MobiCom 2011) scales each PCA coefficient of a block by the gain
that minimises the MSE of a linear scheme (reverse water-filling on ``sqrt(lambda)``).  Weighting
the distortion of block ``l`` by its importance ``w_l`` (a region of interest or a saliency map),
the same Lagrangian gives coefficient power ``P_li = (sqrt(w_l lam_i snr / mu) - 1)^+ / snr``:
water-filling on ``sqrt(w_l lam_i)``, i.e. :func:`waterfilling_gains` on ``w_l lam_i`` followed
by ``g_li = g'_li sqrt(w_l)`` so that the mean power stays 1.  ``w = 1`` is SoftCast's own
allocation.  The receiver takes the per-coefficient linear MMSE estimate with the same gains;
the importance map (one weight per 16x16 block) and the image's scale travel as side information.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from semguard.channels.base import ChannelState
from semguard.codecs.analog import AnalogJSCC, waterfilling_gains

__all__ = ["PrioritySoftCast", "jammer", "priority_gains", "region_psnr", "roi_weights", "saliency_weights"]


def priority_gains(lam: Tensor, weights: Tensor, snr: float) -> Tensor:
    """Gains ``[L, k]`` minimising ``sum_l w_l sum_i lam_i / (1 + g_li^2 lam_i snr)`` at
    ``mean(g^2 lam) = 1``; ``lam [k]`` coefficient variances, ``weights [L]`` positive."""
    if lam.dim() != 1 or weights.dim() != 1:
        raise ValueError(f"lam must be [k] and weights [L], got {tuple(lam.shape)} and {tuple(weights.shape)}")
    if not (weights > 0).all() or not (lam > 0).all():
        raise ValueError("importance weights and coefficient variances must be > 0")
    if not snr > 0:
        raise ValueError(f"design snr must be > 0 (linear), got {snr}")
    eff = (weights.double().unsqueeze(1) * lam.double().unsqueeze(0)).flatten()
    g = waterfilling_gains(eff, snr).double().view(weights.shape[0], lam.shape[0])
    return (g * weights.double().sqrt().unsqueeze(1)).float()


def roi_weights(size: tuple[int, int], box: tuple[int, int, int, int], *, block: int = 16,
                weight: float = 16.0) -> tuple[Tensor, Tensor]:
    """Blocks overlapping the pixel box ``(top, left, height, width)`` get ``weight``, others 1.

    Returns ``(weights [L] in raster block order, pixel mask [H, W] bool of the box)``.
    """
    h, w = size
    top, left, bh, bw = box
    if not (0 <= top < top + bh <= h and 0 <= left < left + bw <= w):
        raise ValueError(f"region of interest {box} does not fit an image of size {size}")
    if weight <= 0:
        raise ValueError(f"region weight must be > 0, got {weight}")
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[top:top + bh, left:left + bw] = True
    blocks = F.unfold(mask.float()[None, None], block, stride=block)[0].amax(0) > 0   # [L]
    return torch.where(blocks, weight, 1.0), mask


def saliency_weights(image: Tensor, *, block: int = 16, floor: float = 0.25) -> Tensor:
    """Block weights ``[L]`` from local contrast (the block's pixel standard deviation), mean 1."""
    if image.dim() != 3:
        raise ValueError(f"saliency needs one image [3, H, W], got {tuple(image.shape)}")
    s = F.unfold(image[None], block, stride=block)[0].std(0)
    s = s / s.mean().clamp_min(1e-8)
    w = s.clamp_min(floor)
    return w / w.mean()


def region_psnr(x_hat: Tensor, x: Tensor, mask: Tensor) -> Tensor:
    """PSNR (peak 1) over the pixels in ``mask [H, W]`` per image: ``[B]``."""
    m = mask.to(x.dtype).expand_as(x)
    mse = ((x_hat - x).square() * m).sum((1, 2, 3)) / m.sum((1, 2, 3))
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


class PrioritySoftCast:
    """SoftCast's fitted linear path (basis, mean, variances of a shipped :class:`AnalogJSCC`)
    with per-block gains from :func:`priority_gains`.  ``weights=None``: uniform importance.

    Symbols ``[B, L*k/2]`` complex, unit mean power per image; no meta symbols (the scale is
    side information here), so ``uniform`` is SoftCast's allocation without its 32 meta symbols.
    """

    def __init__(self, codec: AnalogJSCC, *, design_snr_db: float = 10.0) -> None:
        if not isinstance(codec, AnalogJSCC):
            raise ValueError(f"PrioritySoftCast needs an AnalogJSCC codec, got {type(codec).__name__}")
        self.codec = codec
        self.design_snr = 10 ** (design_snr_db / 10)
        self.lam = codec.log_lam.detach().exp()

    def gains(self, weights: Tensor | None, n_blocks: int) -> Tensor:
        w = torch.ones(n_blocks) if weights is None else weights
        if w.shape != (n_blocks,):
            raise ValueError(f"importance weights must be [{n_blocks}] (one per block), got {tuple(w.shape)}")
        return priority_gains(self.lam, w, self.design_snr)

    @torch.no_grad()
    def encode(self, images: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``[B, 3, H, W]`` -> (symbols ``[B, n]``, scale ``[B, 1]`` side information)."""
        c = self.codec
        blocks = c._blocks(images.float())                                       # [B, L, d]
        coef = (blocks - c.mean) @ (c.enc_basis.T / c._root_d)                   # [B, L, k]
        u = coef * self.gains(weights, blocks.shape[1])
        scale = u.square().mean((1, 2)).mul(2).sqrt().unsqueeze(1)               # complex power 1
        real = (u.flatten(1) / scale).reshape(u.shape[0], -1, 2)
        return torch.view_as_complex(real.contiguous()), scale

    @torch.no_grad()
    def decode(self, y: Tensor, state: ChannelState, scale: Tensor, size: tuple[int, int],
               weights: Tensor | None = None) -> Tensor:
        """Equalised ``y [B, n]`` -> images ``[B, 3, H, W]`` in [0, 1] (per-coefficient LMMSE)."""
        c = self.codec
        b = y.shape[0]
        nb = (size[0] // c.block) * (size[1] // c.block)
        if y.shape[1] * 2 != nb * c.k:
            raise ValueError(f"{y.shape[1]} symbols do not fit {nb} blocks of {c.k} coefficients")
        yz, n0_sym = state.zero_forced(y)
        r = torch.view_as_real(yz).reshape(b, nb, c.k) * scale.unsqueeze(2)
        nv = (0.5 * n0_sym).repeat_interleave(2, dim=1).reshape(b, nb, c.k) * scale.unsqueeze(2).square()
        g = self.gains(weights, nb)
        coef = r * (g * self.lam) / (g.square() * self.lam + nv)
        blocks = coef @ (c.dec_basis / c._root_d) + c.mean
        return F.fold(blocks.transpose(1, 2), size, c.block, stride=c.block).clamp(0, 1)


def jammer(y_shape: tuple[int, int], power: Tensor, *, psr_db: float, fraction: float = 0.25,
           targeted: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """Partial-band Gaussian jamming ``[B, n]``: total power ``psr_db`` relative to the block's signal,
    spread over ``fraction`` of the symbols, random ones or (``targeted``) the ones sent with the
    most power (a jammer that knows the allocation); ``power [B, n]`` is |x|^2 per symbol."""
    if not 0 < fraction <= 1:
        raise ValueError(f"jammed fraction must be in (0, 1], got {fraction}")
    b, n = y_shape
    m = max(1, round(fraction * n))
    if targeted:
        idx = power.topk(m, dim=1).indices
    else:
        idx = torch.rand(b, n, generator=generator).argsort(1)[:, :m]
    per = 10 ** (psr_db / 10) * power.mean(1, keepdim=True) * n / m
    noise = torch.randn(b, m, 2, generator=generator) * (per / 2).sqrt().unsqueeze(2)
    out = torch.zeros(b, n, dtype=torch.complex64)
    return out.scatter(1, idx, torch.view_as_complex(noise.contiguous()))

