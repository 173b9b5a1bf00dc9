"""Keyed spreading: the keyed unitary (exactly unitary, reproducible, fresh per nonce and block), its
clean cost, the pilots' gain and noise estimate by hand, a perturbation crafted for the undefended
decoder acting like Gaussian noise of its power, the key-agnostic gain attack undone, the attacks that
know the defence, a hidden key and the one-line errors."""

import math

import pytest
import torch

from semguard.channels import AWGN
from semguard.channels import functional as F
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.data.photos import shipped_photos
from semguard.defenses.keyed_attacks import CorrelatedJammer, GuessedKeyLink, KeyEOTPGD
from semguard.defenses.keyed_spread import (
    KeyedSpreadDefense,
    gain_and_floor,
    pilot_sequence,
    spread_key,
)
from semguard.link import Link, batch_nonce
from semguard.metrics import psnr
from semguard.registry import available, build

KEY = b"session key from PLKG, 32 bytes"
NONCE = b"\x00" * 11 + b"\x07"


def _gen(seed=5):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def crops():
    return shipped_photos()[:2, :, 96:160, 96:160].contiguous()       # two 64x64 crops


@pytest.fixture(scope="module")
def link():
    return Link(pretrained(DEFAULT_IMAGE_CODEC), AWGN())


def test_registered_and_unitary_over_the_whole_block():
    assert "keyed-spread" in available("defense")
    d = build("defense", "keyed-spread", key=KEY, pilots=8)
    c, k = d.cipher, spread_key(KEY)
    n = 520                                                           # not a power of two: one DFT of 520
    assert c.chunk(n) == n
    x = torch.randn(3, n, dtype=torch.complex64, generator=_gen(0)) * torch.rand(3, n, generator=_gen(1))
    y = c.encrypt(x, k, NONCE)
    assert torch.allclose(y.norm(dim=1), x.norm(dim=1), rtol=1e-5)   # norm preserved
    assert torch.allclose(c.decrypt(y, k, NONCE), x, atol=1e-5)      # U^H U = I
    e = torch.zeros(1, n, dtype=torch.complex64)
    e[0, 17] = 1
    col = c.encrypt(e, k, NONCE).abs().square()                       # a column of U_k: every |entry|^2 = 1/n
    assert torch.allclose(col, torch.full_like(col, 1 / n), rtol=1e-3)


def test_same_key_and_nonce_reproduce_other_nonce_block_or_key_differ():
    c, k = KeyedSpreadDefense(key=KEY).cipher, spread_key(KEY)
    x = torch.randn(1, 256, dtype=torch.complex64, generator=_gen(2)).expand(2, -1).contiguous()
    y = c.encrypt(x, k, NONCE)
    assert torch.equal(y, c.encrypt(x, k, NONCE))
    corr = lambda a, b: float((a * b.conj()).sum().abs() / (a.norm() * b.norm()))
    assert corr(y[0], y[1]) < 0.25                                    # two blocks of one batch: two U_k
    assert corr(y[0], c.encrypt(x, k, b"\x01" * 12)[0]) < 0.25        # another nonce
    assert corr(y[0], c.encrypt(x, spread_key(b"other key"), NONCE)[0]) < 0.25
    assert spread_key(KEY) != KEY and len(spread_key(KEY)) == 32


def test_pilot_gain_and_floor_by_hand():
    p = pilot_sequence(4)
    assert torch.allclose(p.abs(), torch.ones(4))
    a = torch.tensor([[0.6 - 0.3j]])
    noise = torch.tensor([[0.1, -0.1, 0.1j, -0.1j]], dtype=torch.complex64)
    z = a * p + noise
    a_hat = (z * p.conj()).mean(1, keepdim=True)
    s2 = (z - a_hat * p).abs().square().sum(1, keepdim=True) / 3
    got_a, got_s2 = gain_and_floor(z, p, torch.zeros(1, 1))
    assert torch.allclose(got_a, a_hat) and torch.allclose(got_s2, s2)
    assert float(gain_and_floor(a * p, p, torch.full((1, 1), 0.05))[1]) == pytest.approx(0.05)   # floor
    # the data's unit power fixes the modulus: |a|^2 = mean|data|^2 - s2
    data = math.sqrt(0.36 + 0.09) * torch.ones(1, 100, dtype=torch.complex64)
    mod = gain_and_floor(a * p, p, torch.zeros(1, 1), data)[0].abs()
    assert float(mod) == pytest.approx(abs(complex(a)), rel=1e-5)


def _mse(o, x):
    return (o - x).square().mean((1, 2, 3))


def test_clean_cost_is_zero_noise_stays_white(link, crops):
    # unitary: the despread noise is CN(0, N0) and white, so the clean image only loses what the
    # pilots' estimate adds: over 12 draws the mean MSE is within 10 % of the undefended one's
    # (measured: equal to 2 digits on both crops)
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(link)
    with torch.no_grad():
        u = torch.stack([_mse(link(crops, 10.0, generator=_gen(i))["output"], crops) for i in range(12)]).mean(0)
        d = torch.stack([_mse(dl(crops, 10.0, generator=_gen(i), nonce=batch_nonce(i))["output"], crops)
                         for i in range(12)]).mean(0)
    assert torch.allclose(d, u, rtol=0.1)
    n0 = 0.1
    w = F.complex_noise((512, 1040), torch.tensor(n0), generator=_gen(3))
    ww = dl.cipher.decrypt(w, spread_key(KEY), NONCE)
    assert float(ww.abs().square().mean()) == pytest.approx(n0, rel=0.01)
    cov = (ww[:, :64].T @ ww[:, :64].conj()) / ww.shape[0]
    assert float((cov - torch.diag(torch.diagonal(cov))).abs().max()) < 6 * n0 / 512 ** 0.5


def test_perturbation_for_undefended_decoder_acts_like_equal_power_gaussian(link, crops):
    # PGD crafted on the undefended link at PSR -5 dB costs the undefended codec > 8 dB more than
    # Gaussian noise of its power.  Replayed through the keyed receiver (12 nonces, so 12 keyed
    # unitaries), its extra MSE over the clean defended link is that of equal-power Gaussian noise
    # within 30 % pooled over both crops (about 2 standard errors; measured 0.0028 / 0.0011 against
    # 0.0029 / 0.0009)
    psr = -5.0
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(link)
    r = build("attack", "pgd", surface="channel", psr_db=psr, steps=10)(link, crops, 10.0, generator=_gen())
    pad = lambda t: torch.cat([t, torch.zeros(t.shape[0], 128, dtype=t.dtype)], 1)
    with torch.no_grad():
        ref = r.link["state"].h * r.link["transmitted"]
        g_u = psnr(link(crops, 10.0, generator=_gen(),
                        interference=F.project_psr(F.complex_normal(ref.shape, generator=_gen(8)), ref, psr,
                                                   exact=True))["output"], crops)
        rep, gau = [], []
        for i in range(12):
            jam = F.project_psr(F.complex_normal(ref.shape, generator=_gen(100 + i)), ref, psr, exact=True)
            clean = _mse(dl(crops, 10.0, generator=_gen(i), nonce=batch_nonce(i))["output"], crops)
            for acc, d in ((rep, r.link["interference"]), (gau, jam)):
                out = dl(crops, 10.0, generator=_gen(i), nonce=batch_nonce(i), interference=pad(d))["output"]
                acc.append(_mse(out, crops) - clean)
    assert bool((g_u - psnr(r.output, crops) > 8).all())
    extra_rep, extra_gau = float(torch.stack(rep).mean()), float(torch.stack(gau).mean())
    assert extra_gau > 0 and extra_rep == pytest.approx(extra_gau, rel=0.3)


def test_gain_attack_is_undone_by_the_pilots(link, crops):
    # c h s commutes with every U_k: without the pilots' correction it would scale the image's symbols
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(link)
    with torch.no_grad():
        out = dl(crops, 10.0, generator=_gen(), decode=False)
        s = out["state"].h * out["transmitted"]
        plain = psnr(link(crops, 10.0, generator=_gen(), interference=-0.3 * link(crops, 10.0, generator=_gen(),
                          decode=False)["transmitted"])["output"], crops)
        cl = psnr(dl(crops, 10.0, generator=_gen())["output"], crops)
        att = psnr(dl(crops, 10.0, generator=_gen(), interference=-0.3 * s)["output"], crops)
    # 0.7 x: the SINR falls by 3.1 dB; the receiver loses no more than that SINR loss, while the
    # undefended codec (no gain correction) loses far more
    assert bool((cl - att < 3.5).all()) and bool((cl - plain > 5).all())


def test_adaptive_attacks_run_through_guessed_keys(link, crops):
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(link)
    sim = GuessedKeyLink(dl, _gen(1))
    with torch.no_grad():
        a, b = sim(crops, 10.0, generator=_gen())["transmitted"], sim(crops, 10.0, generator=_gen())["transmitted"]
    assert not torch.allclose(a, b)                                   # a fresh guessed key every call
    r = KeyEOTPGD(surface="channel", psr_db=-10.0, steps=2, keys=2)(dl, crops, 10.0, generator=_gen())
    assert torch.allclose(r.measured, torch.full_like(r.measured, -10.0), atol=0.05)
    # every sample of a batch of three gets its own averaged loss (the objective is PGD's, per sample)
    three = torch.cat([crops, crops.flip(-1)[:1]])
    r3 = KeyEOTPGD(surface="channel", psr_db=-10.0, steps=2, keys=2)(dl, three, 10.0, generator=_gen())
    assert r3.perturbation.shape[0] == 3 and torch.allclose(r3.measured, torch.full_like(r3.measured, -10.0), atol=0.05)
    c = CorrelatedJammer(psr_db=-10.0, phases=4, fractions=(1.0, 0.5))(dl, crops, 10.0, generator=_gen())
    assert bool((c.measured <= -10.0 + 0.05).all())
    assert r.config["keys"] == 2 and c.config["phases"] == 4


def test_key_hidden_and_bad_keys_rejected_in_one_line(link):
    d = KeyedSpreadDefense(key=KEY)
    for text in (repr(d), repr(d.wrap(link))):
        assert KEY.hex() not in text and "session key" not in text and spread_key(KEY).hex() not in text
    assert "<secret>" in repr(d)
    for bad, exc in ((b"", ValueError), ("a string", TypeError), (None, TypeError), (1234, TypeError)):
        with pytest.raises(exc, match=r"^key: ") as e:
            KeyedSpreadDefense(key=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="pilots must be"):
        KeyedSpreadDefense(key=KEY, pilots=1)
    with pytest.raises(ValueError, match="wrap an unciphered link"):
        d.wrap(d.wrap(link))
    with pytest.raises(TypeError, match="semguard Link"):
        d.wrap("link")
