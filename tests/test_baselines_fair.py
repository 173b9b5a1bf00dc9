"""Fair baselines: Clopper-Pearson sizing of the AMC, the shipped BLER table, low-rate 5G MCSs,
per-image best-of codecs, JPEG chroma modes, the fast decoder/demapper, pilots."""

from __future__ import annotations

import io
import shutil
from fractions import Fraction

import pytest
import torch
from PIL import Image
from scipy.stats import beta

from semguard.baselines import (MCS, LdpcLink, best_mcs, clopper_pearson_upper, codewords_needed,
                                encode_at_budget)
from semguard.baselines._image import decode_image, psnr_db, to_uint8
from semguard.baselines.bler_table import (SHIPPED_BLER_SHA256, allowed_bler, clopper_pearson_lower,
                                           load_bler_table, shipped_bler_table, shipped_table_path)
from semguard.baselines.link import pilot_positions
from semguard.baselines.mcs import LOW_RATE_5G, MCS_TABLE, estimate_bler
from semguard.baselines.phy import LdpcQamPhy, codeword_layout
from semguard.channels.awgn import AWGN
from semguard.channels.rayleigh import Rayleigh
from semguard.data.photos import shipped_photos
from semguard.metrics.image import psnr
from semguard.registry import build

OLD_TABLE = tuple(MCS(m, Fraction(r)) for m in (2, 4, 6, 8) for r in ("1/3", "1/2", "2/3", "3/4", "5/6"))


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Two shipped photos at 64x64, [2, 3, 64, 64]."""
    return torch.nn.functional.interpolate(shipped_photos()[:2], size=(64, 64), mode="area").clamp(0, 1)


# --- Clopper-Pearson ---------------------------------------------------------------------------

@pytest.mark.parametrize("errors,trials", [(0, 967), (1, 200), (3, 1000), (20, 512), (31, 32)])
def test_clopper_pearson_matches_scipy_beta(errors, trials):
    assert clopper_pearson_upper(errors, trials, 0.95) == pytest.approx(beta.ppf(0.95, errors + 1, trials - errors),
                                                                      rel=1e-9, abs=1e-12)
    lower = beta.ppf(0.05, errors, trials - errors + 1) if errors else 0.0
    assert clopper_pearson_lower(errors, trials, 0.95) == pytest.approx(lower, rel=1e-9, abs=1e-12)


def test_clopper_pearson_by_hand_and_sizing():
    # zero errors in n: 1 - 0.05^(1/n); n = 967: 1 - exp(ln 0.05 / 967) = 1 - exp(-0.0030980) = 0.0030932
    assert clopper_pearson_upper(0, 967) == pytest.approx(0.0030932, abs=2e-7)
    # 34 codewords per image, 10% image error: p_max = 1 - 0.9^(1/34) = 0.0030940
    p_max = allowed_bler(0.1, 34)
    assert p_max == pytest.approx(0.0030940, abs=2e-7)
    n = codewords_needed(p_max)
    assert n == 967 and clopper_pearson_upper(0, n) <= p_max < clopper_pearson_upper(0, n - 1)
    # the old rule (0 errors in 128) only bounds the BLER below 2.3%
    assert clopper_pearson_upper(0, 128) == pytest.approx(0.0231, abs=1e-4)
    with pytest.raises(ValueError, match="errors <= trials"):
        clopper_pearson_upper(5, 3)


# --- the shipped BLER table ---------------------------------------------------------------------

def test_shipped_table_loads_and_is_refused_when_tampered(tmp_path):
    table = shipped_bler_table()
    assert table is not None and ("QPSK-1/2", 1926) in table
    bad = tmp_path / "bler_table.json"
    shutil.copy(shipped_table_path(), bad)
    raw = bytearray(bad.read_bytes())
    i = raw.index(b'"errors": [') + len(b'"errors": [')
    raw[i] = ord("9") if raw[i] != ord("9") else ord("8")  # one count changed
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256"):
        load_bler_table(bad, SHIPPED_BLER_SHA256)


def test_table_decides_the_amc_without_simulating(monkeypatch):
    def no_sim(*_, **__):
        raise AssertionError("simulated at run time")

    monkeypatch.setattr("semguard.baselines.mcs.estimate_bler", no_sim)
    table = shipped_bler_table()
    lo, hi = best_mcs(3.0, 32768), best_mcs(12.0, 32768)
    assert hi.spectral_efficiency > lo.spectral_efficiency
    for mcs, snr in ((lo, 3.0), (hi, 12.0)):  # the choice's bound meets the target at that SNR
        lay = codeword_layout(mcs, 32768)
        est = table.lookup(mcs.name, lay.n_cw, snr)
        assert est.upper(0.95) <= allowed_bler(0.1, lay.num_cw)


def test_table_matches_a_fresh_simulation_within_its_interval():
    # waterfall points of QPSK-1/2 (1926-bit codewords): a fresh simulation with another seed must
    # give a count whose 99% Clopper-Pearson interval overlaps the table's
    pts = shipped_bler_table().points("QPSK-1/2", 1926)
    chosen = [s for s, e in sorted(pts.items()) if 0.1 <= e.bler <= 0.9][:2]
    assert chosen, "the table has no waterfall point of QPSK-1/2"
    for snr in chosen:
        ref = pts[snr]
        fresh = estimate_bler(MCS.parse("QPSK-1/2"), snr, 1926, num_codewords=64, seed=12345)
        assert clopper_pearson_lower(fresh.errors, fresh.trials, 0.995) <= clopper_pearson_upper(
            ref.errors, ref.trials, 0.995)
        assert clopper_pearson_lower(ref.errors, ref.trials, 0.995) <= clopper_pearson_upper(
            fresh.errors, fresh.trials, 0.995)


# --- low-rate 5G MCSs ---------------------------------------------------------------------------

def test_low_rate_entries_are_5g_mcs_0_to_4():
    assert [m.code_rate * 1024 for m in LOW_RATE_5G] == [120, 157, 193, 251, 308]
    assert LOW_RATE_5G[0].spectral_efficiency == pytest.approx(0.234, abs=1e-3)
    assert set(LOW_RATE_5G) <= set(MCS_TABLE) and set(OLD_TABLE) <= set(MCS_TABLE)


def test_rate_below_one_fifth_repeats_the_mother_code():
    # Sionna's 5G encoder refuses k/n < 1/5: the mother code runs at ~1/5 and its bits repeat
    phy = LdpcQamPhy(2, 1926, 225)
    assert phy.n_mother == 1124 and 225 / phy.n_mother >= 0.2
    u = torch.randint(0, 2, (4, 1, 225), generator=torch.Generator().manual_seed(0)).float()
    x = phy.modulate(u, 963)
    assert x.shape == (4, 963)
    # noiseless: LLRs from the symbols decode to the sent bits
    assert torch.equal(phy.demodulate(x, torch.full(x.shape, 1e-2), 1), u)


def test_low_rate_mcs_works_where_the_old_table_failed(caplog):
    n = 1944  # two 1944-bit QPSK codewords per block: a WebP file of an 8x8 image (42 bytes) fits
    snr = -3.0
    old = best_mcs(snr, n, table=OLD_TABLE, bler_table=None)
    new = best_mcs(snr, n, bler_table=None)
    assert "no MCS meets" in caplog.text and old == MCS(2, Fraction(1, 3))
    assert new in LOW_RATE_5G
    img = torch.full((8, 3, 8, 8), 0.5) + 0.1 * torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    ok_new = [d["success"] for d in LdpcLink(mcs=new, fmt="webp")(img, AWGN(), snr, n, generator=gen)["info"]]
    ok_old = [d["success"] for d in LdpcLink(mcs=old, fmt="webp")(img, AWGN(), snr, n, generator=gen)["info"]]
    assert sum(ok_new) >= 7 and sum(ok_old) == 0  # 10% image error allowed: 7 of 8 at the least


# --- fast decoder and demapper ------------------------------------------------------------------

@pytest.mark.parametrize("m", [2, 4, 6, 8])
def test_separable_demapper_equals_sionnas(m):
    phy = LdpcQamPhy(m, 240, 120)
    gen = torch.Generator().manual_seed(m)
    y = torch.complex(torch.randn(3, 200, generator=gen), torch.randn(3, 200, generator=gen))
    no = 0.01 + torch.rand(3, 200, generator=gen)
    assert torch.allclose(phy.llr(y, no), phy.demapper(y, no), rtol=1e-4, atol=1e-3)


def test_early_stopping_decodes_as_the_full_decoder():
    full, fast = LdpcQamPhy(4, 960, 480, early_stop=False), LdpcQamPhy(4, 960, 480)
    gen = torch.Generator().manual_seed(0)
    for snr in (5.0, 6.5):  # in the waterfall and above it
        u = torch.randint(0, 2, (64, 1, 480), generator=gen).float()
        x = full.modulate(u, 240)
        no = torch.full(x.shape, 10 ** (-snr / 10))
        y = x + torch.complex(torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen)) * (no / 2).sqrt()
        a, b = full.demodulate(y, no, 1), fast.demodulate(y, no, 1)
        assert (a != u).any(-1).sum() == (b != u).any(-1).sum()
        assert (a != b).any(-1).float().mean() <= 0.02


# --- per-image best-of and JPEG chroma ------------------------------------------------------------

def _sof_sampling(data: bytes) -> int:
    """Luma sampling byte of a baseline JPEG's SOF0 (0x11: 4:4:4, 0x22: 4:2:0)."""
    i = data.index(b"\xff\xc0")
    return data[i + 11]


def test_jpeg_chroma_modes_at_the_budget(photos):
    img = to_uint8(photos[:1])[0]
    ref = photos[0].permute(1, 2, 0).double().numpy()
    budget = 8 * 1800.0
    f420, q420 = encode_at_budget(img, "jpeg", budget, subsampling="4:2:0")
    f444, q444 = encode_at_budget(img, "jpeg", budget, subsampling="4:4:4")
    assert 8 * len(f420) <= budget and 8 * len(f444) <= budget
    assert _sof_sampling(f420) == 0x22 and _sof_sampling(f444) == 0x11
    assert q444 <= q420  # full-resolution chroma costs bits: a lower quality fits
    with Image.open(io.BytesIO(f444)) as im:
        assert im.size == (64, 64)
    out = build("baseline", "jpeg_capacity")(photos[:1], AWGN(), 0.0, int(budget))  # log2(2) = 1 bit/use
    info = out["info"][0]
    sent = encode_at_budget(img, "jpeg", info["budget_bits"], subsampling=info["subsampling"])[0]
    other = encode_at_budget(img, "jpeg", info["budget_bits"],
                             subsampling="4:2:0" if info["subsampling"] == "4:4:4" else "4:4:4")[0]
    assert psnr_db(decode_image(sent, 64, 64), ref) >= psnr_db(decode_image(other, 64, 64), ref)


@pytest.mark.parametrize("snr_db", [5.0, 15.0])
def test_best_capacity_is_at_least_each_part_per_image(photos, snr_db):
    n = 64 * 64 * 3 // 12
    got = {name: psnr(build("baseline", name)(photos, AWGN(), snr_db, n)["x_hat"], photos)
           for name in ("best_capacity", "jpeg_capacity", "webp_capacity")}
    from semguard.baselines.capacity import CapacityBaseline
    for sub in ("4:2:0", "4:4:4"):
        got[sub] = psnr(CapacityBaseline(fmt="jpeg", subsampling=sub)(photos, AWGN(), snr_db, n)["x_hat"], photos)
    for name, value in got.items():
        assert torch.all(got["best_capacity"] >= value - 1e-6), name
    assert torch.all(got["jpeg_capacity"] >= torch.maximum(got["4:2:0"], got["4:4:4"]) - 1e-6)


# --- pilots ----------------------------------------------------------------------------------------

def test_pilot_positions_by_hand():
    mask = pilot_positions(10, 4, 1)
    assert mask.tolist() == [True, False, False, False, True, False, False, False, True, False]
    assert pilot_positions(6, None, 2).sum() == 2
    with pytest.raises(ValueError, match="no data symbol"):
        pilot_positions(8, 2, 2)


def test_charged_pilots_take_channel_uses_on_fading_only(photos):
    img = photos[:1]
    link = LdpcLink(mcs="QPSK-1/2", charge_pilots=True)
    ch = Rayleigh(coherence=16, csi="estimated", pilots=1)
    info = link(img, ch, 20.0, 1536, generator=torch.Generator().manual_seed(0))["info"][0]
    assert info["data_symbols"] == 1536 - 1536 // 16
    assert info["payload_bits"] == codeword_layout(MCS.parse("QPSK-1/2"), 1440).payload_bits
    free = LdpcLink(mcs="QPSK-1/2")(img, ch, 20.0, 1536, generator=torch.Generator().manual_seed(0))["info"][0]
    assert free["data_symbols"] == 1536 and free["payload_bits"] > info["payload_bits"]
    awgn = link(img, AWGN(), 20.0, 1536, generator=torch.Generator().manual_seed(0))["info"][0]
    assert awgn["data_symbols"] == 1536
