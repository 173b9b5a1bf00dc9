"""Keyed spreading against re-radiation (issue 19, session 15): the pilots inside the spreading see a
re-radiating jammer as the channel change it is, whether or not the public CSI pilots are re-radiated
too; the attenuation it leaves is the SINR loss ``|1 + c|^2``; a re-radiation one symbol late despreads
as white noise; the correlated jammer reports the gain it radiated."""

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.data.photos import shipped_photos
from semguard.defenses.keyed_attacks import CorrelatedJammer
from semguard.defenses.keyed_spread import KeyedSpreadDefense, gain_and_floor
from semguard.link import Link

KEY = b"session key from PLKG, 32 bytes"
C = complex(-0.3, 0.2)


def _gen(seed=5):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def crops():
    return shipped_photos()[:2, :, 96:160, 96:160].contiguous()       # two 64x64 crops


@pytest.fixture(scope="module")
def codec():
    return pretrained(DEFAULT_IMAGE_CODEC)


def _gain(dl, out):
    """The receiver's despread gain and floor (as ``SpreadPilotCodec.correct`` reads them)."""
    y_zf, noise = out["deciphered_state"].zero_forced(out["deciphered"])
    n = y_zf.shape[1] - dl.codec.pilots
    return gain_and_floor(y_zf[:, n:], dl.codec.p, noise.mean(1, keepdim=True), y_zf[:, :n])


def test_reradiation_is_the_channel_change_h_times_1_plus_c(codec, crops):
    # at 40 dB the noise is negligible: Bob receives h (1 + c) s, equalises with h_est and reads the
    # despread gain a = h (1 + c) / h_est off the keyed pilots, so a h_est = h (1 + c) (by hand)
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(Link(codec, Rayleigh(csi="estimated", pilots=8)))
    with torch.no_grad():
        ref = dl(crops, 40.0, generator=_gen(), decode=False)
        h, he = ref["state"].h[:, :1], ref["state"].h_est[:, :1]
        d = C * ref["state"].h * ref["transmitted"]
        out = dl(crops, 40.0, generator=_gen(), interference=d)
        a, _ = _gain(dl, out)
        assert torch.allclose(a * he, h * (1 + C), rtol=2e-3, atol=2e-3)
        # the public CSI pilots re-radiated too: h_est moves by c h, the keyed pilots absorb it and the
        # decoder gets the same symbols, so the same image
        both = dl(crops, 40.0, generator=_gen(), interference=d, pilot_interference=C * h)
        a2, _ = _gain(dl, both)
        assert torch.allclose(a2 * (he + C * h), h * (1 + C), rtol=2e-3, atol=2e-3)
        assert torch.allclose(both["output"], out["output"], atol=2e-3)
        # clean path: no interference gives a h_est = h
        a0, _ = _gain(dl, ref)
        assert torch.allclose(a0 * he, h, rtol=2e-3, atol=2e-3)


def test_the_attenuation_is_a_sinr_loss_of_1_plus_c_squared(codec, crops):
    # over AWGN at 10 dB, pure re-radiation of gain c: gain |1 + c|, floor N0 (nothing else added), so
    # the SINR the decoder is told is |1 + c|^2 / N0: 0.61 / 0.1 here, within the pilots' error
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(Link(codec, AWGN()))
    with torch.no_grad():
        ref = dl(crops, 10.0, generator=_gen(), decode=False)
        out = dl(crops, 10.0, generator=_gen(), interference=C * ref["transmitted"], decode=False)
        a, s2 = _gain(dl, out)
    assert torch.allclose(a, torch.full_like(a, 1 + C), atol=0.03)
    sinr = a.abs().square() / s2
    assert torch.allclose(sinr, torch.full_like(sinr, abs(1 + C) ** 2 / 0.1), rtol=0.2)


def test_reradiation_one_symbol_late_despreads_as_white_noise(codec, crops):
    # a delayed copy of U_k [x, p] is uncorrelated with it after U_k^H: the gain stays h / h_est and
    # the floor grows by |c|^2 |h|^2 / |h_est|^2 (white interference of that power)
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(Link(codec, Rayleigh(csi="estimated", pilots=8)))
    with torch.no_grad():
        ref = dl(crops, 40.0, generator=_gen(), decode=False)
        st = ref["state"]
        h, he = st.h[:, :1], st.h_est[:, :1]
        late = C * torch.roll(st.h * ref["transmitted"], 1, dims=1)
        out = dl(crops, 40.0, generator=_gen(), interference=late, decode=False)
        a, s2 = _gain(dl, out)
    assert torch.allclose(a * he / h, torch.ones_like(a), atol=0.1)
    want = (st.n0 + abs(C) ** 2 * h.abs().square()) / he.abs().square()
    assert torch.allclose(s2, want, rtol=0.25)


def test_correlated_jammer_reports_the_gain_it_radiated(codec, crops):
    dl = KeyedSpreadDefense(key=KEY, pilots=128).wrap(Link(codec, AWGN()))
    jam = CorrelatedJammer(psr_db=-10.0, phases=4, fractions=(1.0, 0.35))
    assert jam.chosen_c is None
    r = jam(dl, crops, 10.0, generator=_gen())
    c = jam.chosen_c
    assert c is not None and c.shape == (2, 1)
    hs = r.link["state"].h * r.link["transmitted"]
    radiated = (hs.conj() * r.link["interference"]).sum(1, keepdim=True) / hs.abs().square().sum(1, keepdim=True)
    assert torch.allclose(radiated, c, atol=0.02)          # the Gaussian rest is orthogonal to h s up to chance
