"""Median smoothing (Chiang et al. 2020): the percentile shift and order-statistic ranks by hand, the
theorem's tightness and the bounds' coverage on a linear function with known percentiles, and the
receiver's certified PSNR never above what an attack inside the PSR ball leaves."""

import math

import pytest
import torch
from scipy.stats import norm

from semguard.channels.awgn import AWGN
from semguard.channels.rayleigh import Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.defenses.median_smoothing import (MedianSmoothedReceiver, certified_psnr_of_bounds,
                                                order_statistic_bounds, percentile_bounds, required_extra_n0,
                                                shifted_percentiles)
from semguard.link import Link
from semguard.registry import build


def test_shifted_percentiles_and_ranks_by_hand():
    lo, hi = shifted_percentiles(0.5, 1.0)
    assert lo == pytest.approx(0.158655254, abs=1e-9) and hi == pytest.approx(0.841344746, abs=1e-9)
    assert shifted_percentiles(0.5, 0.0) == pytest.approx((0.5, 0.5))
    # n = 10, p = 1/2, alpha = 0.05: P(Bin <= 1) = 11/1024 <= 0.05 < P(Bin <= 2) = 56/1024, so k_lo = 2;
    # P(Bin <= 7) = 968/1024 < 0.95 <= P(Bin <= 8) = 1013/1024, so k_hi = 9
    assert order_statistic_bounds(10, 0.5, 0.5, 0.05) == (2, 9)
    # P(Bin(10, 0.01) <= 0) = 0.904 > alpha: no rank bounds the 1st percentile from below
    assert order_statistic_bounds(10, 0.01, 0.99, 0.05) == (None, None)
    # the PSR ball of -10 dB around 8192 unit-power symbols has radius sqrt(819.2); sigma = radius
    # needs extra_n0 = 2 * 819.2
    assert required_extra_n0(-10.0, 8192, 1.0) == pytest.approx(1638.4)


def test_theorem_is_tight_and_bounds_cover_on_a_linear_function():
    """f(z) = a.z under N(0, sigma^2 I): h_p(z) = a.z + sigma |a| Phi^-1(p), and the worst shift
    delta = eps a/|a| moves h_p exactly onto h_{p+-}; the draws' bounds cover it at >= 1 - alpha."""
    gen = torch.Generator().manual_seed(0)
    d, sigma, eps, p, alpha = 20, 0.5, 0.4, 0.5, 0.05
    a = torch.randn(d, generator=gen, dtype=torch.float64)
    z = torch.randn(d, generator=gen, dtype=torch.float64)
    na = float(a.norm())

    def h(point, q):
        return float(a @ point) + sigma * na * float(norm.ppf(q))

    p_lo, p_hi = shifted_percentiles(p, eps / sigma)
    up, down = z + eps * a / na, z - eps * a / na
    assert h(up, p) == pytest.approx(h(z, p_hi), abs=1e-12)
    assert h(down, p) == pytest.approx(h(z, p_lo), abs=1e-12)
    misses, reps = 0, 400
    for _ in range(reps):
        draws = (z + sigma * torch.randn(300, d, generator=gen, dtype=torch.float64)) @ a
        lo, hi = percentile_bounds(draws, p, eps / sigma, alpha)
        misses += int(float(lo) > h(down, p)) + int(float(hi) < h(up, p))
    # each side fails with probability <= alpha: expect <= 40 of 800; allow binomial noise
    assert misses <= 2 * reps * alpha + 3 * math.sqrt(2 * reps * alpha)
    assert misses > 0  # the ranks are not so loose that they never miss


def test_box_psnr_by_hand_and_collapse():
    s = torch.full((1, 2, 2), 0.5)
    lo, hi = torch.full_like(s, 0.4), torch.full_like(s, 0.7)  # worst error 0.2 per pixel
    assert certified_psnr_of_bounds(lo, hi, s) == pytest.approx(-10 * math.log10(0.04))
    # eps/sigma far beyond what 50 draws resolve: the bounds fall back to the codomain's ends
    draws = torch.rand(50, 3)
    lo, hi = percentile_bounds(draws, 0.5, 10.0, 0.01, low=0.0, high=1.0)
    assert torch.equal(lo, torch.zeros(3)) and torch.equal(hi, torch.ones(3))


@pytest.fixture(scope="module")
def receiver():
    torch.manual_seed(0)
    link = Link(pretrained("softcast-cbr1_6"), AWGN())
    return MedianSmoothedReceiver(link, extra_n0=1.0, draws=400, batch=200)


def test_certified_psnr_holds_against_an_attack_in_the_ball(receiver):
    """At PSR -40 dB on 16x16 crops (128 symbols, eps/sigma 0.16) the median output's certified PSNR is
    below its clean PSNR and below what a PGD jammer at the ball's edge leaves."""
    x = shipped_photos()[:2, :, 100:116, 100:116].contiguous()
    snr, psr = 10.0, -40.0
    cert = receiver.certify(x, snr, psr, alpha=0.01, seed=3)
    assert cert.eps_over_sigma == pytest.approx(math.sqrt(1e-4 * 128) / math.sqrt(0.5), rel=1e-3)
    assert torch.all(cert.median_bound <= cert.median_psnr)
    assert torch.all(cert.median_bound > 10.0)  # not collapsed at this radius
    codec = receiver.link.codec
    for i in range(2):
        s = x[i:i + 1]
        gen = torch.Generator().manual_seed(10 + i)
        y, x_tx = receiver.received(s, snr, gen)
        radius = math.sqrt(1e-4 * float(x_tx.abs().square().mean()) * y.shape[-1])
        state = AWGN().sample_state(1, y.shape[-1], torch.tensor([snr]))
        delta = torch.zeros_like(y, requires_grad=True)
        for _ in range(20):  # ascend the MSE of the (noise-free) decode, projected onto the ball
            loss = (codec.decode(y + delta, state, **codec.decode_kwargs(s)) - s).square().mean()
            (g,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta += 0.5 * radius * g / g.abs().square().sum().sqrt().clamp_min(1e-12)
                delta *= min(1.0, radius / float(delta.abs().square().sum().sqrt()))
        for pert in (delta.detach(), radius * torch.polar(torch.ones_like(y.real), 6.28 * torch.rand(y.shape))
                     / math.sqrt(y.shape[-1])):
            out = receiver.output(y + pert, s, snr, gen)
            attacked = -10 * math.log10(float((out - s).square().mean()))
            assert attacked >= float(cert.median_bound[i]) - 1e-9, (i, attacked, float(cert.median_bound[i]))


def test_bad_input_is_refused_in_one_line(receiver):
    with pytest.raises(ValueError, match="reconstruction"):
        MedianSmoothedReceiver(Link(pretrained("task-fmnist"), AWGN()), extra_n0=1.0)
    with pytest.raises(ValueError, match="AWGN"):
        MedianSmoothedReceiver(Link(receiver.link.codec, Rayleigh()), extra_n0=1.0)
    with pytest.raises(ValueError, match="extra_n0"):
        MedianSmoothedReceiver(receiver.link, extra_n0=0.0)
    with pytest.raises(ValueError, match="psr_db"):
        receiver.certify(torch.rand(1, 3, 16, 16), 10.0, math.nan)
    with pytest.raises(ValueError, match="p must be"):
        shifted_percentiles(1.0, 1.0)
    assert isinstance(build("defense", "median-smoothing", link=receiver.link, extra_n0=0.5), MedianSmoothedReceiver)


def test_grid_equals_one_psr_at_a_time(receiver):
    x = shipped_photos()[:1, :, :16, :16].contiguous()
    grid = receiver.certify_grid(x, 10.0, [-45.0, -35.0], seed=1)
    for c in grid:
        one = receiver.certify(x, 10.0, c.psr_db, seed=1)
        assert torch.equal(one.median_bound, c.median_bound) and torch.equal(one.percentile_bound, c.percentile_bound)
    assert grid[0].median_bound[0] >= grid[1].median_bound[0]  # a larger ball never certifies more
