"""Median smoothing of a reconstruction receiver, and a certified lower bound on its PSNR inside a
PSR ball (Chiang, Curry, Abdelkader, Kumar, Dickerson, Goldstein, "Detection as Regression:
Certified Object Detection by Median Smoothing", NeurIPS 2020).

Percentile smoothing.  For a function ``f: R^d -> R`` and ``G ~ N(0, sigma^2 I)`` let ``h_p(z)`` be
the ``p``-th percentile of ``f(z + G)``.  Chiang et al.'s theorem: for every ``||delta||_2 <= eps``,

    h_{p_-}(z) <= h_p(z + delta) <= h_{p_+}(z),    p_+- = Phi(Phi^-1(p) +- eps / sigma).

With ``n`` draws ``y_(1) <= ... <= y_(n)`` the two outer percentiles are bounded by order statistics:
``y_(k)`` is below ``h_{p_-}`` with probability ``>= 1 - alpha`` when ``P(Bin(n, p_-) < k) <= alpha``
(:func:`order_statistic_bounds`); above ``p_+`` symmetrically.  A rank that no ``k`` reaches leaves
the bound at the codomain's end (0 or 1 for a pixel).

Here the receiver of a reconstruction codec over AWGN gets one block ``y = x + w + delta`` (``w`` the
channel noise, ``delta`` the jammer's received perturbation) and adds ``m`` draws of its own noise
``v ~ CN(0, extra_n0)``, so ``sigma = sqrt(extra_n0 / 2)`` per real dimension.  Two certificates, both
conditional on the realised channel noise ``w`` and valid for any ``delta`` with
``||delta||_2 <= sqrt(10^(psr/10) P_x n)`` (the PSR ball; the jammer may know everything, ``v`` is
the receiver's secret randomness):

* the **median-smoothed output**: each pixel of the receiver's output is the median of its ``m``
  decodes; every pixel's bound interval, Bonferroni over the ``d`` pixels, gives a worst-case MSE,
  hence a certified PSNR of that output (:func:`certified_psnr_of_bounds`);
* the **PSNR percentile**: ``f(z) = PSNR(decode(z), source)`` is itself a scalar; its ``p``-th
  percentile over the receiver's draws is bounded below directly, no Bonferroni.  It reads "with
  probability >= 1 - p, one noisy decode is at least this good", which is what a randomised receiver
  that decodes once delivers.

Why the bound is weak for image codecs: the PSR ball's radius grows as ``sqrt(n)`` in the block
length while ``sigma`` is fixed per dimension, so ``eps / sigma = sqrt(2 * 10^(psr/10) * n / extra_n0)``.
For ``n = 8192`` symbols (a 128x128 RGB crop at cbr 1/6) and PSR -10 dB this is 40 even with
``extra_n0 = 1`` (a receiver at 0 dB SNR): ``p_-`` is 0 to double precision and every bound sits at the
codomain's end.  :func:`required_extra_n0` gives the receiver noise a target ``eps / sigma`` needs; the
classifier certificates of :mod:`semguard.defenses.smoothing` work because a task block is 16 symbols.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.special import ndtr, ndtri
from scipy.stats import binom
from torch import Tensor

from semguard.channels.awgn import AWGN
from semguard.channels.base import as_snr_tensor
from semguard.channels.functional import psr_radius
from semguard.codecs.base import SemanticCodec
from semguard.codecs.switch import SNRSwitch
from semguard.link import Link
from semguard.registry import register

__all__ = ["shifted_percentiles", "order_statistic_bounds", "percentile_bounds", "certified_psnr_of_bounds",
           "required_extra_n0", "min_draws", "required_draws", "PsnrCertificate", "MedianSmoothedReceiver"]


def shifted_percentiles(p: float, eps_over_sigma: float) -> tuple[float, float]:
    """``(p_-, p_+) = Phi(Phi^-1(p) -+ eps/sigma)``, the percentiles that bound ``h_p`` inside the ball."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not (eps_over_sigma >= 0 and math.isfinite(eps_over_sigma)):
        raise ValueError(f"eps/sigma must be finite and >= 0, got {eps_over_sigma}")
    z = float(ndtri(p))
    return float(ndtr(z - eps_over_sigma)), float(ndtr(z + eps_over_sigma))


def order_statistic_bounds(n: int, p_low: float, p_high: float, alpha: float) -> tuple[int | None, int | None]:
    """1-based ranks ``(k_lo, k_hi)`` of ``n`` sorted draws with ``y_(k_lo) <= h_{p_low}`` and
    ``y_(k_hi) >= h_{p_high}``, each with probability ``>= 1 - alpha``; None where no rank does.

    ``k_lo`` is the largest ``k`` with ``P(Bin(n, p_low) <= k - 1) <= alpha``; ``k_hi`` the smallest
    with ``P(Bin(n, p_high) <= k - 1) >= 1 - alpha``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 <= p_low <= p_high <= 1.0:
        raise ValueError(f"need 0 <= p_low <= p_high <= 1, got {p_low}, {p_high}")
    ks = torch.arange(1, n + 1, dtype=torch.float64).numpy()
    lo_ok = binom.cdf(ks - 1, n, p_low) <= alpha
    hi_ok = binom.cdf(ks - 1, n, p_high) >= 1.0 - alpha
    k_lo = int(ks[lo_ok].max()) if lo_ok.any() else None
    k_hi = int(ks[hi_ok].min()) if hi_ok.any() else None
    return k_lo, k_hi


def percentile_bounds(draws: Tensor, p: float, eps_over_sigma: float, alpha: float, *,
                      low: float = -math.inf, high: float = math.inf, presorted: bool = False) -> tuple[Tensor, Tensor]:
    """Bounds on ``h_p(z + delta)`` for every ``||delta|| <= eps``, per coordinate, from ``draws [n, ...]``
    of ``f(z + G)``: ``(lower, upper)`` shaped like one draw, each holding with probability
    ``>= 1 - alpha`` per coordinate; a rank no ``k`` reaches gives ``low`` / ``high``.  ``presorted``:
    ``draws`` is already sorted along its first dimension (one sort serves many radii)."""
    if draws.ndim < 1 or draws.shape[0] < 1:
        raise ValueError(f"draws must be [n, ...] with n >= 1, got {tuple(draws.shape)}")
    n = draws.shape[0]
    p_lo, p_hi = shifted_percentiles(p, eps_over_sigma)
    k_lo, k_hi = order_statistic_bounds(n, p_lo, p_hi, alpha)
    srt = draws if presorted else draws.sort(dim=0).values
    shape = draws.shape[1:]
    lower = srt[k_lo - 1] if k_lo is not None else torch.full(shape, low, dtype=draws.dtype)
    upper = srt[k_hi - 1] if k_hi is not None else torch.full(shape, high, dtype=draws.dtype)
    return lower, upper


def certified_psnr_of_bounds(lower: Tensor, upper: Tensor, source: Tensor, peak: float = 1.0) -> float:
    """The lowest PSNR (dB) of any image inside the per-pixel box ``[lower, upper]`` against ``source``:
    each pixel's error is at most ``max(|lower - s|, |upper - s|)`` (0 inside the box is not assumed)."""
    if not (lower.shape == upper.shape == source.shape):
        raise ValueError(f"lower, upper and source must share a shape, got {tuple(lower.shape)}, "
                         f"{tuple(upper.shape)}, {tuple(source.shape)}")
    err = torch.maximum((lower - source).abs(), (upper - source).abs())
    mse = float(err.double().square().mean())
    return math.inf if mse == 0 else 10.0 * math.log10(peak ** 2 / mse)


def required_extra_n0(psr_db: float, n_symbols: int, eps_over_sigma: float, signal_power: float = 1.0) -> float:
    """The receiver noise power ``extra_n0`` at which the PSR ball has radius ``eps_over_sigma * sigma``
    (``sigma = sqrt(extra_n0 / 2)``): ``2 * 10^(psr/10) * P_x * n / (eps/sigma)^2``."""
    if not eps_over_sigma > 0:
        raise ValueError(f"eps/sigma must be > 0, got {eps_over_sigma}")
    if n_symbols < 1 or not signal_power > 0 or not math.isfinite(psr_db):
        raise ValueError(f"need n >= 1, signal power > 0 and a finite PSR; got {n_symbols}, {signal_power}, {psr_db}")
    return 2.0 * 10.0 ** (psr_db / 10.0) * signal_power * n_symbols / eps_over_sigma ** 2


def min_draws(p: float, alpha: float) -> int:
    """The fewest draws ``n`` whose lowest order statistic bounds the ``p``-th percentile from below at
    confidence ``1 - alpha`` even with no jammer (``(1 - p)^n <= alpha``, the rank ``k = 1`` of
    :func:`order_statistic_bounds`); fewer draws certify nothing at any PSR.  For the median the upper
    rank ``k = n`` needs the same ``n`` (``p^n <= alpha``)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = max(1, math.ceil(math.log(alpha) / math.log1p(-p)))
    while (1.0 - p) ** n > alpha:  # the float log may land one short
        n += 1
    while n > 1 and (1.0 - p) ** (n - 1) <= alpha:
        n -= 1
    return n


def required_draws(pixels: int, p: float, alpha: float) -> int:
    """The fewest draws that certify anything for a ``pixels``-pixel output at confidence ``1 - alpha``:
    the median output's box (``alpha`` split over the pixels, Bonferroni) and the ``p``-th percentile
    of one decode's PSNR (:func:`min_draws` of each)."""
    return max(min_draws(0.5, alpha / pixels), min_draws(p, alpha))


def _sorted_draws(draws: Tensor, columns: int = 4096) -> Tensor:
    """``draws [n, ...]`` sorted along the first dimension, a block of ``columns`` coordinates at a time
    (a whole-tensor sort also allocates int64 indices for every draw of every pixel: 4 GB at 1000
    draws of a 256x256 photo)."""
    flat = draws.reshape(draws.shape[0], -1)
    out = torch.empty_like(flat)
    for i in range(0, flat.shape[1], columns):
        out[:, i:i + columns] = flat[:, i:i + columns].sort(dim=0).values
    return out.view(draws.shape)


def _part_at(codec: SemanticCodec, snr_db: float) -> SemanticCodec:
    """The codec that decodes at ``snr_db``: an :class:`SNRSwitch`'s part there, else the codec itself."""
    if isinstance(codec, SNRSwitch):
        return codec.high if snr_db >= codec.threshold_db else codec.low
    return codec


@dataclass(frozen=True)
class PsnrCertificate:
    """Certified PSNRs (dB) per source at one PSR bound.

    Attributes:
        psr_db: the jammer's received-power bound per block.
        eps_over_sigma: the PSR ball's radius over the smoothing sigma (the largest over the sources).
        median_psnr: PSNR of the median-smoothed output with no jammer ``[N]``.
        median_bound: certified lower bound on the median-smoothed output's PSNR ``[N]``
            (Bonferroni over pixels at level ``alpha``).
        percentile_bound: certified lower bound on the ``p``-th percentile of one noisy decode's PSNR ``[N]``.
        p: that percentile.
    """

    psr_db: float
    eps_over_sigma: float
    median_psnr: Tensor
    median_bound: Tensor
    percentile_bound: Tensor
    p: float


@register("defense", "median-smoothing")
class MedianSmoothedReceiver:
    """A reconstruction link over AWGN whose receiver adds ``draws`` of ``CN(0, extra_n0)`` to the block
    it got and outputs the pixel-wise median of the decodes (:meth:`output`); :meth:`certify` bounds
    that output's PSNR, and the percentiles of one noisy decode's PSNR, inside a PSR ball.

    Args:
        link: a :class:`Link` over :class:`AWGN` whose codec outputs images (``x_hat``) in ``[0, 1]``.
        extra_n0: the receiver's added complex noise power (> 0: the smoothing).
        draws: decodes per block.
        batch: decodes per forward pass.
    """

    def __init__(self, link: Link, *, extra_n0: float, draws: int = 1000, batch: int = 100) -> None:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if link.codec.output_key != "x_hat":
            raise ValueError(f"codec: median smoothing bounds a reconstruction (x_hat), not a "
                             f"{link.codec.output_key!r} codec")
        if not isinstance(link.channel, AWGN):
            raise ValueError(f"channel: the PSR certificate is for AWGN, got {type(link.channel).__name__}")
        if link.cipher is not None:
            raise ValueError("cipher: median smoothing here decodes the received block directly (no cipher)")
        if not (extra_n0 > 0 and math.isfinite(extra_n0)):
            raise ValueError(f"extra_n0 must be finite and > 0, got {extra_n0}")
        if draws < 1 or batch < 1:
            raise ValueError(f"draws and batch must be >= 1, got {draws}, {batch}")
        self.link, self.extra_n0, self.draws, self.batch = link, float(extra_n0), int(draws), int(batch)

    @property
    def sigma(self) -> float:
        """Smoothing standard deviation per real dimension."""
        return math.sqrt(self.extra_n0 / 2)

    @torch.no_grad()
    def decodes(self, received: Tensor, source: Tensor, snr_db: float, generator: torch.Generator) -> Tensor:
        """``draws`` decodes ``[draws, C, H, W]`` of one equalised block ``received [1, n]`` plus the
        receiver's noise; the decoder is told the total noise ``N0 + extra_n0`` (an SNR-switched codec
        keeps the part its transmitter chose at ``snr_db``)."""
        codec, ch = _part_at(self.link.codec, snr_db), self.link.channel
        n = received.shape[-1]
        snr_tot = -10.0 * math.log10(10 ** (-snr_db / 10) + self.extra_n0)
        kw = codec.decode_kwargs(source)
        out: Tensor | None = None  # filled in place: a list and torch.cat would hold every draw twice
        done = 0
        while done < self.draws:
            b = min(self.batch, self.draws - done)
            v = torch.complex(torch.randn(b, n, generator=generator), torch.randn(b, n, generator=generator))
            v = v.to(received.dtype) * self.sigma
            state = ch.sample_state(b, n, as_snr_tensor(snr_tot, b, received.device), generator=generator,
                                    device=received.device)
            dec = codec.decode(received.expand(b, -1) + v, state, **kw).clamp(0, 1)
            if out is None:
                out = dec.new_empty((self.draws, *dec.shape[1:]))
            out[done:done + b] = dec
            done += b
        assert out is not None
        return out

    @torch.no_grad()
    def received(self, source: Tensor, snr_db: float, generator: torch.Generator,
                 interference: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One equalised block ``[1, n]`` of ``source [1, ...]`` through the link (channel noise drawn
        once), and the transmitted block ``[1, n]`` (the PSR's reference at the receiver, AWGN)."""
        r = self.link(source, snr_db, generator=generator, interference=interference, decode=False)
        return r["received"], r["transmitted"]

    @torch.no_grad()
    def output(self, received: Tensor, source: Tensor, snr_db: float, generator: torch.Generator) -> Tensor:
        """The receiver's median-smoothed output ``[1, C, H, W]`` of one received block."""
        return self.decodes(received, source, snr_db, generator).median(dim=0, keepdim=True).values

    def certify(self, sources: Tensor, snr_db: float, psr_db: float, *, alpha: float = 0.001, p: float = 0.5,
                seed: int = 0) -> PsnrCertificate:
        """Certify every source of ``sources [N, C, H, W]`` at Bob's ``snr_db`` against a jammer under
        ``psr_db``: one channel draw per source, ``draws`` receiver draws, confidence ``1 - alpha`` per
        bound (the pixel box Bonferroni-corrected over its pixels)."""
        return self.certify_grid(sources, snr_db, [psr_db], alpha=alpha, p=p, seed=seed)[0]

    def certify_grid(self, sources: Tensor, snr_db: float, psr_db: Sequence[float], *, alpha: float = 0.001,
                     p: float = 0.5, seed: int = 0) -> list[PsnrCertificate]:
        """:meth:`certify` at every PSR of ``psr_db`` from the same draws (one certificate per PSR; each
        holds at ``1 - alpha`` on its own)."""
        psrs = [float(v) for v in psr_db]
        if not psrs or not all(math.isfinite(v) for v in psrs):
            raise ValueError(f"psr_db must be finite values (dB), got {list(psr_db)}")
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        if not 0.0 < p < 1.0:
            raise ValueError(f"p must be in (0, 1), got {p}")
        self.link.codec.check_source(sources)
        pixels = sources[0].numel()
        need = required_draws(pixels, p, alpha)
        if self.draws < need:
            raise ValueError(f"draws: {self.draws} cannot certify at confidence {1 - alpha:g}; the median output's "
                             f"box (alpha / {pixels} pixels) and the {p:g} percentile need at least {need}")
        gen = torch.Generator().manual_seed(int(seed))
        med_psnr: list[float] = []
        ratios: list[list[float]] = [[] for _ in psrs]
        med_bound: list[list[float]] = [[] for _ in psrs]
        pct_bound: list[list[float]] = [[] for _ in psrs]
        modes = [(m, m.training) for m in self.link.modules()]
        self.link.eval()
        try:
            for i in range(sources.shape[0]):
                s = sources[i:i + 1]
                y, x = self.received(s, snr_db, gen)
                d = self.decodes(y, s, snr_db, gen)
                per = torch.cat([(c - s).double().square().flatten(1).mean(1) for c in d.split(self.batch)])
                psnrs = (-10.0 * torch.log10(per.clamp_min(1e-30))).sort().values
                d = _sorted_draws(d)  # one sort for every PSR of the grid
                med = d[(d.shape[0] - 1) // 2]  # the lower median, as torch.median
                mse = float((med - s[0]).double().square().mean())
                med_psnr.append(math.inf if mse == 0 else -10.0 * math.log10(mse))
                for j, psr in enumerate(psrs):
                    e_s = float(psr_radius(x, psr)[0]) / self.sigma
                    ratios[j].append(e_s)
                    lo, hi = percentile_bounds(d, 0.5, e_s, alpha / med.numel(), low=0.0, high=1.0, presorted=True)
                    med_bound[j].append(certified_psnr_of_bounds(lo, hi, s[0]))
                    plo, _ = percentile_bounds(psnrs, p, e_s, alpha, low=-math.inf, presorted=True)
                    pct_bound[j].append(float(plo))
        finally:
            for m, t in modes:
                m.train(t)
        f64 = torch.float64
        medians = torch.tensor(med_psnr, dtype=f64)
        return [PsnrCertificate(psr, max(ratios[j]), medians, torch.tensor(med_bound[j], dtype=f64),
                                torch.tensor(pct_bound[j], dtype=f64), float(p)) for j, psr in enumerate(psrs)]
