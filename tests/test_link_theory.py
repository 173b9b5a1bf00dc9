"""Sionna's QAM and 5G LDPC, as wired in semguard.baselines.phy, against theory."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from semguard.baselines.mcs import estimate_bler
from semguard.baselines.phy import MCS
from semguard.channels import AWGN
from semguard.channels import functional as F


def _uncoded_ber(bits_per_symbol: int, snr_db: float, n_bits: int, seed: int = 0) -> float:
    """Hard decisions from Sionna's "app" LLRs (logit sign: > 0 means bit 1) over semguard AWGN."""
    from sionna.phy.mapping import Demapper, Mapper

    g = torch.Generator().manual_seed(seed)
    mapper, demapper = Mapper("qam", bits_per_symbol), Demapper("app", "qam", bits_per_symbol)
    bits = torch.randint(0, 2, (1, n_bits), generator=g).float()
    x = mapper(bits)
    assert x.abs().square().mean().item() == pytest.approx(1.0, rel=0.02)  # unit Es
    ch = AWGN()
    state = ch.sample_state(1, x.shape[1], snr_db, generator=g)
    llr = demapper(ch.apply(x, state, generator=g), state.n0.expand(1, x.shape[1]))
    return ((llr > 0).float() != bits).float().mean().item()


def _ber_16qam(snr_db: float) -> float:
    """Gray 16-QAM over AWGN (Cho & Yoon 2002): 1/4 [3Q(r) + 2Q(3r) - Q(5r)], r = sqrt(Es/5N0)."""
    r = math.sqrt(10 ** (snr_db / 10) / 5)
    q = lambda v: float(F.qfunc(v))  # noqa: E731
    return 0.25 * (3 * q(r) + 2 * q(3 * r) - q(5 * r))


def test_qpsk_ber_matches_theory_fast():
    # Es/N0 = 4 dB -> Eb/N0 = 4 - 3.01 dB; theory 0.0565; 2e5 bits give a std of ~0.9 %
    ber = _uncoded_ber(2, 4.0, 200_000)
    assert ber == pytest.approx(float(F.ber_qpsk_awgn(4.0 - 10 * math.log10(2))), rel=0.05)


def test_16qam_ber_matches_theory_fast():
    ber = _uncoded_ber(4, 10.0, 200_000)  # theory 0.0590
    assert ber == pytest.approx(_ber_16qam(10.0), rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("snr_db", [0.0, 4.0, 8.0])
def test_qpsk_ber_curve_slow(snr_db):
    ber = _uncoded_ber(2, snr_db, 2_000_000, seed=int(snr_db))
    assert ber == pytest.approx(float(F.ber_qpsk_awgn(snr_db - 10 * math.log10(2))), rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("snr_db", [6.0, 10.0, 14.0])
def test_16qam_ber_curve_slow(snr_db):
    assert _uncoded_ber(4, snr_db, 2_000_000, seed=int(snr_db)) == pytest.approx(_ber_16qam(snr_db), rel=0.03)


def test_ldpc_rate_half_waterfall_fast():
    # measured (256 codewords of 1944 bits, QPSK, 20 BP iterations): Es/N0 1.0 dB -> 117
    # errors, 1.5 dB -> 7, 2.0 dB -> 0.  The QPSK rate-1/2 Shannon limit is Es/N0 = 0 dB.
    mcs = MCS(2, Fraction(1, 2))
    below = estimate_bler(mcs, 0.0, 1944, num_codewords=32, seed=11)
    above = estimate_bler(mcs, 2.5, 1944, num_codewords=32, seed=12)
    assert below.bler >= 0.9
    assert above.errors == 0


@pytest.mark.slow
def test_ldpc_rate_half_waterfall_slow():
    mcs = MCS(2, Fraction(1, 2))
    curve = {s: estimate_bler(mcs, s, 1944, num_codewords=256, seed=3).bler for s in (0.5, 1.0, 1.5, 2.0)}
    assert curve[0.5] > 0.8
    assert 0.1 < curve[1.0] < 0.9
    assert curve[2.0] < 0.1  # BLER < 1e-1 above ~2 dB Es/N0
    assert curve[0.5] >= curve[1.0] >= curve[1.5] >= curve[2.0]
