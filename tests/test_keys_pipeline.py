"""Reconciliation, privacy amplification, confirmation and the whole KeyAgreement."""

import logging

import bchlib
import numpy as np
import pytest
from scipy.linalg import toeplitz

from semguard.keys import BASELINE, AgreementConfig, KeyAgreement, ProbeConfig, simulate_probes
from semguard.keys.amplify import (confirm, confirmation_tag, lhl_length, mcv_min_entropy,
                                   predictive_min_entropy, toeplitz_hash)
from semguard.keys.cascade import cascade
from semguard.keys.reconcile import bch_block_bits, bch_reconcile, choose_t, estimate_kdr


def _noisy_pair(n, p, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n).astype(np.uint8)
    return a, a ^ (rng.random(n) < p).astype(np.uint8), rng


def test_bch_reconcile_corrects_and_counts_parity_bits():
    a, b, _ = _noisy_pair(4000, 0.01, 0)
    t = choose_t(0.02)
    rec = bch_reconcile(a, b, t)
    assert rec.block_ok.all()
    assert np.array_equal(rec.alice, rec.bob)
    assert rec.leaked_bits == rec.disclosed_bits == len(rec.syndromes) * bchlib.BCH(t, m=10).ecc_bits
    assert len(rec.syndromes) == -(-4000 // bch_block_bits(t)[0])


def test_cascade_corrects_with_near_shannon_leakage():
    a, b, rng = _noisy_pair(20000, 0.03, 1)
    res = cascade(a, b, 0.03, rng)
    h = -(0.03 * np.log2(0.03) + 0.97 * np.log2(0.97))
    assert np.array_equal(res.bob, a)
    assert h * a.size < res.leaked_bits < 1.35 * h * a.size                # Cascade: ~1.1-1.25 h(p)


def test_kdr_estimate_is_within_its_bound():
    a, b, rng = _noisy_pair(5000, 0.05, 2)
    kdr, upper, rest = estimate_kdr(a, b, 400, rng)
    assert kdr <= upper and 0.05 <= upper and rest.sum() == 4600
    assert kdr == pytest.approx(0.05, abs=0.03)


def test_toeplitz_hash_equals_matrix_product():
    rng = np.random.default_rng(3)
    n, m = 300, 120
    x, s = rng.integers(0, 2, n), rng.integers(0, 2, n + m - 1)
    ref = (toeplitz(s[n - 1:], s[n - 1::-1])[:m] @ x) % 2
    assert np.array_equal(toeplitz_hash(x, m, s), ref)


def test_lhl_and_min_entropy_by_hand():
    assert lhl_length(1000.0, 300, eps=2.0 ** -20) == 660
    assert lhl_length(10.0, 300) == 0
    # 1000 symbols, most common has 250 -> p_u = 0.25 + 2.576 sqrt(0.25*0.75/999)
    sym = np.repeat(np.arange(4), 250)
    assert mcv_min_entropy(sym) == pytest.approx(-np.log2(0.25 + 2.576 * np.sqrt(0.1875 / 999)))
    x = np.random.default_rng(4).standard_normal((40000, 1))              # white: unpredictable
    assert predictive_min_entropy(x, np.array([[0.0]])) == pytest.approx(1.0, abs=0.04)  # overfit bias is conservative


def test_confirmation_rejects_different_keys():
    nonce = b"n" * 16
    assert confirm(b"k" * 16, confirmation_tag(b"k" * 16, nonce), nonce)
    assert not confirm(b"k" * 16, confirmation_tag(b"j" * 16, nonce), nonce)


def test_mobile_agreement_gives_identical_keys_and_eve_near_half():
    rng = np.random.default_rng(5)
    trace = simulate_probes(ProbeConfig(n_probes=4096, snr_db=30.0, probe_rate_hz=100.0), rng)
    r = KeyAgreement(AgreementConfig(bits=2, guard=0.02)).run(trace, rng)
    assert r.success and r.key is not None and len(r.key) * 8 == r.key_bits > 1000
    assert r.kdr_reconciled == 0.0
    assert 0.35 < r.eve_kdr_raw < 0.65 and not r.eve_key_match
    # Eve's replayed key (same length, public seed) agrees with Alice's on about half the bits
    eve = np.unpackbits(np.frombuffer(r.eve_key, np.uint8))
    assert eve.size == r.key_bits and abs(np.mean(eve != np.unpackbits(np.frombuffer(r.key, np.uint8))) - 0.5) < 0.05
    assert r.kgr_bits_per_second == pytest.approx(r.kgr_bits_per_probe * 100.0)


def test_static_channel_yields_no_key_and_baseline_too():
    rng = np.random.default_rng(6)
    trace = simulate_probes(ProbeConfig(n_probes=2048, snr_db=30.0, mode="static"), rng)
    for cfg in (AgreementConfig(), BASELINE):
        r = KeyAgreement(cfg).run(trace, np.random.default_rng(7))
        assert not r.success and r.key_bits == 0 and r.key is None
        assert r.kdr_raw == pytest.approx(0.5, abs=0.05)


def test_ris_randomness_restores_keys_in_static_environment():
    rng = np.random.default_rng(8)
    trace = simulate_probes(ProbeConfig(n_probes=2048, snr_db=25.0, mode="ris"), rng)
    r = KeyAgreement(AgreementConfig(bits=2, guard=0.02)).run(trace, rng)
    assert r.success and r.key_bits > 500


def test_key_never_in_repr_dict_or_logs(caplog):
    rng = np.random.default_rng(9)
    trace = simulate_probes(ProbeConfig(n_probes=2048, snr_db=30.0, probe_rate_hz=100.0), rng)
    with caplog.at_level(logging.DEBUG, logger="semguard"):
        r = KeyAgreement().run(trace, rng)
    assert r.key and r.eve_key and r.eve_key != r.key
    text = repr(r) + str(r.to_dict()) + caplog.text
    for k in (r.key, r.eve_key):
        assert k.hex() not in text and str(k) not in text
    assert "key=" not in repr(r) and "eve_key" not in r.to_dict() and "eve_features" not in r.to_dict()
    assert r.eve_features is not None and "eve_features" not in repr(r)


def test_choose_code_falls_back_to_a_shorter_bch_code():
    from semguard.keys.reconcile import choose_code, choose_t
    # bchlib has no m = 12 code for a 1.42 % upper bound (its t stops at 64; t = 64 would lose ~21 % of
    # the blocks, over choose_code's 10 %); m = 11 does it
    assert choose_t(0.0142, 12) is None
    m, t = choose_code(0.0142, 12)
    assert m == 11 and t == choose_t(0.0142, 11)
    assert choose_code(0.005, 12) == (12, choose_t(0.005, 12))      # the configured m first
    assert choose_code(0.4, 12) is None                             # nothing corrects 40 %


@pytest.mark.parametrize("distance", [0.0, 0.5])
def test_bch_key_agreement_eve_replays_with_chase(distance):
    """KeyAgreement with BCH (the runtime's settings): Eve decodes her LLRs against Alice's syndromes by
    Chase-II.  Beside Bob (her own 30 dB noise) she reconciles to Alice's bits and her key passes Bob's
    tag; at the declared 0.5 wavelengths she stays near 0.44 disagreement and gets nothing."""
    from semguard.runtime.plkg import PlkgConfig
    trace = simulate_probes(ProbeConfig(n_probes=4096, snr_db=30.0, eve_distance=distance), np.random.default_rng(1))
    res = KeyAgreement(PlkgConfig(snr_db=30.0).ac).run(trace, np.random.default_rng(2))
    assert res.success and res.bch_m == 12
    if distance == 0.0:
        assert res.eve_kdr_reconciled == 0.0 and res.eve_key_match and res.eve_tag_confirmed
    else:
        assert res.eve_kdr_reconciled > 0.4 and not res.eve_key_match and not res.eve_tag_confirmed
