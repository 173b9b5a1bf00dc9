"""Blur before the encoder: the kernel against its closed form, and the adaptive attack (BPDA through the
quantiser, EOT over the random kernel) beating the non-adaptive ones the blur seems to stop."""

import pytest
import torch

from semguard.channels import AWGN
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.blur import BlurDefense, BlurredCodec, gaussian_blur, gaussian_kernel
from semguard.link import Link
from semguard.registry import build


def test_blur_closed_form():
    k = gaussian_kernel(1.0)
    assert k.numel() == 7 and float(k.sum()) == pytest.approx(1.0)
    # the centre tap is 1 / sum_{t=-3..3} exp(-t^2/2) = 1 / 2.50662... (hand: 0.39905)
    assert float(k[3]) == pytest.approx(0.39905, abs=1e-5)
    img = torch.zeros(1, 1, 15, 15)
    img[0, 0, 7, 7] = 1.0
    out = gaussian_blur(img, 1.0, 3)
    assert torch.allclose(out[0, 0, 4:11, 4:11], torch.outer(k, k), atol=1e-7)
    flat = torch.full((2, 1, 10, 10), 0.3)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([0.7, 1.4]), 5), flat, atol=1e-6)


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(32)
    return Link(pretrained("task-fmnist"), AWGN()), x, y


def _acc(out, y):
    return float((out.argmax(1) == y).float().mean())


def test_adaptive_attack_beats_non_adaptive(setup):
    base, x, y = setup
    d = BlurDefense(sigma=(0.5, 1.5), quantize=True, eot=4)
    deployed, attacker = d.wrap(base), d.attacker_view(base)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    pgd = build("attack", "pgd", surface="input", eps=0.1, steps=10)
    crafted = pgd(base, x, 10.0, labels=y, generator=gen())  # against the undefended codec
    with torch.no_grad():
        transfer = _acc(deployed((x + crafted.perturbation).clamp(0, 1), 10.0, generator=gen())["output"], y)
    naive = _acc(pgd(deployed, x, 10.0, labels=y, generator=gen()).output, y)  # gradient zero at the rounding
    adaptive = d.adaptive_attack(pgd)
    assert adaptive.eot == 4 and not adaptive.channel_known
    res = adaptive(attacker, x, 10.0, labels=y, generator=gen())
    with torch.no_grad():
        adapt = _acc(deployed((x + res.perturbation).clamp(0, 1), 10.0, generator=gen())["output"], y)
    assert adapt < transfer - 0.2 and adapt < naive - 0.3


def test_bpda_keeps_forward_values(setup):
    base, x, _ = setup
    a = BlurredCodec(base.codec, sigma=(0.5, 1.5), quantize=True, seed=1)
    b = BlurredCodec(base.codec, sigma=(0.5, 1.5), quantize=True, bpda=True, seed=1)
    xr = x[:4].clone().requires_grad_(True)
    ta, tb = a.transform(xr), b.transform(xr)
    assert torch.equal(ta, tb)
    (g0,) = torch.autograd.grad(ta.sum(), xr)  # rounding: zero gradient, a masked one
    assert torch.count_nonzero(g0) == 0
    (g,) = torch.autograd.grad(tb.sum(), xr)
    assert g.abs().sum() > 0


def test_bad_input(setup):
    base, _, _ = setup
    with pytest.raises(ValueError, match="sigma"):
        BlurredCodec(base.codec, sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match="blurring applies to image inputs"):
        BlurDefense().wrap(Link(build("codec", "deepsc"), AWGN()))
    with pytest.raises(ValueError, match="input surface"):
        BlurDefense().adaptive_attack(build("attack", "pgd", surface="symbols", psr_db=-10.0))


@pytest.mark.parametrize("knows", ["all", "fading", "none"])
def test_adaptive_attack_keeps_the_channel_knowledge(knows):
    """A fixed blur keeps what the attack knows of the channel; a random one needs fresh draws."""
    from semguard.attacks.pgd import PGD

    attack = PGD(surface="input", eps=0.05, norm="linf", objective="task", steps=2, knows=knows)
    assert BlurDefense(sigma=1.0).adaptive_attack(attack).knows == knows
    assert BlurDefense(sigma=(0.5, 1.5), eot=2).adaptive_attack(attack).knows == "none"
