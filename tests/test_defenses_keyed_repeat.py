"""Keyed spreading with ``repeat`` copies of the block (issue 19, session 19): the channel uses, the
despread copies, maximum-ratio combining by hand, the SINR a common-gain re-radiation leaves (``r``
times ``|1 + c|^2 / N0``), the re-radiation that defeats one copy on DeepSC, a key-blind perturbation
spread white and averaged down over the copies, the defaults unchanged and the one-line errors."""

import math

import pytest
import torch

from semguard.channels import AWGN
from semguard.cli.attack import _data, _metric, load_codec
from semguard.defenses.keyed_spread import (
    KeyedSpreadDefense,
    SpreadPilotCodec,
    combine_copies,
    gain_and_floor,
    pilot_sequence,
    spread_key,
)
from semguard.keys.ciphers import MixingCipher
from semguard.link import Link

KEY = b"session key from PLKG, 32 bytes"
NONCE = b"\x00" * 12
C = -math.sqrt(10**-0.5)  # anti-phase, all of a -5 dB PSR budget: |1 + c|^2 = 0.192 (-7.2 dB)


def _gen(seed=5):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def codec():
    return load_codec("deepsc")


@pytest.fixture(scope="module")
def tokens(codec):
    return _data(codec, 16)[0]  # 16 shipped sentences of 10 tokens: 80 symbols each


def _wrap(codec, repeat, pilots=None):
    pilots = pilots or (16 if repeat == 1 else 8)
    return KeyedSpreadDefense(key=KEY, pilots=pilots, repeat=repeat).wrap(Link(codec, AWGN()))


def test_repeat_2_sends_two_copies_in_176_uses(codec, tokens):
    dl = _wrap(codec, 2)
    assert dl.n_symbols((10,)) == 2 * (80 + 8) == 176  # 2.2x the 80 data symbols
    assert dl.codec.config == {"pilots": 8, "repeat": 2}
    with torch.no_grad():
        out = dl(tokens, 10.0, generator=_gen(), decode=False)
    s = out["transmitted"]
    assert s.shape == (16, 176)
    assert torch.allclose(s.abs().square().mean(1), torch.ones(16), atol=1e-5)  # power 1 per symbol
    # the key undoes the spreading into the two identical copies [x, p]
    v = dl.cipher.decrypt(s, spread_key(KEY), NONCE).reshape(16, 2, 88)
    assert torch.allclose(v[:, 0], v[:, 1], atol=1e-5)
    assert torch.allclose(v[:, 0, 80:], pilot_sequence(8).expand(16, -1), atol=1e-5)
    # the transmitted copies are not: one unitary spreads both, so no half of s repeats the other
    cos = (s[:, :88].conj() * s[:, 88:]).sum(1).abs() / (s[:, :88].norm(dim=1) * s[:, 88:].norm(dim=1))
    assert cos.max() < 0.5


def test_combining_by_hand():
    # two noiseless copies of x = [1, 1j]: gains 2 and 1j, the known floor 0.5.  Each copy's |a|^2 is
    # read off its data (mean |z|^2 - s2: 4 - 0.5 and 1 - 0.5), its phase off the pilots; so
    # w = 3.5 / 0.5 + 0.5 / 0.5 = 8 and x_hat = (sqrt(3.5) 2 x + sqrt(0.5) x) / 0.5 / 8
    p = pilot_sequence(2)
    x = torch.tensor([[1 + 0j, 1j]], dtype=torch.complex64)
    z = torch.stack([torch.cat([2 * x, 2 * p[None]], 1), torch.cat([1j * x, 1j * p[None]], 1)], 1)
    x_hat, w = combine_copies(z, p, torch.tensor([[0.5]]))
    assert torch.allclose(w, torch.tensor([[8.0]]), atol=1e-4)
    want = (2 * math.sqrt(3.5) + math.sqrt(0.5)) / 4
    assert torch.allclose(x_hat, want * x, atol=1e-5)
    # one copy alone is the single-copy receiver: data over its gain
    x1, w1 = combine_copies(z[:, :1], p, torch.tensor([[0.5]]))
    assert torch.allclose(x1, 2 * x / math.sqrt(3.5), atol=1e-5) and torch.allclose(w1, torch.tensor([[7.0]]))


@pytest.mark.parametrize("repeat", [1, 2, 3])
def test_reradiation_leaves_repeat_times_the_sinr(codec, tokens, repeat):
    # re-radiation d = c s (AWGN, 10 dB): every despread copy is (1 + c) [x, p] + white noise of N0, so
    # combining r copies leaves an error of N0 / (r |1 + c|^2) on x (by hand: 0.521 / r here), and the
    # decoder is told that SINR
    dl = _wrap(codec, repeat, pilots=16)
    with torch.no_grad():
        ref = dl(tokens, 10.0, generator=_gen(), decode=False)
        out = dl(tokens, 10.0, generator=_gen(), interference=C * ref["transmitted"], decode=False)
        x_hat, st = dl.codec.correct(out["deciphered"], out["deciphered_state"])
    want = 0.1 / (repeat * (1 + C) ** 2)
    err = (x_hat - ref["symbols"][:, :80]).abs().square().mean().item()
    assert err == pytest.approx(want, rel=0.12)
    told = (st.n0 / st.h.abs().square()).mean().item()  # the noise the decoder is told
    assert told == pytest.approx(want, rel=0.2)


def test_combining_recovers_deepsc_from_the_reradiation_that_defeats_one_copy(codec, tokens):
    bleu1, _ = _metric(codec)
    scores = {}
    for r in (1, 2):
        dl = _wrap(codec, r)
        with torch.no_grad():
            ref = dl(tokens, 10.0, generator=_gen(), decode=False)
            clean = bleu1(dl(tokens, 10.0, generator=_gen())["output"], tokens).mean().item()
            out = dl(tokens, 10.0, generator=_gen(), interference=C * ref["transmitted"])
        scores[r] = bleu1(out["output"], tokens).mean().item()
        assert clean > 0.97
    assert scores[1] < 0.8  # one copy: the -7.2 dB SINR loss costs BLEU-1
    assert scores[2] > scores[1] + 0.15  # two copies: +3 dB, most of it back


def test_key_blind_perturbation_is_spread_white_and_averaged_over_copies():
    # a perturbation with all its power on the first 8 symbols (one DeepSC token slot of copy 1):
    # after U_k^H, each copy sees it spread evenly (slot share ~ 1/10, not 1), the copies' parts are
    # uncorrelated, so their average carries half the power of one copy's part
    rows, n, r = 256, 88, 2
    d = torch.zeros(rows, r * n, dtype=torch.complex64)
    d[:, :8] = torch.polar(torch.ones(rows, 8), torch.rand(rows, 8, generator=_gen()) * 6.283)
    e = MixingCipher(max_chunk=1 << 24).decrypt(d, spread_key(KEY), NONCE).reshape(rows, r, n)[:, :, :80]
    per_symbol = e.abs().square().mean(0)  # [r, 80]
    assert torch.allclose(per_symbol, torch.full_like(per_symbol, 8 / 176), rtol=0.35)
    slot0 = e[:, :, :8].abs().square().sum(-1) / e.abs().square().sum(-1)
    assert slot0.mean().item() == pytest.approx(0.1, abs=0.02)
    avg = e.mean(1).abs().square().mean().item()
    assert avg == pytest.approx(e.abs().square().mean().item() / 2, rel=0.1)
    # without the key (plain repetition) the same perturbation stays on slot 0 of copy 1
    plain = d.reshape(rows, r, n)[:, :, :80]
    assert (plain[:, 0, :8].abs().square().sum(-1) / plain.abs().square().sum((1, 2))).min().item() == 1.0


def test_defaults_unchanged(codec, tokens):
    d = KeyedSpreadDefense(key=KEY)
    assert d.repeat == 1 and d.pilots == 512
    assert repr(d) == "KeyedSpreadDefense(key=<secret>, pilots=512, max_chunk=16777216)"
    one, dflt = _wrap(codec, 1), KeyedSpreadDefense(key=KEY, pilots=16).wrap(Link(codec, AWGN()))
    assert dflt.n_symbols((10,)) == 96 and dflt.codec.config == {"pilots": 16}
    with torch.no_grad():
        a = dflt(tokens, 10.0, generator=_gen())
        b = one(tokens, 10.0, generator=_gen())
    assert torch.equal(a["output"], b["output"]) and torch.equal(a["transmitted"], b["transmitted"])
    # repeat 1 is the single-copy receiver by hand: data over the pilots' gain
    y_zf, noise = a["deciphered_state"].zero_forced(a["deciphered"])
    g, _ = gain_and_floor(y_zf[:, 80:], dflt.codec.p, noise.mean(1, keepdim=True), y_zf[:, :80])
    x_hat, _ = dflt.codec.correct(a["deciphered"], a["deciphered_state"])
    assert torch.equal(x_hat, y_zf[:, :80] / g)


@pytest.mark.parametrize("bad", [0, -1, 17, 2.0, True, "2", None])
def test_bad_repeat_is_one_line(bad):
    with pytest.raises(ValueError, match=r"^repeat must be an integer from 1 to 16 copies") as e:
        KeyedSpreadDefense(key=KEY, repeat=bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="repeat must be"):
        SpreadPilotCodec(load_codec("deepsc"), 8, bad)
