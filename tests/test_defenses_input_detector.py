"""The learned input detector of the task codec: it separates PGD-perturbed inputs from clean ones, the
joint attack that knows it lets more harm through unalarmed, and bad input gets one-line errors."""

import pytest
import torch

from semguard.channels import AWGN
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses import far_at_detection, roc_auc
from semguard.defenses.input_detector import DetectorAwareInputPGD, InputDetector
from semguard.link import Link
from semguard.registry import build


def _gen(seed=7):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    X, Y = shipped_fashion_mnist(1200)
    codec = pretrained("task-fmnist")
    link = Link(codec, AWGN())
    r = build("attack", "pgd", surface="input", eps=0.05, steps=5)(link, X[:300], 10.0, labels=Y[:300], generator=_gen(0))
    det = InputDetector(codec).fit(X[:300], (X[:300] + r.perturbation).clamp(0, 1), steps=150)
    with torch.no_grad():
        det.calibrate(det.score(X[300:500]), 0.05)
    return link, det, X[1000:1150], Y[1000:1150]


def test_detects_non_adaptive_pgd_and_adaptive_gets_more_through(fitted):
    link, det, x, y = fitted
    with torch.no_grad():
        cs = det.score(x)
    through, auc_na = [], None
    for atk in (build("attack", "pgd", surface="input", eps=0.05, steps=5),
                DetectorAwareInputPGD(detector=det, eps=0.05, steps=10)):
        r = atk(link, x, 10.0, labels=y, generator=_gen())
        with torch.no_grad():
            s = det.score((x + r.perturbation).clamp(0, 1))
        through.append(float(((r.output.argmax(1) != y) & (s <= det.threshold)).double().mean()))
        if isinstance(atk, DetectorAwareInputPGD):
            assert auc_na is not None and roc_auc(cs, s) < auc_na
        else:
            auc_na = roc_auc(cs, s)
            assert auc_na > 0.95 and far_at_detection(cs, s) < 0.1
    # clean false alarms near the calibrated 5 % (200 held-out references set it)
    assert float((cs > det.threshold).double().mean()) <= 0.12
    assert through[1] > through[0]  # the attack that knows the detector gets more harm past it


def test_bad_input(fitted):
    link, det, x, y = fitted
    with pytest.raises(TypeError, match="codec must be a SemanticCodec"):
        InputDetector("task")
    with pytest.raises(ValueError, match="need >= 2"):
        InputDetector(link.codec).fit(x[:1], x[:1])
    with pytest.raises(RuntimeError, match="fit\\(\\) it"):
        InputDetector(link.codec).score(x)
    with pytest.raises(ValueError, match="false_alarm must be in"):
        det.calibrate(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="calibrate its threshold"):
        DetectorAwareInputPGD(detector=InputDetector(link.codec), eps=0.05)
    with pytest.raises(ValueError, match="surface"):
        DetectorAwareInputPGD(detector=det, surface="symbols", psr_db=-10.0)
