"""Residual jamming detector: ROC maths by hand, the energy statistic's false-alarm rate and power against
theory, and the joint adaptive attack that stays under the alarm more often than plain PGD."""

import pytest
import torch

from semguard.channels import AWGN
from semguard.channels import functional as F
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.detector import DetectorAwarePGD, ResidualDetector, far_at_detection, roc_auc
from semguard.link import Link
from semguard.registry import build


def test_roc_by_hand():
    # pairs (attacked > clean): 1.5 beats 0 and 1; 3 beats all three -> 5 of 6; a tie counts one half
    assert roc_auc(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.5, 3.0])) == pytest.approx(5 / 6)
    assert roc_auc(torch.tensor([0.0, 1.0]), torch.tensor([1.0])) == pytest.approx(0.75)
    # 95 % detection of 20 attacked scores 1..20 keeps 2..20: threshold 2; clean 0, 1, 2, 3 -> 2 alarms of 4
    assert far_at_detection(torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.arange(1.0, 21.0)) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(1400)
    codec = pretrained("task-fmnist")
    return codec, Link(codec, AWGN()), x[:1000], x[1000:1200], y[1000:1200]


def _clean(link, x, seed):
    with torch.no_grad():
        return link(x, 10.0, generator=torch.Generator().manual_seed(seed))


def test_energy_detector_false_alarm_and_power(setup):
    codec, link, ref, x, y = setup
    det = ResidualDetector(statistic="energy")
    cal = _clean(link, ref, 1)
    det.calibrate(det.score(cal["received"], cal["state"]), 0.05)
    # theory: ||x + w||^2 / n - 1 - N0 has std sqrt((2 N0 + N0^2) / n) = sqrt(0.21 / 16) = 0.1146 at 10 dB,
    # so the 95 % two-sided threshold is about 1.96 * 0.1146 = 0.2245 (a CLT approximation over 16 symbols)
    assert det.threshold == pytest.approx(0.2245, rel=0.15)
    fresh = _clean(link, x, 2)
    fa = float(det.alarm(fresh["received"], fresh["state"]).double().mean())
    assert 0.01 <= fa <= 0.10
    # Gaussian jamming at 0 dB adds power 1: far above the noise's spread
    jam = build("attack", "gaussian", surface="symbols", psr_db=0.0)(link, x, 10.0, labels=y)
    s_clean = det.score(fresh["received"], fresh["state"])
    assert roc_auc(s_clean, det.score(jam.link["received"], jam.link["state"])) > 0.97


def test_adaptive_attack_stays_under_the_alarm(setup):
    codec, link, ref, x, y = setup
    det = ResidualDetector(statistic="energy")
    cal = _clean(link, ref, 1)
    det.calibrate(det.score(cal["received"], cal["state"]), 0.05)
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    pgd = build("attack", "pgd", surface="symbols", psr_db=-10.0, steps=10)(link, x, 10.0, labels=y, generator=gen())
    ad = DetectorAwarePGD(detector=det, surface="symbols", psr_db=-10.0, steps=20, full_power=False,
                          weight=1000.0)(link, x, 10.0, labels=y, generator=gen())
    alarm_pgd = det.alarm(pgd.link["received"], pgd.link["state"])
    alarm_ad = det.alarm(ad.link["received"], ad.link["state"])
    assert float(alarm_pgd.double().mean()) > 0.3  # plain PGD at -10 dB cancels signal power: caught
    assert float(alarm_ad.double().mean()) < float(alarm_pgd.double().mean()) - 0.15
    assert (ad.measured <= -10.0 + 1e-3).all()
    # it still does harm the detector lets through
    assert float(((ad.output.argmax(1) != y) & ~alarm_ad).double().mean()) >= \
        float(((pgd.output.argmax(1) != y) & ~alarm_pgd).double().mean())


def test_whitened_fit_and_bad_input(setup):
    codec, link, ref, x, _ = setup
    det = ResidualDetector()
    y = F.normalize_power(F.complex_normal((4, 16), generator=torch.Generator().manual_seed(0)))
    state = _clean(link, x[:4], 0)["state"]
    with pytest.raises(RuntimeError, match="fit"):
        det.score(y, state)
    with pytest.raises(ValueError, match="more reference blocks"):
        det.fit(codec, ref[:20])
    det.fit(codec, ref)
    assert det.score(y, state).shape == (4,)
    with pytest.raises(ValueError, match="statistic"):
        ResidualDetector(statistic="cusum")
    with pytest.raises(ValueError, match="calibrate"):
        DetectorAwarePGD(detector=det, surface="symbols", psr_db=-10.0)
