"""Separation baselines: ideal-code budget, quality search, the LDPC link and its cliff."""

from __future__ import annotations

import logging
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from skimage import data, transform

from semguard.baselines import (MCS, LdpcLink, best_mcs, block_capacity_bits, capacity_bits,
                                codeword_layout, encode_at_budget, estimate_bler)
from semguard.baselines.mcs import awgn_threshold_db, best_mcs_fading, success_probability
from semguard.baselines._image import decode_image, encode_image, to_uint8
from semguard.baselines.link import bits_to_bytes, bytes_to_bits
from semguard.baselines.phy import post_equalization
from semguard.channels import AWGN, Rayleigh
from semguard.evaluation.image_eval import eval_baseline
from semguard.metrics.image import psnr
from semguard.registry import available, build


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """Astronaut resized to 48x48, [1, 3, 48, 48] in [0, 1]."""
    img = transform.resize(data.astronaut(), (48, 48), anti_aliasing=True)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def test_registry_names():
    assert {"jpeg_capacity", "webp_capacity", "webp_ldpc", "jpeg_ldpc"} <= set(available("baseline"))
    assert isinstance(build("baseline", "jpeg_ldpc", mcs="QPSK-1/2"), LdpcLink)


@pytest.mark.parametrize("n, snr_db, expected", [
    (100, 0.0, 100.0),  # log2(1 + 1) = 1
    (100, 10 * math.log10(3), 200.0),  # log2(4) = 2
    (32768, 10 * math.log10(15), 131072.0),  # log2(16) = 4
    (7, 30.0, 7 * math.log2(1001)),
    (0, 20.0, 0.0),
])
def test_capacity_bits_by_hand(n, snr_db, expected):
    assert capacity_bits(n, snr_db) == pytest.approx(expected, rel=1e-9)


def test_block_capacity_uses_instantaneous_gain():
    h = torch.tensor([[1.0 + 0j] * 4, [math.sqrt(3) + 0j] * 4, [0j] * 4], dtype=torch.complex64)
    bits = block_capacity_bits(h, 0.0)  # |h|^2 = 1, 3, 0 at SNR 1 -> 1, 2, 0 bits per use
    assert bits.tolist() == pytest.approx([4.0, 8.0, 0.0], rel=1e-6)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
@pytest.mark.parametrize("target_q", [20, 60, 90])
def test_encode_at_budget_is_largest_fitting_quality(photo, fmt, target_q):
    img = to_uint8(photo)[0]
    budget = 8 * len(encode_image(img, fmt, target_q)) + 3
    data_, q = encode_at_budget(img, fmt, budget)
    assert q >= target_q
    assert 8 * len(data_) <= budget
    assert data_ == encode_image(img, fmt, q)
    if q < 100:
        assert 8 * len(encode_image(img, fmt, q + 1)) > budget


def test_encode_at_budget_non_monotone_sizes(monkeypatch):
    # fake codec: 10 bytes per quality step, with a spike at quality 56 that bisection visits
    # (100 -> 50 -> 75 -> 62 -> 56 ...); the scan above the boundary still finds 57..59
    sizes = {q: 10 * q for q in range(101)} | {56: 5000}
    monkeypatch.setattr("semguard.baselines.capacity.encode_image", lambda img, fmt, q, **_: bytes(sizes[q]))
    img = np.zeros((4, 4, 3), np.uint8)
    assert encode_at_budget(img, "webp", 8 * 600)[1] == 59  # a pure bisection would stop at 55
    assert encode_at_budget(img, "webp", 8 * 540)[1] == 54


def test_encode_at_budget_extremes(photo):
    img = to_uint8(photo)[0]
    assert encode_at_budget(img, "jpeg", 100.0) == (b"", None)  # JPEG headers alone exceed 100 bits
    smallest_webp = 8 * len(encode_image(img, "webp", 0))
    assert encode_at_budget(img, "webp", smallest_webp) == (encode_image(img, "webp", 0), 0)
    assert encode_at_budget(img, "webp", smallest_webp - 1) == (b"", None)
    data_, q = encode_at_budget(img, "webp", 1e9)
    assert q == 100 and data_ == encode_image(img, "webp", 100)
    with pytest.raises(ValueError, match="uint8 array"):
        encode_at_budget(img.astype(np.float32), "webp", 1e4)
    with pytest.raises(ValueError, match="format"):
        encode_at_budget(img, "png", 1e4)


@pytest.mark.parametrize("name", ["jpeg_capacity", "webp_capacity"])
def test_capacity_baseline_awgn(photo, name):
    base = build("baseline", name)
    n = 48 * 48 * 3 // 6
    out = base(photo, AWGN(), 15.0, n)
    info = out["info"][0]
    assert out["x_hat"].shape == photo.shape and out["bits"].shape == (1,)
    assert info["budget_bits"] == pytest.approx(capacity_bits(n, 15.0), rel=1e-6)
    # JPEG sends whichever chroma mode decodes better at the budget; the file is that mode's
    data_, q = encode_at_budget(to_uint8(photo)[0], name.split("_")[0], info["budget_bits"],
                                subsampling=info["subsampling"] or "4:2:0")
    assert info["format"] == name.split("_")[0] and info["quality"] == q and info["success"] and out["bits"].item() == 8 * len(data_)
    expected = torch.from_numpy(decode_image(data_, 48, 48)).permute(2, 0, 1).float() / 255
    assert torch.equal(out["x_hat"][0], expected)
    low = base(photo, AWGN(), -10.0, n)  # 115 bits: nothing fits -> flat grey
    assert not low["info"][0]["success"] and low["bits"].item() == 0
    assert torch.all(low["x_hat"] == 0.5)


def test_capacity_baseline_rayleigh_oracle_budget(photo):
    n, ch = 1152, Rayleigh()
    out = build("baseline", "webp_capacity")(photo.repeat(3, 1, 1, 1), ch, 10.0, n,
                                            generator=torch.Generator().manual_seed(5))
    state = ch.sample_state(3, n, 10.0, generator=torch.Generator().manual_seed(5))
    expected = block_capacity_bits(state.h, 10.0).tolist()
    assert [d["budget_bits"] for d in out["info"]] == pytest.approx(expected, rel=1e-6)
    assert len(set(round(b) for b in expected)) == 3  # one fade per image


def test_codeword_layout_by_hand():
    lay = codeword_layout(MCS(2, Fraction(1, 2)), 32768)  # 65536 coded bits, <= 1944 per codeword
    assert (lay.num_cw, lay.n_cw, lay.k, lay.payload_bits) == (34, 1926, 963, 32742)
    lay = codeword_layout(MCS(8, Fraction(5, 6)), 1000)  # 8000 bits -> 5 codewords of 1600
    assert (lay.num_cw, lay.n_cw, lay.k) == (5, 1600, 1333)
    with pytest.raises(ValueError, match="too small"):
        codeword_layout(MCS(2, Fraction(1, 3)), 8)
    assert MCS.parse("16qam-3/4") == MCS(4, Fraction(3, 4)) and MCS(6, Fraction(2, 3)).name == "64QAM-2/3"
    with pytest.raises(ValueError, match="QPSK-1/2"):
        MCS.parse("8PSK-1/2")


def test_bits_bytes_roundtrip():
    raw = bytes(range(256))
    bits = bytes_to_bits(raw, 2100, generator=torch.Generator().manual_seed(0))
    assert bits.shape == (2100,) and bits_to_bytes(bits)[:256] == raw


def test_post_equalization_mmse_equals_zf():
    g = torch.Generator().manual_seed(0)
    x = torch.polar(torch.ones(2, 64), torch.rand(2, 64, generator=g))
    mmse, zf = Rayleigh(equalizer="mmse"), Rayleigh(equalizer="zf")
    state = mmse.sample_state(2, 64, 5.0, generator=g)
    y = mmse.apply(x, state, generator=g)
    y1, no1 = post_equalization(mmse, y, state)
    y2, no2 = post_equalization(zf, y, state)
    assert torch.allclose(y1, y2, rtol=1e-4, atol=1e-5) and torch.allclose(no1, no2)
    assert torch.allclose(no1, state.n0 / state.h.abs().square(), rtol=1e-5)


def test_link_error_free_at_high_snr(photo):
    link = build("baseline", "webp_ldpc", mcs="QPSK-1/2")
    n = 48 * 48 * 3 // 3  # 2304 symbols -> 3 codewords of 1536 bits, 2304 payload bits
    out = link(photo, AWGN(), 25.0, n, generator=torch.Generator().manual_seed(0))
    info = out["info"][0]
    assert info["success"] and info["codeword_errors"] == 0 and info["mcs"] == "QPSK-1/2"
    data_, q = encode_at_budget(to_uint8(photo)[0], "webp", info["payload_bits"])
    assert q == info["quality"] is not None and out["bits"].item() == 8 * len(data_)
    expected = torch.from_numpy(decode_image(data_, 48, 48)).permute(2, 0, 1).float() / 255
    assert torch.equal(out["x_hat"][0], expected)  # same PSNR as the plain WebP decode


def test_link_fails_to_grey_at_low_snr(photo):
    link = LdpcLink(fmt="webp", mcs="QPSK-1/2")
    out = link(photo, AWGN(), -5.0, 2304, generator=torch.Generator().manual_seed(0))
    info = out["info"][0]
    assert not info["success"] and info["codeword_errors"] > 0 and info["quality"] is not None
    assert torch.all(out["x_hat"] == 0.5)


def test_link_rayleigh_deep_fades_fail(photo):
    # one codeword per image (QPSK-1/2, 1944 bits); AWGN at 10 dB never fails (waterfall ~1.5 dB),
    # Rayleigh at average 10 dB fails when |h|^2 SNR < ~1.5 dB: P = 1 - exp(-10^(-0.85)) ~ 0.13
    imgs = torch.nn.functional.interpolate(photo, size=(12, 12), mode="area").clamp(0, 1).repeat(48, 1, 1, 1)
    link = LdpcLink(fmt="webp", mcs="QPSK-1/2")
    ok_awgn = [d["success"] for d in link(imgs[:8], AWGN(), 10.0, 972,
                                           generator=torch.Generator().manual_seed(1))["info"]]
    out = link(imgs, Rayleigh(), 10.0, 972, generator=torch.Generator().manual_seed(2))
    fail = 1 - np.mean([d["success"] for d in out["info"]])
    assert all(ok_awgn) and out["info"][0]["quality"] is not None
    assert 0.02 <= fail <= 0.35
    lost = [i for i, d in enumerate(out["info"]) if not d["success"]]
    assert torch.all(out["x_hat"][lost] == 0.5)


def test_best_mcs_follows_snr(caplog):
    n = 96  # short codewords and a 3-entry table keep the Monte Carlo fast
    table = (MCS(2, Fraction(1, 3)), MCS(4, Fraction(1, 2)), MCS(8, Fraction(5, 6)))
    hi = best_mcs(30.0, n, table=table, num_codewords=32)
    mid = best_mcs(6.0, n, table=table, num_codewords=32)
    assert hi == MCS(8, Fraction(5, 6))
    assert mid.spectral_efficiency < math.log2(1 + 10 ** 0.6) <= hi.spectral_efficiency
    assert codeword_layout(mid, n).payload_bits < codeword_layout(hi, n).payload_bits
    with caplog.at_level(logging.WARNING, logger="semguard.baselines.mcs"):
        low = best_mcs(-10.0, n, table=table, num_codewords=32)
    assert low == MCS(2, Fraction(1, 3)) and "no MCS meets" in caplog.text
    # 6.2 dB is decided at the 6.0 dB point of the 0.25 dB grid: same answer, served from the cache
    assert best_mcs(6.2, n, table=table, num_codewords=32) == mid


def test_bad_input_is_a_clear_error(photo):
    link, cap = LdpcLink(mcs="QPSK-1/2"), build("baseline", "webp_capacity")
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        cap(photo[0], AWGN(), 10.0, 1000)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        link(photo[:, :1], AWGN(), 10.0, 1000)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cap(photo * 255, AWGN(), 10.0, 1000)
    with pytest.raises(ValueError, match="too small"):
        link(photo, AWGN(), 10.0, 5)
    with pytest.raises(ValueError, match="n_symbols"):
        cap(photo, AWGN(), 10.0, 0)
    with pytest.raises(TypeError, match="Channel"):
        cap(photo, "awgn", 10.0, 1000)
    with pytest.raises(ValueError, match="snr_db"):
        link(photo, AWGN(), float("nan"), 1000)


_TABLE = (MCS(2, Fraction(1, 3)), MCS(4, Fraction(1, 2)), MCS(8, Fraction(5, 6)))  # fast Monte Carlo


def test_awgn_threshold_is_the_first_error_free_grid_point():
    mcs, n_cw = MCS(4, Fraction(1, 2)), 96
    thr = awgn_threshold_db(mcs, n_cw, num_codewords=32)
    limit = 10 * math.log10(2 ** 2 - 1)  # 16QAM-1/2 carries 2 bits: Shannon limit 4.77 dB
    assert limit <= thr <= limit + 6  # a 96-bit code is a few dB from the limit
    assert estimate_bler(mcs, thr, n_cw, num_codewords=32).errors == 0
    assert thr - 0.5 < limit or estimate_bler(mcs, thr - 0.5, n_cw, num_codewords=32, stop_after_errors=1).errors > 0


def test_success_probability_matches_rayleigh_outage():
    # one fade per block: success iff |h|^2 SNR >= threshold, P = exp(-thr / SNR) for |h|^2 ~ Exp(1)
    lay = codeword_layout(MCS(2, Fraction(1, 3)), 96)
    for snr_db, thr_db in ((10.0, 2.0), (20.0, 12.5), (5.0, 6.0)):
        p = success_probability(Rayleigh(), snr_db, lay, thr_db, draws=8000)
        expected = math.exp(-10 ** ((thr_db - snr_db) / 10))
        assert p == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / 8000) + 1e-3)
    assert success_probability(AWGN(), 3.0, lay, 2.5) == 1.0 and success_probability(AWGN(), 2.0, lay, 2.5) == 0.0
    assert success_probability(Rayleigh(), 10.0, lay, math.inf) == 0.0
    # with 2 least-squares pilots the estimation error adds N0/2 to the noise: P = exp(-1.5 thr / SNR)
    for ch, factor in ((Rayleigh(csi="estimated", pilots=2), 1.5), (Rayleigh(csi_error_var=0.1), 1 + 0.1 * 10)):
        p = success_probability(ch, 10.0, lay, 2.0, draws=8000)
        expected = math.exp(-factor * 10 ** ((2.0 - 10.0) / 10))
        assert p == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / 8000) + 1e-3)


def test_fading_amc_backs_off_and_agrees_with_awgn_amc():
    n = 96

    def payload(lay):  # quality grows with the payload, as an image codec's does
        return float(lay.payload_bits)

    for snr_db in (6.0, 30.0):  # on AWGN both rules take the largest payload that decodes
        assert best_mcs_fading(AWGN(), snr_db, n, payload, 0.0, table=_TABLE, num_codewords=32) == \
            best_mcs(snr_db, n, table=_TABLE, num_codewords=32)
    awgn_choice = best_mcs(30.0, n, table=_TABLE, num_codewords=32)
    fading_choice = best_mcs_fading(Rayleigh(), 30.0, n, payload, 0.0, table=_TABLE, num_codewords=32)
    # 256QAM-5/6 (640 payload bits) needs 23.5 dB here: at 30 dB average it is lost in the ~20% of
    # fades with |h|^2 < 10^-0.65; with quality = payload and nothing lost it is still the best bet
    # (0.8 * 640 > 192 bits of 16QAM-1/2), but not when a loss costs 10^4 (16QAM-1/2, needing
    # 7.5 dB, is lost in ~0.5% of fades)
    assert awgn_choice == MCS(8, Fraction(5, 6))
    cautious = best_mcs_fading(Rayleigh(), 30.0, n, payload, -1e4, table=_TABLE, num_codewords=32)
    assert cautious.spectral_efficiency < fading_choice.spectral_efficiency <= awgn_choice.spectral_efficiency


def test_fading_link_picks_each_images_mcs_from_its_own_rate_quality(monkeypatch):
    # thresholds 1.5 dB above the Shannon limit of each MCS stand in for the LDPC simulations
    def shannon_gap(mcs, n_cw, **_):
        return 10 * math.log10(2 ** mcs.spectral_efficiency - 1) + 1.5

    monkeypatch.setattr("semguard.baselines.mcs.awgn_threshold_db", shannon_gap)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    smooth = torch.stack([yy, xx, 0.5 * (yy + xx)])                       # a few hundred bytes say it all
    busy = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))  # every extra byte helps
    link, ch = LdpcLink(fmt="webp"), Rayleigh()
    both = link(torch.stack([smooth, busy]), ch, 10.0, 2048, generator=torch.Generator().manual_seed(1))["info"]
    alone = [link(img[None], ch, 10.0, 2048, generator=torch.Generator().manual_seed(1))["info"][0]["mcs"]
             for img in (smooth, busy)]
    assert [d["mcs"] for d in both] == alone                               # a batch-mate does not change it
    for d, img in zip(both, (smooth, busy)):  # the AMC's expectation lies between losing and decoding the image
        lost = float(psnr(torch.full_like(img, 0.5)[None], img[None]))
        assert lost < d["psnr_expected"] < link._psnr_at(to_uint8(img[None])[0], img, d["payload_bits"])
    assert MCS.parse(alone[0]).spectral_efficiency < MCS.parse(alone[1]).spectral_efficiency


@pytest.mark.slow  # ~100 s: LDPC thresholds of every MCS at this block length
def test_fading_link_reports_the_psnr_its_amc_expects_and_draws_scatter_around_it(photo):
    # 64 copies of one small image, each its own fade: the mean measured PSNR must match the AMC's
    # outage-weighted expectation, within the binomial scatter of 64 success/failure draws
    imgs = torch.nn.functional.interpolate(photo, size=(16, 16), mode="area").clamp(0, 1).repeat(64, 1, 1, 1)
    out = LdpcLink(fmt="webp")(imgs, Rayleigh(), 10.0, 972, generator=torch.Generator().manual_seed(3))
    info = out["info"]
    expected = {d["psnr_expected"] for d in info}
    assert len(expected) == 1 and len({d["mcs"] for d in info}) == 1      # same image, same choice
    measured = psnr(out["x_hat"], imgs)
    ok = torch.tensor([d["success"] for d in info])
    good, lost = float(measured[ok].mean()), float(measured[~ok].mean()) if (~ok).any() else 0.0
    p_hat = float(ok.float().mean())
    sigma = (good - lost) * math.sqrt(max(p_hat * (1 - p_hat), 0.02) / 64)
    assert 0.5 <= p_hat < 1.0
    assert float(measured.mean()) == pytest.approx(expected.pop(), abs=3 * sigma)
    res = eval_baseline(LdpcLink(fmt="webp"), imgs[:4], Rayleigh(), 10.0, 972, realizations=2)
    assert "psnr_expected" in res and "psnr_expected" not in eval_baseline(
        LdpcLink(fmt="webp"), imgs[:2], AWGN(), 10.0, 972)
