"""Eve's replay of the public discussion, the declared-Eve key sizing, MAC'd discussion, strict JSON."""

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy.special import j0
from scipy.stats import norm

from semguard.keys import AgreementConfig, KeyAgreement, ProbeConfig, adaptive_config, simulate_probes
from semguard.keys.auth import AuthenticationError, PublicChannel
from semguard.keys.cascade import cascade
from semguard.keys.learned_eve import evaluate_learned_eve
from semguard.keys.replay import bit_llrs, bp_decode, fit_correlation
from semguard.keys.secrecy import (EveModel, channel_spectrum, eve_information, max_correlation_beyond,
                                   secret_length)
from semguard.keys.sessions import json_safe


def test_cascade_transcript_holds_alices_parities():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 3000).astype(np.uint8)
    b = a ^ (rng.random(3000) < 0.03).astype(np.uint8)
    res = cascade(a, b, 0.03, rng)
    m = res.checks.matrix
    assert np.array_equal((m @ a.astype(np.int64)) % 2, res.checks.parities)
    assert m.shape == (res.leaked_bits, 3000) and np.array_equal(res.bob, a)


def test_soft_eve_decodes_against_disclosed_parities():
    rng = np.random.default_rng(1)
    n = 4000
    x = rng.standard_normal(n)                                            # Alice's components
    xb, xe = (0.98 * x + math.sqrt(1 - 0.98**2) * rng.standard_normal(n) for _ in range(2))  # Bob, Eve alike
    a, b, e = ((v > 0).astype(np.uint8) for v in (x, xb, xe))
    res = cascade(a, b, float(np.mean(a != b)) + 0.01, rng)
    r, _ = fit_correlation(xe, 1, np.arange(200), a[:200])
    assert r == pytest.approx(0.98, abs=0.03)
    dec, _ = bp_decode(bit_llrs(xe, r, 1), res.checks.matrix, res.checks.parities)
    assert (e != a).sum() > 80 and (dec != a).sum() <= 0.3 * (e != a).sum()   # she fixes >= 70 % of her errors


def test_eve_at_bobs_position_replays_the_key_and_the_declared_model_refuses_it():
    trace = simulate_probes(ProbeConfig(n_probes=2048, snr_db=30.0, eve_distance=0.0), np.random.default_rng(2))
    today = KeyAgreement(adaptive_config(30.0, eve_sizing="none")).run(trace, np.random.default_rng(3))
    assert today.success and today.eve_key_match and today.eve_key == today.key and today.eve_kdr_reconciled == 0.0
    declared = KeyAgreement(adaptive_config(30.0, eve_min_distance=0.0)).run(trace, np.random.default_rng(3))
    assert not declared.success and declared.key is None and declared.key_bits == 0
    assert "declared Eve" in declared.reason and "0 wavelengths" in declared.reason


def test_key_length_is_sized_by_the_declared_eve():
    trace = simulate_probes(ProbeConfig(n_probes=2048, snr_db=25.0, eve_distance=1.0), np.random.default_rng(4))
    r = KeyAgreement(adaptive_config(25.0, eve_min_distance=1.0)).run(trace, np.random.default_rng(5))
    assert r.success and r.eve_model["correlation"] == pytest.approx(0.3001, abs=1e-3)
    want = secret_length(r.min_entropy_bits, r.eve_info_bits, r.eve_info_dispersion, r.leaked_bits, 1e-6)
    assert r.key_bits == want - want % 8 and 0 < r.key_bits < r.unconditional_key_bits
    assert not r.eve_key_match and r.eve_kdr_reconciled > 0.3


def test_max_correlation_beyond_a_distance_by_hand():
    assert max_correlation_beyond(0.0) == 1.0
    assert max_correlation_beyond(0.5) == pytest.approx(abs(j0(3.8317)), abs=1e-6)   # J0's first extremum
    assert max_correlation_beyond(2.0) == pytest.approx(abs(j0(13.3237)), abs=1e-6)
    with pytest.raises(ValueError, match="distance"):
        EveModel(min_distance=float("nan"))


def test_eve_information_matches_closed_form_and_exact_gaussian():
    n0 = 10 ** -2.0
    white = channel_spectrum(512, "ris", 0.0, 1.0)                        # iid probes: closed form per probe
    info, disp = eve_information(white, 1, 0.5, 20.0, None)
    g = 0.25 / (1 + n0)
    assert info == pytest.approx(-512 * math.log2(1 - g)) and disp == pytest.approx(512 * 2 * g * math.log2(math.e) ** 2)
    # Jakes, decimated by 2: against log det of the exact covariance (complex Gaussian)
    n, step, rho, fdt = 256, 2, 0.6, 0.3
    t = np.arange(n)
    r = j0(2 * np.pi * fdt * np.abs(t[:, None] - t[None, :]))
    keep = t[::step]
    sa = r[np.ix_(keep, keep)] + n0 * np.eye(keep.size)
    se = r + 0.1 * np.eye(n)
    joint = np.block([[sa, rho * r[keep]], [rho * r[:, keep], se]])
    exact = (np.linalg.slogdet(sa)[1] + np.linalg.slogdet(se)[1] - np.linalg.slogdet(joint)[1]) / np.log(2)
    bound, _ = eve_information(channel_spectrum(n, "mobile", fdt, 1.0), step, rho, 20.0, 10.0)
    assert bound == pytest.approx(exact, rel=0.08)


def test_secret_length_by_hand():
    want = math.floor(5000 - 800 - norm.isf(1e-6) * 30.0 - 1000 - 2 * math.log2(1e6))
    assert secret_length(5000.0, 800.0, 900.0, 1000, 1e-6) == want
    assert secret_length(100.0, 800.0, 900.0, 10, 1e-6) == 0


def _flip_first(kind):
    def tamper(msg):
        if msg.kind != kind:
            return msg
        p = msg.payload.copy()
        p[:3] ^= 1
        return dataclasses.replace(msg, payload=p)
    return tamper


def test_public_channel_detects_rewritten_and_replayed_messages():
    key = b"k" * 32
    ch = PublicChannel(key, b"s1", _flip_first("x"))
    assert np.array_equal(ch.send("y", np.array([1, 0, 1], np.uint8)), [1, 0, 1])
    with pytest.raises(AuthenticationError, match="#1 \\(x\\)"):
        ch.send("x", np.array([1, 0, 1], np.uint8))
    old = PublicChannel(key, b"s0").transcript                             # a message from another session
    other = PublicChannel(key, b"s0")
    other.send("y", np.array([1], np.uint8))
    replay = PublicChannel(key, b"s2", lambda m: other.transcript[0])
    with pytest.raises(AuthenticationError):
        replay.send("y", np.array([1], np.uint8))
    assert old == [] and np.array_equal(PublicChannel(None, b"s", _flip_first("x")).send("x", np.ones(4, np.uint8)),
                                        [0, 0, 0, 1])                     # unauthenticated: goes through unseen


def test_rewritten_cascade_parities_are_detected_in_the_agreement():
    trace = simulate_probes(ProbeConfig(n_probes=1024, snr_db=25.0), np.random.default_rng(6))
    attack = _flip_first("cascade-block")
    r = KeyAgreement(identity_key=b"i" * 32).run(trace, np.random.default_rng(7), tamper=attack)
    assert not r.success and r.authenticated and "active attack detected" in r.reason and "cascade-block" in r.reason
    blind = KeyAgreement().run(trace, np.random.default_rng(7), tamper=attack)
    assert not blind.authenticated and "active attack" not in blind.reason
    honest = KeyAgreement(identity_key=b"i" * 32).run(trace, np.random.default_rng(7))
    assert honest.success and honest.authenticated


def test_learned_eve_at_chance_when_far_and_not_at_bobs_position():
    def sessions(d, tag, sizing):
        out = []
        for s in range(2):
            tr = simulate_probes(ProbeConfig(n_probes=2048, snr_db=25.0, eve_distance=d), np.random.default_rng([s, tag]))
            r = KeyAgreement(adaptive_config(25.0, eve_sizing=sizing, eve_min_distance=d)).run(
                tr, np.random.default_rng([s, tag, 1]))
            out.append((r.eve_features, np.unpackbits(np.frombuffer(r.key, np.uint8))))
        return out
    far = evaluate_learned_eve(sessions(1.0, 1, "gaussian"), sessions(1.0, 2, "gaussian"))
    assert far.at_chance and far.test_bits > 2000
    near = evaluate_learned_eve(sessions(0.0, 1, "none"), sessions(0.0, 2, "none"))
    assert near.accuracy > 0.95 and not near.at_chance


def test_json_safe_gives_strict_json():
    text = json.dumps(json_safe({"a": float("nan"), "b": [float("inf"), np.float64(1.5)], "c": np.int64(3)}),
                      allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": 3}


def test_config_rejects_bad_eve_model():
    with pytest.raises(ValueError, match="eve_sizing"):
        AgreementConfig(eve_sizing="maybe")
    with pytest.raises(ValueError, match="max_correlation"):
        AgreementConfig(eve_max_correlation=1.5)
