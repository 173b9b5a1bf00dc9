"""Blanking receiver: its clean false-blank rate against the exponential law, and an impulsive jammer it
removes; a white-box attack through it is not stopped."""

import math

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.blanking import BlankingDefense
from semguard.link import Link
from semguard.registry import build


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(1200)
    codec = pretrained("task-fmnist")
    link = Link(codec, AWGN())
    return codec, link, BlankingDefense(false_blank=0.01).fit(codec, x[:1000]), x[1000:], y[1000:]


def _impulse(x0, psr_db, gen):
    # the whole block's budget on one symbol per block, random position and phase
    b = x0.shape[0]
    d = torch.zeros_like(x0)
    k = torch.randint(0, x0.shape[1], (b,), generator=gen)
    ph = torch.rand(b, generator=gen) * 2 * math.pi
    d[torch.arange(b), k] = (math.sqrt(10 ** (psr_db / 10) * x0.shape[1]) * torch.exp(1j * ph)).to(x0.dtype)
    return d


def test_impulse_blanked_and_clean_cost(setup):
    codec, link, dfn, x, y = setup
    bl = dfn.wrap(link)
    gen = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    with torch.no_grad():
        clean = link(x, 10.0, generator=gen())
        _, mask = bl.codec.blank(clean["received"], clean["state"])
        # threshold ln(100): a Gaussian symbol's residual is Exp(1), so 1 % would be blanked; the codec's
        # symbols have lighter tails (unit block power bounds them), so fewer are (0.13 % measured)
        assert 0.0 < float(mask.double().mean()) <= 0.01
        x0 = codec.encode(x, 10.0)
        d = _impulse(x0, 5.0, torch.Generator().manual_seed(1))
        hit = link(x, 10.0, generator=gen(), symbols=x0 + d)["output"].argmax(1)
        out = bl(x, 10.0, generator=gen(), symbols=x0 + d)
        _, m = bl.codec.blank(out["received"], out["state"])
    acc = lambda p: float((p == y).float().mean())  # noqa: E731
    assert bool(m[d != 0].all())  # every jammed symbol is blanked
    assert acc(out["output"].argmax(1)) > acc(hit) + 0.04
    assert acc(out["output"].argmax(1)) >= acc(clean["output"].argmax(1)) - 0.02


def test_white_box_through_blanking(setup):
    codec, link, dfn, x, y = setup
    pgd = build("attack", "pgd", surface="symbols", psr_db=-10.0, steps=10)
    r = pgd(dfn.wrap(link), x, 10.0, labels=y)
    assert float((r.output.argmax(1) == y).float().mean()) < 0.87  # clean is 0.93: no protection


def test_bad_input(setup):
    codec, link, _, _, _ = setup
    with pytest.raises(RuntimeError, match="fit"):
        BlankingDefense().wrap(link)
    with pytest.raises(ValueError, match="AWGN"):
        BlankingDefense().fit(codec, shipped_fashion_mnist(10)[0]).wrap(Link(codec, Rayleigh()))
    with pytest.raises(ValueError, match="false_blank"):
        BlankingDefense(false_blank=0.0)
