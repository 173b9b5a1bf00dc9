"""Randomized smoothing: Cohen et al.'s CERTIFY against closed forms and scipy, on the shipped task codec."""

import math

import pytest
import torch
from scipy.stats import binomtest

from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses import (ABSTAIN, SmoothedClassifier, certified_radius, certify_counts,
                               clopper_pearson_lower, radius_to_psr_db)
from semguard.link import Link
from semguard.registry import build


def test_clopper_pearson_closed_forms():
    # k = n: Beta(alpha; n, 1) has cdf p^n, so the bound is alpha^(1/n) (hand: 0.001^(1/1000) = 0.993116)
    assert clopper_pearson_lower(1000, 1000, 0.001) == pytest.approx(0.001 ** (1 / 1000), rel=1e-12)
    assert clopper_pearson_lower(1000, 1000, 0.001) == pytest.approx(0.993116, abs=1e-6)
    assert clopper_pearson_lower(0, 50, 0.01) == 0.0
    # a middle case against scipy's exact two-sided interval at level 1 - 2 alpha
    low = binomtest(730, 1000).proportion_ci(confidence_level=0.98, method="exact").low
    assert clopper_pearson_lower(730, 1000, 0.01) == pytest.approx(low, rel=1e-9)


def test_radius_closed_form():
    # Phi(1) = 0.8413447460685429: the radius is exactly sigma
    assert certified_radius(0.8413447460685429, 0.5) == pytest.approx(0.5, rel=1e-9)
    # Phi(2) = 0.9772498680518208
    assert certified_radius(0.9772498680518208, 0.25) == pytest.approx(0.5, rel=1e-9)
    assert certified_radius(0.5, 1.0) == 0.0
    # hand case: 1000 of 1000 at alpha 0.001, sigma 0.25: 0.25 * Phi^-1(0.993116) = 0.25 * 2.4633
    c, p, r = certify_counts(torch.tensor([0, 100, 0]), torch.tensor([0, 1000, 0]), 0.001, 0.25)
    assert c == 1 and p == pytest.approx(0.993116, abs=1e-6) and r == pytest.approx(0.25 * 2.4633, abs=1e-4)


def test_never_certifies_under_one_half():
    # 520 / 1000 is a majority but its 99.9 % lower bound (0.4706) is below 1/2: abstain
    c, p, r = certify_counts(torch.tensor([30, 70]), torch.tensor([480, 520]), 0.001, 1.0)
    assert c == ABSTAIN and p < 0.5 and r == 0.0
    # the selection draws pick class 0, the estimation draws favour class 1: class 0's bound decides
    c, p, r = certify_counts(torch.tensor([60, 40]), torch.tensor([100, 900]), 0.001, 1.0)
    assert c == ABSTAIN and r == 0.0
    c, p, r = certify_counts(torch.tensor([10, 90]), torch.tensor([350, 650]), 0.001, 1.0)
    assert c == 1 and 0.5 < p < 0.65 and r > 0


def test_psr_conversion_inverts_psr_radius():
    x = F.normalize_power(F.complex_normal((1, 16), generator=torch.Generator().manual_seed(0)))
    for psr in (-20.0, -12.5, 0.0):
        r = float(F.psr_radius(x, psr)[0])
        assert radius_to_psr_db(r, 16) == pytest.approx(psr, abs=1e-4)
    assert radius_to_psr_db(0.0, 16) == -math.inf


@pytest.fixture(scope="module")
def task_link():
    torch.set_num_threads(1)
    return Link(pretrained("task-fmnist"), AWGN())


def test_symbol_certificate_on_task_codec(task_link):
    x, y = shipped_fashion_mnist(6)
    sm = SmoothedClassifier(task_link, surface="symbols", extra_n0=0.1)
    cert = sm.certify(x, 10.0, n0=32, n=300, alpha=0.001, seed=3)
    sigma = math.sqrt((0.1 + 0.1) / 2)
    assert cert.sigma == pytest.approx(sigma)
    ok = cert.prediction != ABSTAIN
    assert ok.any()
    # every issued radius is Cohen's closed form of its bound, and every bound is >= 1/2
    assert (cert.p_lower[ok] >= 0.5).all()
    want = torch.tensor([certified_radius(float(p), sigma) for p in cert.p_lower[ok]], dtype=torch.float64)
    assert torch.allclose(cert.radius[ok], want)
    assert torch.allclose(cert.psr_db[ok], 10 * torch.log10(cert.radius[ok] ** 2 / 16))
    # certified accuracy falls with the budget; the same seed reproduces the certificate
    accs = [cert.certified_accuracy(y, b) for b in (-30.0, -15.0, -10.0, 0.0)]
    assert accs == sorted(accs, reverse=True) and accs[-1] == 0.0
    again = sm.certify(x, 10.0, n0=32, n=300, alpha=0.001, seed=3)
    assert torch.equal(again.p_lower, cert.p_lower)
    # every module's mode is restored (the codec stays in eval mode inside a Link left in train mode)
    assert task_link.training and not task_link.codec.training


def test_input_certificate_on_task_codec(task_link):
    x, _ = shipped_fashion_mnist(2)
    cert = SmoothedClassifier(task_link, surface="input", sigma=0.12).certify(x, 10.0, n0=16, n=100, seed=0)
    assert cert.psr_db is None and cert.sigma == 0.12
    ok = cert.prediction != ABSTAIN
    assert (cert.radius[~ok] == 0).all() and (cert.radius[ok] <= 0.12 * 2.33).all()


def test_bad_input(task_link):
    with pytest.raises(ValueError, match="sigma"):
        SmoothedClassifier(task_link, surface="input")
    with pytest.raises(ValueError, match="channel"):
        SmoothedClassifier(Link(pretrained("task-fmnist"), Rayleigh()), surface="symbols")
    with pytest.raises(ValueError, match="surface"):
        SmoothedClassifier(task_link, surface="pilots", sigma=0.1)
    with pytest.raises(ValueError, match="alpha"):
        SmoothedClassifier(task_link, surface="input", sigma=0.1).certify(shipped_fashion_mnist(1)[0], 10.0,
                                                                         alpha=0.7)
    with pytest.raises(ValueError, match="counts"):
        clopper_pearson_lower(5, 3, 0.01)


def test_symbol_certificate_holds_under_pgd(task_link):
    # the certificate's promise, checked: PGD on the symbols at a PSR inside each certified bound does not
    # change the vote of the smoothed receiver (EOT over the noise so the attack aims at the vote)
    x, y = shipped_fashion_mnist(8)
    sm = SmoothedClassifier(task_link, surface="symbols", extra_n0=0.3)
    cert = sm.certify(x, 10.0, n0=32, n=2000, alpha=0.001, seed=1)
    keep = (cert.prediction != ABSTAIN) & (cert.psr_db > -14.0)
    assert keep.sum() >= 4
    xs, cls = x[keep], cert.prediction[keep]
    pgd = build("attack", "pgd", surface="symbols", psr_db=-14.0, steps=10, channel_known=False, eot=4)
    res = pgd(task_link, xs, 10.0 - 10 * math.log10(1 + 0.3 / 0.1), labels=cls)
    moved = res.link["symbols"]  # the transmitted x + delta
    with torch.no_grad():
        x0 = task_link.codec.encode(xs, 10.0)
    dist = torch.linalg.vector_norm(moved - x0, dim=1)
    assert torch.allclose(dist, F.psr_radius(x0, -14.0), rtol=1e-3)  # on the sphere of the budget
    assert (dist < cert.radius[keep].float()).all()
    gen = torch.Generator().manual_seed(7)
    for i in range(xs.shape[0]):
        counts = sm.sample(xs[i:i + 1], 10.0, 2000, gen, symbols=moved[i:i + 1])
        assert int(counts.argmax()) == int(cls[i])
