"""BCH code choice and the scipy.special forms of the keys package's statistics.

``keys.reconcile``, ``keys.secrecy`` and ``keys.amplify`` use ``scipy.special`` instead of
``scipy.stats`` (whose import costs over a second of every PLKG start); the numbers must be the
ones ``scipy.stats`` gives, checked here on grids against the real ``scipy.stats``.
"""

from __future__ import annotations

import math

import bchlib
import numpy as np
import pytest
from scipy.stats import beta, binom, norm

from semguard.keys.amplify import predictive_min_entropy, toeplitz_hash
from semguard.keys.reconcile import (bch_block_bits, bch_correct, bch_reconcile, binomial_sf, chase_correct,
                                     choose_code, choose_t, code_yield, estimate_kdr, kdr_upper_bound)
from semguard.keys.secrecy import secret_length


def test_kdr_upper_bound_equals_beta_ppf():
    for conf in (0.9, 0.99, 0.999):
        for n in (16, 200, 1024, 4096):
            for k in sorted({0, 1, 2, 5, n // 100, n // 10, n // 2, n - 1}):
                assert kdr_upper_bound(k, n, conf) == float(beta.ppf(conf, k + 1, n - k)), (conf, n, k)
            assert kdr_upper_bound(n, n, conf) == 1.0
    # hand check: k = 0 has the closed form 1 - (1 - conf)^(1/n)
    assert kdr_upper_bound(0, 1024, 0.99) == pytest.approx(1 - 0.01 ** (1 / 1024), rel=1e-12)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        kdr_upper_bound(5, 4)


def test_binomial_sf_equals_scipy_stats():
    for n in (1, 10, 1000, 4095, 8191):
        for p in (1e-4, 0.003, 0.0105, 0.013, 0.05, 0.3):
            for t in (-1, 0, 1, 7, 44, 64, 100, n - 1, n, n + 3):
                assert binomial_sf(t, n, p) == float(binom.sf(t, n, p)), (t, n, p)
    # hand check: P[Bin(3, 1/2) > 1] = 4/8
    assert binomial_sf(1, 3, 0.5) == pytest.approx(0.5, rel=1e-14)


def _choose_t_stats(kdr_upper: float, m: int, fail_prob: float) -> int | None:
    """choose_t as it was written with scipy.stats.binom."""
    for t in range(1, 101):
        try:
            data, ecc = bch_block_bits(t, m)
        except ValueError:
            return None
        if binom.sf(t, data + ecc, kdr_upper) <= fail_prob:
            return t
    return None


def test_choose_t_unchanged_on_a_grid():
    for m in (9, 11, 12):
        for u in np.linspace(1e-4, 0.08, 17):
            for fp in (1e-3, 1e-6):
                assert choose_t(float(u), m, fp) == _choose_t_stats(float(u), m, fp), (m, u, fp)


def test_secret_length_uses_the_normal_quantile():
    for eps in (1e-12, 1e-9, 1e-6, 1e-3, 0.05):
        for h, i, v, leak in ((5000.0, 800.0, 1600.0, 700.0), (12000.5, 100.0, 0.0, 10.0), (900.0, 850.0, 40.0, 0.0)):
            want = max(0, math.floor(h - (i + float(norm.isf(eps)) * math.sqrt(v)) - leak - 2 * math.log2(1 / eps)))
            assert secret_length(h, i, v, leak, eps) == want
    # hand check: Q^-1(1e-6) = 4.753424..., so 10000 - (1000 + 4.7534 * 10) - 500 - 2 log2(1e6) = 8412.93
    assert secret_length(10000.0, 1000.0, 100.0, 500.0, 1e-6) == 8412


def test_predictive_min_entropy_matches_norm_cdf():
    """The ndtr form of the Gaussian guessing probability, against the same estimate with norm.cdf."""
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((600, 2)), axis=0) * 0.1 + rng.standard_normal((600, 2))
    thr = np.array([[-0.5, -0.4], [0.0, 0.1], [0.6, 0.5]])
    order = 8
    want = 0.0
    win = np.lib.stride_tricks.sliding_window_view(x, order, axis=0)[:-1]
    for d in range(2):
        past, target = win[:, d, :], x[order:, d]
        coef, *_ = np.linalg.lstsq(past, target, rcond=None)
        pred = past @ coef
        s = max(float(np.std(target - pred)), 1e-9)
        edges = np.concatenate([[-np.inf], np.sort(thr[:, d]), [np.inf]])
        cdf = norm.cdf((edges[None, :] - pred[:, None]) / s)
        want += -math.log2(max(float(np.diff(cdf, axis=1).max(axis=1).mean()), 2.0 ** -16))
    assert predictive_min_entropy(x, thr, order=order) == want


def test_toeplitz_hash_is_the_matrix_product_mod_2():
    rng = np.random.default_rng(4)
    for n, out in ((1, 1), (7, 3), (300, 120), (4000, 1500)):
        x = rng.integers(0, 2, n)
        seed = rng.integers(0, 2, n + out - 1)
        i, j = np.meshgrid(np.arange(out), np.arange(n), indexing="ij")
        t = seed[i - j + n - 1]                                   # T[i, j] = seed[i - j + n - 1]
        assert np.array_equal(toeplitz_hash(x, out, seed), (t @ x) % 2)


def test_bchlib_stops_at_t_64():
    """bchlib wraps the Linux kernel's lib/bch.c, whose BCH_MAX_T is 64: an m = 12 code exists up to
    t = 64 (not 100, as choose_t's t_max suggests), which is where m = 12 stops near a 1.05 % disagreement."""
    code = bchlib.BCH(64, m=12)
    assert code.n == 4095 and code.ecc_bits <= 12 * 64      # a t-error BCH code has at most m t parity bits
    assert bch_block_bits(64, 12) == (8 * ((4095 - code.ecc_bits) // 8), code.ecc_bits)
    for m in (10, 11, 12, 13):
        with pytest.raises(ValueError, match=f"m={m}, t=65"):
            bch_block_bits(65, m)
    assert choose_t(0.0105, 12) == 64 and choose_t(0.0106, 12) is None


def test_choose_code_keeps_the_long_code_where_it_loses_few_blocks():
    """The 'no BCH code (m=12) corrects a disagreement of 0.013' refusal: 5 disagreements in the 1024
    disclosed bits give a 99 % upper bound of 1.275 %, beyond m = 12's t <= 64 at P[fail] <= 1e-3.  At
    that bound BCH(12, 64) loses 4.6 % of its blocks (announced, dropped) yet keeps more bits than the
    shorter code whose parities are a third of its length."""
    upper = kdr_upper_bound(5, 1024)
    assert upper == pytest.approx(0.012751, abs=1e-6)
    assert choose_t(upper, 12) is None and choose_t(upper, 11) == 43
    y12, loss12 = code_yield(upper, 12, 64)
    y11, loss11 = code_yield(upper, 11, 43)
    assert loss12 == pytest.approx(float(binom.sf(64, sum(bch_block_bits(64, 12)), upper)))
    d12, e12 = bch_block_bits(64, 12)
    assert y12 == pytest.approx((d12 - e12) * (1 - loss12) / (d12 + e12))
    assert 0.04 < loss12 < 0.05 and loss11 <= 1e-3 and y12 > y11 + 0.05
    assert choose_code(upper, 12) == (12, 64)
    # 1.42 %: BCH(12, 64) would lose over 10 % of its blocks, so the m = 11 code that meets 1e-3
    assert code_yield(0.0142, 12, 64)[1] > 0.1 and choose_code(0.0142, 12) == (11, choose_t(0.0142, 11))
    # the configured code where it meets fail_prob; a legitimate refusal once the parities eat the data
    assert choose_code(0.005, 12) == (12, choose_t(0.005, 12))
    assert code_yield(0.045, 10, 64)[0] < 0 and choose_code(0.045, 12) is None and choose_code(0.03, 12) == (10, 49)
    with pytest.raises(ValueError, match="max_block_loss"):
        choose_code(0.01, 12, fail_prob=0.2, max_block_loss=0.1)


def test_plkg_session_that_m12_alone_refused_now_agrees_on_the_long_code():
    """Seeded reproduction (bench/runtime_plkg.py, 30 dB, seed 4: 4/1024 disclosed disagreements, upper
    bound 1.13 %): an m = 12-only choice refused it; the session now agrees with BCH(12, 64)."""
    from semguard.runtime.kbview import KbView
    from semguard.runtime.plkg import PlkgConfig, PlkgInitiator, PlkgResponder
    from semguard.runtime.probe_channel import ProbeChannel
    kb, cfg, seed = KbView("kb", 1, "00" * 32), PlkgConfig(snr_db=30.0), 4
    bob = PlkgInitiator(kb, cfg, rng=np.random.default_rng(seed + 100))
    alice = PlkgResponder(kb, cfg, rng=np.random.default_rng(seed + 200))
    ch = ProbeChannel(seed=seed, snr_db=30.0)
    msg = bob.first()
    while msg is not None:
        msg = bob.handle(ch.through(alice.handle(ch.through(msg, "tx")), "rx"))
    info = alice.info
    assert choose_t(info["kdr_upper"], 12) is None                     # the old refusal
    assert alice.master is not None and alice.master == bob.master
    assert (info["bch_m"], info["bch_t"]) == (12, 64) and info["key_bits"] >= 128


def test_chosen_code_reconciles_a_1_3_percent_disagreement():
    """A real 1.3 % disagreement (seeded): the blocks Bob keeps agree with Alice's."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2, 60000).astype(np.uint8)
    b = a.copy()
    b[rng.random(a.size) < 0.013] ^= 1
    _, upper, keep = estimate_kdr(a, b, 1024, np.random.default_rng(8))
    m, t = choose_code(upper, 12)
    assert code_yield(0.013, m, t)[1] < 1e-6               # at the true rate the code loses ~no block
    rec = bch_reconcile(a[keep], b[keep], t, m)
    assert rec.block_ok.size >= 40 and rec.block_ok.all() and np.array_equal(rec.alice, rec.bob)


def _runtime_code(seed: int) -> tuple[int, int]:
    """The (m, t) Alice's runtime PLKG announces in one session (30 dB, the emulator's probe channel)."""
    from semguard.runtime.handshake import HandshakeError
    from semguard.runtime.kbview import KbView
    from semguard.runtime.plkg import PlkgConfig, PlkgInitiator, PlkgResponder
    from semguard.runtime.probe_channel import ProbeChannel
    kb, cfg = KbView("kb", 1, "00" * 32), PlkgConfig(snr_db=30.0)
    bob = PlkgInitiator(kb, cfg, rng=np.random.default_rng(seed + 100))
    alice = PlkgResponder(kb, cfg, rng=np.random.default_rng(seed + 200))
    ch = ProbeChannel(seed=seed, snr_db=30.0)
    msg = bob.first()
    try:
        while msg is not None:
            msg = bob.handle(ch.through(alice.handle(ch.through(msg, "tx")), "rx"))
    except HandshakeError:                         # e.g. too few secret bits at a high declared bound
        pass
    return alice.info["bch_m"], alice.info["bch_t"]


@pytest.mark.parametrize("upper", [0.005, 0.0128, 0.0142, 0.03])
def test_key_agreement_and_runtime_plkg_choose_the_same_code(monkeypatch, upper):
    """keys.KeyAgreement (BCH) and the runtime's PLKG share AgreementConfig.bch_code: for the same
    disagreement bound (both read it from kdr_upper_bound, fixed here) they announce the same (m, t).
    At 1.28 % and 1.42 % bchlib has no m = 12 code meeting 1e-3 (choose_t is None), where KeyAgreement's
    former fixed-m choice refused the session; now it takes BCH(12, 64) and an m = 11 code, as the runtime."""
    import semguard.keys.reconcile as rec_mod
    import semguard.runtime.plkg as plkg_mod
    from semguard.keys import KeyAgreement, ProbeConfig, simulate_probes
    from semguard.runtime.plkg import PlkgConfig
    monkeypatch.setattr(rec_mod, "kdr_upper_bound", lambda k, n, confidence=0.99: upper)
    monkeypatch.setattr(plkg_mod, "kdr_upper_bound", lambda k, n, confidence=0.99: upper)
    expected = {0.005: (12, choose_t(0.005, 12)), 0.0128: (12, 64), 0.0142: (11, choose_t(0.0142, 11)),
                0.03: (10, 49)}[upper]
    ac = PlkgConfig(snr_db=30.0).ac
    trace = simulate_probes(ProbeConfig(n_probes=4096, snr_db=30.0, eve_distance=0.5), np.random.default_rng(0))
    res = KeyAgreement(ac).run(trace, np.random.default_rng(1))
    assert res.kdr_upper == upper and (res.bch_m, res.bch_t) == expected
    assert _runtime_code(0) == expected
    if upper in (0.0128, 0.0142):
        assert choose_t(upper, 12) is None
    data, ecc = bch_block_bits(*expected[::-1])
    if upper < 0.013:            # a real ~0.1 % disagreement: the code reconciles it, every kept block's parity counted
        assert res.success and res.kdr_reconciled == 0.0 and res.key_bits >= 128 and res.failed_blocks == 0
        assert res.leaked_bits == -(-res.reconciled_bits // data) * ecc
    else:                        # m = 11 / 10 parities leave no secret bits against the declared Eve: refused
        assert not res.success and res.key_bits == 0 and "no secret bits" in res.reason


def _chase_case(n_err: int, seed: int = 0):
    """One BCH(8, 4) block (216 data bits, 32 parity bits): Alice's bits, their public parity, and Eve's
    LLRs with ``n_err`` wrong hard decisions, the first two of them her least reliable bits (|llr| 0.1),
    the rest at |llr| 2 and every correct bit at |llr| 4."""
    t, m = 4, 8
    data, _ = bch_block_bits(t, m)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, data).astype(np.uint8)
    syn = bch_reconcile(a, a, t, m).syndromes
    err = rng.choice(data, n_err, replace=False)
    e = a.copy()
    e[err] ^= 1
    rel = np.full(data, 4.0)
    rel[err[2:]], rel[err[:2]] = 2.0, 0.1
    return a, syn, e, np.where(e == 0, rel, -rel), t, m


def test_chase_decodes_a_block_hard_decoding_cannot():
    """t + 2 = 6 errors in a t = 4 block: beyond the hard decoder; two of them are among Eve's 4 least
    reliable bits, so the Chase-II pattern flipping those two leaves 4 errors, which bchlib corrects, and
    that candidate is the closest to her soft observation (metric 0.2 + 4 x 2 = 8.2)."""
    a, syn, e, llr, t, m = _chase_case(6)
    hard, ok_hard = bch_correct(e, syn, t, m)
    assert not (ok_hard[0] and np.array_equal(hard, a))                # hard decoding fails
    soft, ok = chase_correct(llr, syn, t, m, p=4)
    assert ok[0] and np.array_equal(soft, a)
    # p = 1 flips only one of the two weak errors: 5 errors remain, beyond t -- Chase fails as it should
    soft1, ok1 = chase_correct(llr, syn, t, m, p=1)
    assert not (ok1[0] and np.array_equal(soft1, a))
    # 4 + 2 + 3 errors, only two of them weak: no pattern of the 4 weakest bits gets within t
    a9, syn9, e9, llr9, _, _ = _chase_case(9, seed=1)
    soft9, ok9 = chase_correct(llr9, syn9, t, m, p=4)
    assert not (ok9[0] and np.array_equal(soft9, a9))


def test_chase_with_no_flips_is_the_hard_decoder():
    """p = 0 is bchlib on the hard decisions, over several blocks with a padded last block."""
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2, 3000).astype(np.uint8)
    b = a ^ (rng.random(a.size) < 0.01).astype(np.uint8)
    t, m = 12, 10
    syn = bch_reconcile(a, a, t, m).syndromes
    llr = np.where(b == 0, 1.0, -1.0) * rng.uniform(0.5, 3.0, a.size)
    hard, ok_hard = bch_correct(b, syn, t, m)
    soft, ok_soft = chase_correct(llr, syn, t, m, p=0)
    assert np.array_equal(ok_hard, ok_soft) and np.array_equal(hard, soft) and ok_soft.sum() >= 2
    soft6, ok6 = chase_correct(llr, syn, t, m, p=6)                    # never loses a block hard decoding had
    kept = np.repeat(ok_hard, bch_block_bits(t, m)[0])[: a.size]
    assert np.all(ok6 >= ok_hard) and np.array_equal(soft6[kept], a[kept])
    with pytest.raises(ValueError, match="Chase p"):
        chase_correct(llr, syn, t, m, p=13)
    with pytest.raises(ValueError, match="parities"):
        chase_correct(llr[:100], syn, t, m)
