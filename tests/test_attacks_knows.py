"""What a white-box attack knows of the evaluated channel draw (``knows``): ``"fading"`` replays the fading
and CSI error but draws Bob's noise fresh (checked against the noise drawn by hand), ``"all"`` is the
old default bit for bit, and only a noise-knowing PGD aligns its perturbation with Bob's noise."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.attacks.base import AttackContext, attacker_generator
from semguard.attacks.pgd import ChannelDraw, resolve_knows
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.channels.base import as_snr_tensor
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.data.photos import shipped_photos
from semguard.defenses.keyed_attacks import CorrelatedJammer, KeyEOTAPGD, KeyEOTPGD
from semguard.defenses.keyed_spread import KeyedSpreadDefense
from semguard.link import Link
from semguard.registry import build

SEED = 9


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    return shipped_photos()[:2, :, 96:160, 96:160].contiguous()       # two 64x64 crops


def _ctx(link: Link, x: torch.Tensor) -> AttackContext:
    return AttackContext(link, x, as_snr_tensor(10.0, x.shape[0], x.device), "reconstruction", None, None,
                         torch.Generator().manual_seed(SEED).get_state(), attacker_generator(0))


def _noise(out: dict) -> torch.Tensor:
    return out["raw"] - out["state"].h * out["transmitted"]


def _send(atk, ctx: AttackContext, draw: ChannelDraw) -> dict:
    zero = torch.zeros(atk.shape(ctx), dtype=torch.complex64)
    with torch.no_grad():
        return atk.send(ctx, zero, draw.generator, g=draw.g, noise=draw.noise)[0]


def test_fading_knowledge_replays_the_fade_and_csi_but_not_the_noise(crops) -> None:
    # Rayleigh with estimated CSI draws, from one generator: the fade h [B, 1] (CN(0, 1)), the CSI error
    # [B, 1] (CN(0, N0 / pilots)), then Bob's noise [B, n] (CN(0, N0)); drawn here by hand in that order
    link = Link(pretrained("softcast-cbr1_6"), Rayleigh(csi="estimated", pilots=8))
    x = crops
    ctx = _ctx(link, x)
    n, n0 = link.n_symbols(tuple(x.shape[1:])), 0.1
    g = torch.Generator().manual_seed(SEED)
    h = F.rayleigh_coefficients((2, 1), generator=g)
    h_est = h + F.complex_noise((2, 1), torch.tensor(n0 / 8), generator=g)
    w = F.complex_noise((2, n), torch.tensor(n0), generator=g)
    atk = build("attack", "pgd", surface="channel", psr_db=-10, steps=1, knows="fading", eot=3)
    draws = atk._draws(ctx)
    assert len(draws) == 3
    noises = []
    for d in draws:
        out = _send(atk, ctx, d)
        assert torch.allclose(out["state"].h, h.expand(-1, n)) and torch.allclose(out["state"].h_est, h_est.expand(-1, n))
        noises.append(_noise(out))
        assert noises[-1].abs().square().mean().item() == pytest.approx(n0, rel=0.05)   # still CN(0, N0)
        assert abs(F.psr_db(noises[-1], w).mean().item()) < 0.2
        # a fresh draw: uncorrelated with Bob's (|cos| ~ 1/sqrt(2 n B), 7 sigma)
        cos = (noises[-1].conj() * w).sum().real / (noises[-1].norm() * w.norm())
        assert abs(cos.item()) < 7 / math.sqrt(2 * n * 2)
    assert not torch.equal(noises[0], noises[1])
    oracle = _send(atk, ctx, build("attack", "pgd", surface="channel", psr_db=-10, knows="all")._draws(ctx)[0])
    assert torch.allclose(_noise(oracle), w, atol=1e-5)                   # "all": Bob's own noise
    none = _send(atk, ctx, build("attack", "pgd", surface="channel", psr_db=-10, knows="none")._draws(ctx)[0])
    assert not torch.allclose(none["state"].h, h.expand(-1, n))           # "none": a fresh fade too


def test_oracle_default_is_unchanged_and_flags_agree(crops) -> None:
    link = Link(pretrained("softcast-cbr1_6"), Rayleigh(csi="estimated"))
    x = crops[:1]

    def run(**kw):
        return build("attack", "pgd", surface="channel", psr_db=-10, steps=2, seed=4, **kw)(
            link, x, 10.0, generator=torch.Generator().manual_seed(SEED))

    base = run()
    for kw in ({"knows": "all"}, {"channel_known": True}, {"channel_known": True, "knows": "all"}):
        r = run(**kw)
        assert torch.equal(r.perturbation, base.perturbation) and torch.equal(r.output, base.output)
    blind, none = run(channel_known=False, eot=2), run(knows="none", eot=2)
    assert torch.equal(blind.perturbation, none.perturbation)
    assert base.config["knows"] == "all" and none.config["knows"] == "none" and not none.config["channel_known"]
    fading = run(knows="fading", eot=2)
    assert fading.config["channel_known"] and not torch.equal(fading.perturbation, base.perturbation)
    assert resolve_knows(None, None) == "all" and resolve_knows(False, None) == "none"
    with pytest.raises(ValueError, match="knows must be one of 'all', 'fading', 'none', got 'noise'"):
        run(knows="noise")
    with pytest.raises(ValueError, match="channel_known=False contradicts knows='fading'"):
        run(knows="fading", channel_known=False)


@pytest.mark.slow
def test_only_the_noise_knowing_attack_aligns_with_bobs_noise(crops) -> None:
    # AWGN, keyed spreading on the default codec, PSR -10 dB = Bob's noise power at SNR 10 dB.  Averaged
    # over guessed keys, the gradient keeps only what every key passes alike: the signal and Bob's noise
    # realisation, when the attack replays it.  So EOT-PGD that knows the noise leans its perturbation
    # on it (measured 0.30 / 0.15 on these crops, far above the 1/sqrt(2 n B) = 0.011 of chance); without it
    # the cosine is chance (0.02 / 0.03)
    link = Link(pretrained(DEFAULT_IMAGE_CODEC), AWGN())
    dl = KeyedSpreadDefense(key=bytes(range(32)), pilots=16).wrap(link)
    x = crops
    n = dl.n_symbols(tuple(x.shape[1:]))

    def cos(knows: str) -> float:
        r = KeyEOTPGD(surface="channel", psr_db=-10, steps=10, keys=8, knows=knows)(
            dl, x, 10.0, generator=torch.Generator().manual_seed(SEED))
        d = r.link["interference"]
        w = r.link["raw"] - r.link["transmitted"] - d
        return ((d.conj() * w).sum().real / (d.norm() * w.norm())).item()

    chance = 1 / math.sqrt(2 * n * 2)
    assert cos("all") > 10 * chance
    assert abs(cos("fading")) < 5 * chance


def test_keyed_attacks_take_the_knowledge(crops) -> None:
    link = Link(pretrained(DEFAULT_IMAGE_CODEC), AWGN())
    dl = KeyedSpreadDefense(key=bytes(range(32)), pilots=16).wrap(link)
    x = crops[:1]
    for atk in (KeyEOTPGD(surface="channel", psr_db=-10, steps=1, keys=2, knows="fading", eot=2),
                KeyEOTAPGD(psr_db=-10, steps=2, keys=2, knows="fading")):
        assert len(atk._draws(_ctx(dl, x))) == 2 * atk.eot
        r = atk(dl, x, 10.0, generator=torch.Generator().manual_seed(SEED))
        assert r.config["knows"] == "fading" and r.config["keys"] == 2
        assert torch.allclose(r.measured, torch.full_like(r.measured, -10.0), atol=1e-3)
    hybrid = KeyEOTPGD(surface="channel", psr_db=-10, steps=1, keys=1, restarts=2, knows="fading", correlated_start=True)
    r = hybrid(dl, x, 10.0, generator=torch.Generator().manual_seed(SEED))
    assert r.config["correlated_start"] and torch.allclose(r.measured, torch.full_like(r.measured, -10.0), atol=1e-3)
    with pytest.raises(ValueError, match="correlated_start: the re-radiation start is on the channel surface only"):
        KeyEOTPGD(surface="symbols", psr_db=-10, correlated_start=True)
    cj = CorrelatedJammer(psr_db=-10, phases=2, knows="fading", eot=2)
    assert cj.config()["eot"] == 2 and CorrelatedJammer(psr_db=-10, eot=3).eot == 1   # "all": one draw, Bob's
    assert torch.isfinite(cj(dl, x, 10.0, generator=torch.Generator().manual_seed(SEED)).output).all()
    with pytest.raises(ValueError, match="knows must be one of"):
        CorrelatedJammer(psr_db=-10, knows="noise")
    with pytest.raises(ValueError, match="keys must be >= 1 guessed key per step"):
        KeyEOTAPGD(psr_db=-10, keys=0)
