"""Randomized smoothing (Cohen, Rosenfeld, Kolter, "Certified Adversarial Robustness via Randomized
Smoothing", ICML 2019): CERTIFY with a Clopper-Pearson bound, on the input and in the symbol domain.

The smoothed classifier ``g(z) = argmax_c P(f(z + e) = c)``, ``e ~ N(0, sigma^2 I)``, keeps its decision
for every ``||delta||_2 < sigma * Phi^-1(p_A)`` when ``P(f(z + e) = c_A) >= p_A > 1/2``.  CERTIFY picks
``c_A`` from ``n0`` selection draws, bounds ``p_A`` below from ``n`` fresh estimation draws with a
one-sided Clopper-Pearson bound at level ``1 - alpha``, and abstains when that bound is below 1/2.

The base classifier here is the whole link (encoder, channel, decoder), itself random through the
channel noise; the theorem still holds because that randomness is independent of the smoothing noise
(``z -> P(f(z + e, w) = c)`` is the Gaussian convolution of a function into [0, 1]).

Surfaces:

* ``input``: ``e`` is added to the image before the encoder (no clipping, as Cohen et al.); the radius is
  an l2 radius on inputs in [0, 1].
* ``symbols``: over AWGN the receiver sees ``x + delta + w``; it adds its own ``CN(0, extra_n0)`` draws
  and votes.  The channel's own noise already smooths: with ``w ~ CN(0, N0)`` each real dimension carries
  variance ``(N0 + extra_n0) / 2``, so ``sigma = sqrt((N0 + extra_n0) / 2)`` (``extra_n0 = 0``: the
  channel noise alone).  The certified l2 radius around the transmitted block ``x`` (complex l2 equals
  the real l2 in R^{2n}) converts to a PSR bound ``10 log10(R^2 / (P_x n))``
  (:func:`semguard.channels.functional.psr_radius` inverted): every jammer whose received perturbation,
  drawn independently of the noise, stays under that PSR leaves the vote's decision unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.stats import beta, norm
from torch import Tensor

from semguard.channels.awgn import AWGN
from semguard.link import Link
from semguard.registry import register

__all__ = ["clopper_pearson_lower", "certified_radius", "radius_to_psr_db", "certify_counts",
           "Certification", "SmoothedClassifier", "ABSTAIN"]

#: the class CERTIFY returns when it abstains
ABSTAIN = -1


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` Clopper-Pearson lower bound on a binomial proportion from ``k`` of ``n``.

    ``Beta(alpha; k, n - k + 1)`` quantile (0 when ``k = 0``); Cohen et al.'s ``LowerConfBound``."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"counts: need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def certified_radius(p_lower: float, sigma: float) -> float:
    """Cohen et al.'s l2 radius ``sigma * Phi^-1(p_lower)`` (0 when ``p_lower <= 1/2``: no certificate)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not 0.0 <= p_lower <= 1.0:
        raise ValueError(f"p_lower must be in [0, 1], got {p_lower}")
    return 0.0 if p_lower <= 0.5 else float(sigma * norm.ppf(p_lower))


def radius_to_psr_db(radius: float, n: int, signal_power: float = 1.0) -> float:
    """The PSR (dB) whose l2 ball around an ``n``-symbol block of mean power ``signal_power`` has
    radius ``radius`` (inverse of ``psr_radius``); ``-inf`` for radius 0."""
    if radius < 0 or n < 1 or not signal_power > 0:
        raise ValueError(f"need radius >= 0, n >= 1, signal_power > 0; got {radius}, {n}, {signal_power}")
    return -math.inf if radius == 0 else 10.0 * math.log10(radius ** 2 / (signal_power * n))


def certify_counts(counts0: Tensor, counts: Tensor, alpha: float, sigma: float) -> tuple[int, float, float]:
    """CERTIFY from class counts: selection ``counts0 [C]`` and estimation ``counts [C]``.

    Returns ``(class, p_lower, radius)``; class :data:`ABSTAIN` and radius 0 when ``p_lower < 1/2``."""
    c_a = int(torch.argmax(counts0))
    n = int(counts.sum())
    p_lower = clopper_pearson_lower(int(counts[c_a]), n, alpha)
    if p_lower < 0.5:
        return ABSTAIN, p_lower, 0.0
    return c_a, p_lower, certified_radius(p_lower, sigma)


@dataclass(frozen=True)
class Certification:
    """CERTIFY's answer per source.

    Attributes:
        prediction: certified class per source ``[N]`` (:data:`ABSTAIN` when it abstains).
        p_lower: the Clopper-Pearson lower bound on ``p_A`` ``[N]``.
        radius: certified l2 radius ``[N]`` (0 on abstention): input units, or received-symbol units.
        psr_db: the radius as a PSR bound ``[N]`` (symbols surface; None on the input).
        sigma: smoothing standard deviation per real dimension.
    """

    prediction: Tensor
    p_lower: Tensor
    radius: Tensor
    psr_db: Tensor | None
    sigma: float

    def certified_accuracy(self, labels: Tensor, budget: float) -> float:
        """Fraction certified correct at ``budget`` (an l2 radius, or a PSR in dB on the symbols)."""
        held = self.radius >= budget if self.psr_db is None else self.psr_db >= budget
        return float(((self.prediction == labels) & held).float().mean())

    @property
    def abstain_rate(self) -> float:
        return float((self.prediction == ABSTAIN).float().mean())


@register("defense", "smoothing")
class SmoothedClassifier:
    """A task link smoothed by Gaussian noise on ``surface``; :meth:`certify` runs CERTIFY.

    Args:
        link: a :class:`Link` whose codec outputs class logits.
        surface: ``"input"`` (``sigma`` on the image) or ``"symbols"`` (``extra_n0`` on the received
            block, AWGN only).
        sigma: input smoothing standard deviation (``input``).
        extra_n0: the receiver's added complex noise power (``symbols``; 0: the channel noise alone).
        batch: forward passes per call.
    """

    def __init__(self, link: Link, *, surface: str = "input", sigma: float | None = None,
                 extra_n0: float = 0.0, batch: int = 1000) -> None:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if link.codec.output_key != "logits":
            raise ValueError(f"codec: smoothing certifies a classifier (logits), not a "
                             f"{link.codec.output_key!r} codec")
        if surface not in ("input", "symbols"):
            raise ValueError(f"surface must be 'input' or 'symbols', got {surface!r}")
        if surface == "input" and (sigma is None or not sigma > 0):
            raise ValueError(f"sigma: the input surface needs a smoothing sigma > 0, got {sigma}")
        if surface == "symbols":
            if not isinstance(link.channel, AWGN):
                raise ValueError(f"channel: symbol-domain smoothing uses the AWGN channel's own noise, got "
                                 f"{type(link.channel).__name__}")
            if sigma is not None:
                raise ValueError("sigma: the symbols surface takes extra_n0 (its sigma follows from N0)")
            if not extra_n0 >= 0:
                raise ValueError(f"extra_n0 must be >= 0, got {extra_n0}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.link, self.surface, self.batch = link, surface, int(batch)
        self.sigma_input, self.extra_n0 = sigma, float(extra_n0)

    def sigma(self, snr_db: float) -> float:
        """Smoothing standard deviation per real dimension at ``snr_db``."""
        if self.surface == "input":
            assert self.sigma_input is not None
            return float(self.sigma_input)
        return math.sqrt((10 ** (-snr_db / 10) + self.extra_n0) / 2)

    @torch.no_grad()
    def sample(self, source: Tensor, snr_db: float, num: int, generator: torch.Generator,
               symbols: Tensor | None = None) -> Tensor:
        """Class counts ``[C]`` of ``num`` noisy decisions on one source ``[1, ...]`` (``symbols``: the
        transmitted block ``[1, n]`` to use instead of encoding, e.g. with a jammer's delta added)."""
        counts: Tensor | None = None
        left = num
        link = self.link
        if self.surface == "symbols" and symbols is None:
            symbols = link.codec.encode(source, torch.tensor([snr_db]))
        while left > 0:
            b = min(self.batch, left)
            src = source.expand(b, *source.shape[1:])
            if self.surface == "input":
                assert self.sigma_input is not None
                noisy = src + self.sigma_input * torch.randn(src.shape, generator=generator)
                logits = link(noisy, snr_db, generator=generator)["output"]
            else:
                assert symbols is not None
                # one CN(0, N0 + extra_n0) draw: the channel's noise plus the receiver's own
                snr_tot = -10 * math.log10(10 ** (-snr_db / 10) + self.extra_n0)
                logits = link(src, snr_tot, generator=generator, symbols=symbols.expand(b, -1))["output"]
            c = torch.bincount(logits.argmax(1), minlength=logits.shape[1])
            counts = c if counts is None else counts + c
            left -= b
        assert counts is not None
        return counts

    def certify(self, sources: Tensor, snr_db: float, *, n0: int = 100, n: int = 1000, alpha: float = 0.001,
                seed: int = 0) -> Certification:
        """CERTIFY every source of ``sources [N, ...]`` at Bob's ``snr_db``.

        ``n0`` selection draws, ``n`` estimation draws, confidence ``1 - alpha`` per source; one generator
        seeded with ``seed`` drives every draw, so a seed reproduces the certificate."""
        if n0 < 1 or n < 1:
            raise ValueError(f"n0 and n must be >= 1, got n0={n0}, n={n}")
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.link.codec.check_source(sources)
        sigma = self.sigma(snr_db)
        gen = torch.Generator().manual_seed(int(seed))
        preds, lows, radii = [], [], []
        modes = [(m, m.training) for m in self.link.modules()]  # restored module by module
        self.link.eval()
        try:
            for i in range(sources.shape[0]):
                s = sources[i:i + 1]
                c0 = self.sample(s, snr_db, n0, gen)
                c1 = self.sample(s, snr_db, n, gen)
                c, p, r = certify_counts(c0, c1, alpha, sigma)
                preds.append(c)
                lows.append(p)
                radii.append(r)
        finally:
            for m, t in modes:
                m.train(t)
        radius = torch.tensor(radii, dtype=torch.float64)
        psr = None
        if self.surface == "symbols":
            nsym = self.link.n_symbols(tuple(sources.shape[1:]))
            psr = torch.tensor([radius_to_psr_db(float(r), nsym) for r in radius], dtype=torch.float64)
        return Certification(torch.tensor(preds), torch.tensor(lows, dtype=torch.float64), radius, psr, sigma)
