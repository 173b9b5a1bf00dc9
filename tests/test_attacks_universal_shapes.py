"""The universal block's shapes (``support=``, ``period=``): a block kept on a support is exactly zero
off it, at the receiver too, and still spends exactly the PSR budget of the whole block; a periodic
block repeats its pattern exactly, also when the period does not divide the block; bad shapes are a
one-line error."""

from __future__ import annotations

import pytest
import torch

from semguard.attacks._radiate import Radiator, radiating
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.link import Link
from semguard.registry import build

TOKENS = 6


@pytest.fixture(scope="module")
def deepsc():
    torch.manual_seed(0)
    codec = build("codec", "deepsc", vocab_size=40, d_model=16, heads=2, layers=1, ff=32).eval()
    src = torch.randint(2, 40, (4, TOKENS), generator=torch.Generator().manual_seed(0))
    return codec, src


def _slot(codec, *ks: int) -> torch.Tensor:
    n, S = codec.n_symbols((TOKENS,)), codec.S
    m = torch.zeros(n, dtype=torch.bool)
    for k in ks:
        m[S * k:S * (k + 1)] = True
    return m


def _fit(link: Link, src: torch.Tensor, psr: float, **kw):
    return build("attack", "universal", surface="channel", psr_db=psr, steps=4, batch=2, **kw).fit(link, src, 10.0)


@pytest.mark.parametrize("channel", [AWGN(), Rayleigh(csi="estimated")], ids=["awgn", "rayleigh"])
def test_support_block_is_zero_off_the_support_and_spends_the_budget_exactly(deepsc, channel) -> None:
    codec, src = deepsc
    link = Link(codec, channel)
    support = _slot(codec, 2, 4)
    u = _fit(link, src, -12.0, support=support)
    d = u.delta
    assert d.shape == support.shape
    assert torch.equal(d[~support], torch.zeros_like(d[~support]))  # exactly zero, not small
    assert (d[support].abs() > 0).all()
    # unit mean power over the whole block: the support's symbols carry n / |S| each on average
    assert d.abs().square().mean().item() == pytest.approx(1.0, rel=1e-5)
    assert d[support].abs().square().mean().item() == pytest.approx(d.numel() / int(support.sum()), rel=1e-5)

    r = u(link, src, 10.0, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(r.measured, torch.full_like(r.measured, -12.0), atol=1e-4)  # every block, exactly
    # what reaches Bob's receiver (through the attacker's own fading over Rayleigh) is still zero off S
    g = (F.rayleigh_coefficients((src.shape[0], 1), generator=torch.Generator().manual_seed(5))
         if channel.fading else None)
    rad = Radiator(d, -12.0, "channel", exact=True, g=g)
    with radiating(link, rad), torch.no_grad():
        link(src, 10.0, generator=torch.Generator().manual_seed(3))
    assert rad.applied is not None and rad.signal is not None
    assert torch.equal(rad.applied[:, ~support], torch.zeros_like(rad.applied[:, ~support]))
    assert torch.allclose(F.psr_db(rad.applied, rad.signal), torch.full((src.shape[0],), -12.0), atol=1e-4)


@pytest.mark.parametrize("period", [8, 5])  # 8 divides the 48-symbol block (one token slot), 5 does not
def test_period_block_repeats_its_pattern_exactly(deepsc, period: int) -> None:
    codec, src = deepsc
    link = Link(codec, AWGN())
    u = _fit(link, src, -10.0, period=period)
    d = u.delta
    n = codec.n_symbols((TOKENS,))
    assert d.shape == (n,)
    assert torch.equal(d[period:], d[:n - period])  # delta[k + P] == delta[k] for every k
    assert not torch.allclose(d[:period], d[:period].roll(1))  # a pattern, not one constant symbol
    assert d.abs().square().mean().item() == pytest.approx(1.0, rel=1e-5)
    r = u(link, src, 10.0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(r.measured, torch.full_like(r.measured, -10.0), atol=1e-4)


def test_period_and_support_together_repeat_then_restrict(deepsc) -> None:
    codec, src = deepsc
    support = _slot(codec, 1, 3)
    u = _fit(Link(codec, AWGN()), src, -10.0, period=codec.S, support=support)
    d, S = u.delta, codec.S
    assert torch.equal(d[~support], torch.zeros_like(d[~support]))
    assert torch.equal(d[S:2 * S], d[3 * S:4 * S])  # the same pattern on both slots of the support


def test_bad_shapes_are_one_line_errors(deepsc) -> None:
    codec, src = deepsc
    link = Link(codec, AWGN())
    with pytest.raises(ValueError, match=r"support: the block has 48 symbols"):
        _fit(link, src, -10.0, support=torch.ones(40, dtype=torch.bool))
    with pytest.raises(ValueError, match="support must be a bool block"):
        build("attack", "universal", surface="channel", psr_db=-10.0, support=torch.zeros(48, dtype=torch.bool))
    with pytest.raises(ValueError, match="support must be a bool block"):
        build("attack", "universal", surface="channel", psr_db=-10.0, support=torch.ones(48))
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="period must be a whole number"):
            build("attack", "universal", surface="channel", psr_db=-10.0, period=bad)
