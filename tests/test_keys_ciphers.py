"""Ciphers: AES-GCM tamper detection, scrambler invertibility/power, HKDF rotation, NIST cross-check."""

import numpy as np
import pytest
import torch

import semguard
from semguard.keys.ciphers import (AesGcmLatentCipher, KeySchedule, MixingCipher, ScrambleCipher, TamperError,
                                   dequantize_symbols, quantize_symbols)
from semguard.evaluation.studies.secrecy import link_psnr
from semguard.keys.nist import monobit_pvalue, run_nist
from semguard.registry import build

KEY = bytes(range(32))
NONCE = b"\x00" * 11 + b"\x01"


def test_aes_gcm_roundtrip_and_tamper_rejected():
    x = torch.randn(3, 64, dtype=torch.complex64) * 0.5
    x = x * (2.9 / torch.view_as_real(x).abs().max()).clamp_max(1.0)        # inside the clip range
    codes = quantize_symbols(x)
    cip = AesGcmLatentCipher()
    ct = cip.encrypt(codes, KEY, NONCE, aad=b"epoch=0")
    assert torch.equal(cip.decrypt(ct, KEY, NONCE, tuple(codes.shape), aad=b"epoch=0"), codes)
    assert torch.view_as_real(dequantize_symbols(codes) - x).abs().max() <= 3.0 / 255 + 1e-6  # 8-bit steps of 6/255
    bad = bytearray(ct)
    bad[5] ^= 0x01
    with pytest.raises(TamperError):
        cip.decrypt(bytes(bad), KEY, NONCE, tuple(codes.shape), aad=b"epoch=0")
    with pytest.raises(TamperError):
        cip.decrypt(ct, KEY, NONCE, tuple(codes.shape), aad=b"epoch=1")


def test_scrambler_inverts_keeps_power_and_depends_on_key_and_nonce():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 256, dtype=torch.complex64, generator=g)
    sc = ScrambleCipher()
    y = sc.encrypt(x, KEY, NONCE)
    assert torch.allclose(sc.decrypt(y, KEY, NONCE), x, atol=1e-6)
    assert torch.allclose(y.abs().square().mean(1), x.abs().square().mean(1), rtol=1e-5)
    assert torch.allclose(y.abs().sort(1).values, x.abs().sort(1).values)       # amplitudes only move
    wrong = sc.decrypt(y, bytes(32), NONCE)
    other = sc.decrypt(y, KEY, b"\x00" * 12)
    corr = lambda a: (a * x.conj()).sum().abs() / x.abs().square().sum()        # noqa: E731
    assert corr(wrong) < 0.1 and corr(other) < 0.1
    assert not torch.equal(y[0], sc.encrypt(x[1:2], KEY, NONCE)[0])             # fresh per block


def test_mixing_cipher_inverts_keeps_power_mixes_amplitudes_and_keeps_noise_white():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 512, dtype=torch.complex64, generator=g) * torch.rand(4, 512, generator=g)  # uneven amplitudes
    mc = MixingCipher()
    assert mc.chunk(512) == 64 and mc.chunk(600) == 60
    y = mc.encrypt(x, KEY, NONCE)
    assert torch.allclose(mc.decrypt(y, KEY, NONCE), x, atol=1e-5)
    assert torch.allclose(y.abs().square().mean(1), x.abs().square().mean(1), rtol=1e-4)
    # unlike the scrambler, the amplitude set changes: every output mixes 64 inputs
    assert (y.abs().sort(1).values - x.abs().sort(1).values).abs().mean() > 0.05
    corr = lambda a: (a * x.conj()).sum().abs() / x.abs().square().sum()        # noqa: E731
    assert corr(mc.decrypt(y, bytes(32), NONCE)) < 0.1 and corr(mc.decrypt(y, KEY, b"\x01" * 12)) < 0.1
    # additive white noise of power N0 stays white with power N0 after Bob's decryption (unitary)
    n0 = 0.1
    noise = torch.randn(256, 512, dtype=torch.complex64, generator=g) * n0 ** 0.5
    err = mc.decrypt(noise, KEY, NONCE)
    assert float(err.abs().square().mean()) == pytest.approx(n0, rel=0.02)
    cov = (err.T @ err.conj()) / err.shape[0]                                    # [n, n] sample covariance
    off = cov - torch.diag(torch.diagonal(cov))
    assert float(off.abs().max()) < 6 * n0 / 256 ** 0.5                          # no correlation beyond sampling error
    with pytest.raises(ValueError, match="divisor in 8..64"):
        mc.encrypt(torch.randn(1, 67, dtype=torch.complex64), KEY, NONCE)


def test_key_schedule_rotates_and_hides_key():
    ks = KeySchedule(b"\x01" * 32)
    assert ks.key(0) != ks.key(1) and ks.key(0, "aead") != ks.key(0, "symbols") and len(ks.key(3)) == 32
    assert "01" not in repr(ks)
    with pytest.raises(ValueError):
        KeySchedule(b"short")


def test_bob_decodes_as_without_encryption_on_a_fading_link():
    torch.manual_seed(0)
    codec = semguard.build("codec", "adjscc", width=16)
    images = torch.rand(2, 3, 16, 16)
    ch = semguard.build("channel", "rayleigh")
    for cipher in (ScrambleCipher(), MixingCipher()):
        out = link_psnr(codec, images, ch, 20.0, cipher, KEY, {"wrong": bytes(32)},
                        generator=torch.Generator().manual_seed(1))
        assert set(out) == {"bob_plain", "bob", "eve_no_key", "eve_wrong"}
        assert all(np.isfinite(v) for v in out.values())


def test_nist_monobit_cross_check_and_short_run():
    eps = "1100100100001111110110101010001000100001011010001100001000110100110001001100011001100010100010111000"
    bits = np.array([int(c) for c in eps])
    assert monobit_pvalue(bits) == pytest.approx(0.109599, abs=1e-6)        # SP 800-22 section 2.1.8
    assert run_nist(bits, ["frequency"]).p_values["frequency"] == pytest.approx(monobit_pvalue(bits), abs=1e-9)
    rnd = np.random.default_rng(0).integers(0, 2, 20000)
    res = run_nist(rnd)
    assert res.all_passed and res.p_values["universal"] is None
    assert not run_nist(np.tile([0, 0, 0, 1], 5000)).all_passed


def _faded(cipher, equalizer: str, snr_db: float, coherence: int = 8):
    """Unit-power Gaussian symbols through encrypt -> Rayleigh -> equalise -> decrypt, and the
    decrypted symbols' channel state (moved back by the cipher) next to the transmitted one."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 512, dtype=torch.complex64, generator=g)
    ch = build("channel", "rayleigh", coherence=coherence, equalizer=equalizer)
    y, st = ch(cipher.encrypt(x, KEY, NONCE), snr_db, generator=g)
    return x, cipher.decrypt(y, KEY, NONCE), cipher.decrypt_state(st, KEY, NONCE), st


@pytest.mark.parametrize("cipher", [ScrambleCipher(), MixingCipher()])
def test_decrypt_received_is_decrypt_and_decrypt_state_in_one(cipher):
    g = torch.Generator().manual_seed(6)
    y, st = build("channel", "rayleigh", coherence=8)(torch.randn(3, 512, dtype=torch.complex64, generator=g), 5.0,
                                                      generator=g)
    d, st2 = cipher.decrypt_received(y, st, KEY, NONCE)
    torch.testing.assert_close(d, cipher.decrypt(y, KEY, NONCE))
    ref = cipher.decrypt_state(st, KEY, NONCE)
    torch.testing.assert_close(st2.h, ref.h)
    torch.testing.assert_close(st2.h_est, ref.h_est)
    assert not torch.equal(st2.h, st.h)


def test_scramble_decrypt_state_moves_each_symbols_fading_back_with_it():
    # noiseless and unequalised: the decrypted symbol is exactly its own fading times itself
    x, d, st, st_tx = _faded(ScrambleCipher(), "none", 300.0)
    assert torch.allclose(d, st.h * x, atol=1e-5)
    assert not torch.allclose(d, st_tx.h * x, atol=1e-2)           # the unmoved state is wrong
    assert torch.equal(st.h_est, st.h) and torch.equal(st.n0, st_tx.n0)


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
def test_mixing_decrypt_state_gives_each_decrypted_symbol_its_noise_power(equalizer):
    # fading changes every 8 symbols, so each 64-symbol DFT chunk mixes many fades; the state's
    # flat gain must predict the decrypted symbols' bias and noise (MMSE: beta' x + power beta'(1 - beta'))
    x, d, st, st_tx = _faded(MixingCipher(), equalizer, 5.0)
    n0 = st.n0
    g2 = st.h_est.abs().square()

    def normalised(state_g2):
        beta = torch.ones_like(state_g2) if equalizer == "zf" else state_g2 / (state_g2 + n0)
        var = n0 / state_g2 if equalizer == "zf" else beta * (1 - beta)
        r = d - beta * x
        gain = (d.conj() * x).real.mean() / (beta * x.abs().square()).mean()
        return float((r.abs().square() / var).mean()), float(gain)

    power, gain = normalised(g2)
    assert power == pytest.approx(1.0, rel=0.04) and gain == pytest.approx(1.0, rel=0.03)
    power_tx, _ = normalised(st_tx.h_est.abs().square())
    assert abs(power_tx - 1.0) > 0.2                                 # the transmitted-order state mispredicts
