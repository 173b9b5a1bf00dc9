"""Word substitution on a text codec (l0 budget, nearest tokens, greedy beats random) and the
jammers of the digital baseline (exact PSR; the boundary jammer flips what its budget pays for)."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.attacks import ThreatModel
from semguard.attacks.digital import JammedChannel, boundary_jam, gaussian_jam
from semguard.attacks.objectives import attack_loss
from semguard.attacks.substitution import nearest_tokens
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.link import Link
from semguard.registry import build


@pytest.fixture(scope="module")
def text_link():
    torch.manual_seed(0)
    codec = build("codec", "deepsc", vocab_size=40, d_model=16, heads=2, layers=1, ff=32).eval()
    tok = torch.randint(2, 40, (4, 6), generator=torch.Generator().manual_seed(1))
    return Link(codec, AWGN()), tok


def test_substitution_spends_exactly_k_tokens_from_the_neighbours(text_link) -> None:
    link, tok = text_link
    near = nearest_tokens(link.codec.embed.weight, 8)
    assert near.shape == (40, 8) and (near >= 2).all() and not (near == torch.arange(40)[:, None]).any()
    for k in (0, 1, 3):
        r = build("attack", "word-substitution", k=k)(link, tok, 40.0)
        assert torch.equal(r.measured, torch.full((4,), float(k)))
        assert r.threat_model == ThreatModel("input", "l0", k, "white-box", "semantic") and r.threat_model.unit == "tokens"
        changed = r.perturbation != tok
        for b, t in changed.nonzero().tolist():
            assert r.perturbation[b, t] in near[tok[b, t]] or k > 1  # k > 1 may chain neighbours


def test_greedy_substitution_moves_the_meaning_more_than_random(text_link) -> None:
    link, tok = text_link
    g = lambda: torch.Generator().manual_seed(0)
    greedy = build("attack", "word-substitution", k=1)(link, tok, 40.0, generator=g())
    rand = [build("attack", "word-substitution", k=1, random=True, seed=s)(link, tok, 40.0, generator=g())
            for s in range(4)]
    lg = attack_loss("semantic", greedy.output, tok).mean()
    lr = torch.stack([attack_loss("semantic", r.output, tok).mean() for r in rand]).mean()
    assert lg > lr
    with pytest.raises(ValueError, match="k \\(substituted tokens\\) must be a whole number"):
        build("attack", "word-substitution", k=-1)
    with pytest.raises(ValueError, match="objective 'semantic' does not fit"):
        build("attack", "word-substitution", k=1)(Link(build("codec", "task", n_symbols=8, width=4), AWGN()),
                                                   torch.rand(2, 1, 28, 28), 10.0)


def _qpsk(b: int, n: int) -> torch.Tensor:
    bits = torch.randint(0, 2, (b, n, 2), generator=torch.Generator().manual_seed(0)).float()
    return torch.view_as_complex(((1 - 2 * bits) / math.sqrt(2)).contiguous())


@pytest.mark.parametrize("channel", [AWGN(), Rayleigh()], ids=["awgn", "rayleigh"])
def test_jammers_are_exactly_on_budget(channel) -> None:
    x = _qpsk(3, 100)
    state = channel.sample_state(3, 100, 10.0, generator=torch.Generator().manual_seed(2))
    for jam in (gaussian_jam(-12.0), boundary_jam(-12.0)):
        j = jam(x, state)
        torch.testing.assert_close(F.psr_db(j, state.h * x), torch.full((3,), -12.0), atol=1e-4, rtol=0)


def test_boundary_jammer_flips_what_the_budget_pays_for() -> None:
    # QPSK, unit power: each coordinate +-1/sqrt(2); the boundary at 0; a flip with a 0.1 d_min margin
    # costs (1/sqrt(2) + 0.1 sqrt(2))^2 = 0.72. At -10 dB a block of 100 symbols has 10 units: 13 flips.
    x = _qpsk(2, 100)
    ch = JammedChannel(AWGN(), boundary_jam(-10.0))
    state = ch.sample_state(2, 100, 200.0)
    y = ch.equalize(ch.apply(x, state, generator=torch.Generator().manual_seed(0)), state)
    flips = (torch.view_as_real(y).sign() != torch.view_as_real(x).sign()).reshape(2, -1).sum(1)
    assert flips.tolist() == [13, 13]
    noise = JammedChannel(AWGN(), gaussian_jam(-10.0))
    yn = noise.equalize(noise.apply(x, state, generator=torch.Generator().manual_seed(0)), state)
    assert ((torch.view_as_real(yn).sign() != torch.view_as_real(x).sign()).sum() == 0)  # 0.1 power: no flip
