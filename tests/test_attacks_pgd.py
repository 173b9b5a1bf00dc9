"""PGD and FGSM: stronger than equal-power noise (a paired one-sided t-test), monotone in the budget,
bit-for-bit reproducible, and differentiated through fading, equalisation and the decoder."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from semguard.channels import Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.data.shipped import shipped_fashion_mnist
from semguard.metrics.image import psnr
from semguard.link import Link
from semguard.registry import build


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return shipped_photos()


@pytest.fixture(scope="module")
def link() -> Link:
    return Link(pretrained("softcast-cbr1_6"), Rayleigh(csi="estimated"))


def _psnr(attack, link, x, seed=0):
    return psnr(attack(link, x, 10.0, generator=torch.Generator().manual_seed(seed)).output, x)


def test_pgd_beats_equal_power_noise(link, photos) -> None:
    # 4 photos x 2 channel draws, paired: PGD's PSNR is lower than Gaussian jamming's at the same PSR
    # with p < 0.01 (one-sided t-test on the differences) and by at least 3 dB on average
    diffs = []
    for seed in (0, 1):
        noise = _psnr(build("attack", "gaussian", surface="channel", psr_db=-15, seed=seed), link, photos[:4], seed)
        pgd = _psnr(build("attack", "pgd", surface="channel", psr_db=-15, steps=3, seed=seed), link, photos[:4], seed)
        diffs.append(noise - pgd)
    d = torch.cat(diffs).double().numpy()
    assert stats.ttest_1samp(d, 0.0, alternative="greater").pvalue < 0.01
    assert d.mean() > 3.0


def test_larger_budget_never_helps_the_defender(link, photos) -> None:
    x = photos[:2]
    means = [_psnr(build("attack", "pgd", surface="channel", psr_db=p, steps=3), link, x).mean().item()
             for p in (-25, -15, -5)]
    assert means[0] > means[1] > means[2]
    clean = psnr(link(x, 10.0, generator=torch.Generator().manual_seed(0))["output"], x).mean().item()
    assert clean > means[0]


def test_fixed_seed_reproduces_bit_for_bit(link, photos) -> None:
    x = photos[:1]
    runs = [build("attack", "pgd", surface="channel", psr_db=-10, steps=2, seed=4, channel_known=False, eot=2)(
        link, x, 10.0, generator=torch.Generator().manual_seed(9)) for _ in range(2)]
    assert torch.equal(runs[0].perturbation, runs[1].perturbation)
    assert torch.equal(runs[0].output, runs[1].output)
    other = build("attack", "pgd", surface="channel", psr_db=-10, steps=2, seed=5, channel_known=False, eot=2)(
        link, x, 10.0, generator=torch.Generator().manual_seed(9))
    assert not torch.equal(other.perturbation, runs[0].perturbation)


def test_gradient_is_the_true_derivative_through_fading_and_equalisation(link, photos) -> None:
    # the autograd directional derivative matches a central finite difference of the loss through
    # Rayleigh fading, the pilot-estimated CSI, MMSE equalisation and the decoder: no straight-through
    from semguard.attacks.base import AttackContext
    x = photos[:1]
    atk = build("attack", "pgd", surface="channel", psr_db=-10, steps=1, attacker_fading="rayleigh")
    g = torch.Generator().manual_seed(3)
    ctx = AttackContext(link, x, torch.full((1,), 10.0), "reconstruction", None, None, g.get_state(),
                        torch.Generator().manual_seed(0))
    ctx.g = atk.draw_g(ctx)
    n = link.n_symbols((3, 256, 256))
    delta = (0.05 * torch.randn(1, n, dtype=torch.complex64, generator=torch.Generator().manual_seed(1)))
    u = torch.randn(1, n, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    u = u / u.abs().square().sum().sqrt()

    def f(d):
        out, _ = atk.send(ctx, d, ctx.channel_generator(), g=ctx.g)
        return atk.loss(ctx, out).sum()

    d = delta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(d), d)
    analytic = (grad.conj() * u).real.sum().item()  # d/dt f(delta + t u) for real t
    h = 0.3
    with torch.no_grad():
        numeric = ((f(delta + h * u) - f(delta - h * u)) / (2 * h)).item()
    assert abs(grad).sum() > 0
    assert analytic == pytest.approx(numeric, rel=0.05)


def test_pilot_attack_misleads_a_receiver_that_trusts_its_pilots() -> None:
    # the task codec equalises with the pilots' estimate as it is: a pilot PGD at 0 dB flips decisions
    codec = pretrained("task-fmnist")
    x, y = shipped_fashion_mnist(64)
    link = Link(codec, Rayleigh(csi="estimated", pilots=4))
    g = lambda: torch.Generator().manual_seed(0)
    clean = (link(x, 10.0, generator=g())["output"].argmax(1) == y).float().mean()
    r = build("attack", "pilot", psr_db=0.0, steps=10)(link, x, 10.0, labels=y, generator=g())
    hit = (r.output.argmax(1) == y).float().mean()
    assert (r.measured <= 1e-4).all()
    noise = build("attack", "gaussian", surface="pilots", psr_db=0.0)(link, x, 10.0, labels=y, generator=g())
    assert hit < clean - 0.1
    assert hit < (noise.output.argmax(1) == y).float().mean()


@pytest.mark.slow
def test_pilot_attack_is_monotone_in_the_budget_and_keeps_its_best_candidate() -> None:
    # one pilot per block: the structured candidates (the error r e^{j theta} times the pilot) seed PGD and
    # stay in the running, so a sample the shrinking candidate (theta = pi) breaks stays broken, and a
    # larger budget never leaves more images classified right
    from semguard.attacks.base import AttackContext, attacker_generator
    from semguard.channels.base import as_snr_tensor

    codec = pretrained("task-fmnist")
    x, y = shipped_fashion_mnist(64)
    link = Link(codec, Rayleigh(csi="estimated"))
    g = lambda: torch.Generator().manual_seed(0)
    acc = []
    for b in (-15.0, -10.0, -5.0, 0.0):
        atk = build("attack", "pilot", psr_db=b, steps=5)
        r = atk(link, x, 10.0, labels=y, generator=g())
        wrong = r.output.argmax(1) != y
        acc.append(1 - wrong.float().mean().item())
        ctx = AttackContext(link, x, as_snr_tensor(10.0, x.shape[0], x.device), "task", y, None, g().get_state(),
                            attacker_generator(0))
        ctx.g = atk.draw_g(ctx)
        shrink = list(atk.candidates(ctx, atk.reference(ctx)))[atk.angles // 2]  # theta = pi
        with torch.no_grad():
            out, psr = atk.send(ctx, shrink, ctx.channel_generator(), g=ctx.g, measure=True)
        assert torch.allclose(psr, torch.full_like(psr, b), atol=1e-4)
        assert (wrong | (out["output"].argmax(1) == y)).all()  # the candidate's breaks are kept
    assert all(a1 <= a0 for a0, a1 in zip(acc, acc[1:])), acc
    assert acc[-1] < acc[0] - 0.05, acc
    with pytest.raises(ValueError, match="angles must be a whole number"):
        build("attack", "pilot", psr_db=0.0, angles=-1)
