"""The emulator's IQ path: registered blind attacks radiated at exactly the PSR budget measured at the
receiver (Gaussian jamming adds its power to the noise, as equivalent-SNR theory says), and
FLAG_SYMBOLS frames: the channel acts on keyed-scrambled symbols while the side info stays under the AEAD."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from semguard.runtime.emulator import EmulatorConfig, _OnIq
from semguard.runtime.frames import FLAG_SYMBOLS, Frame, FrameType, decode_frame, encode_frame, iq_bytes, \
    side_bytes, split_symbols, unpack_data
from semguard.runtime.iq_path import IqPath, save_delta
from semguard.runtime.scramble import SymbolScrambler
from semguard.runtime.secure import Opener, Rejected, Sealer


def _block(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


@pytest.mark.parametrize("psr_db", [-20.0, -10.0, 0.0])
def test_gaussian_jamming_adds_its_power_to_the_noise(psr_db):
    snr_db = 15.0
    path = IqPath("awgn", snr_db, seed=3, attack="gaussian", psr_db=psr_db)
    x = _block(8192)
    mse = np.mean([np.mean(np.abs(path(x) - x) ** 2) for _ in range(4)])
    assert mse == pytest.approx(10 ** (-snr_db / 10) + 10 ** (psr_db / 10), rel=0.05)
    assert np.allclose(path.psr_measured, psr_db, atol=1e-3)     # exactly the budget, every block


def test_universal_block_from_a_file_is_radiated_at_the_budget(tmp_path):
    delta = _block(256, seed=9)
    save_delta(tmp_path / "u.safetensors", delta)
    path = IqPath("awgn", 60.0, seed=0, attack="universal", psr_db=-6.0, attack_file=str(tmp_path / "u.safetensors"))
    x = _block(256, seed=1)
    d = path(x) - x
    corr = abs(np.vdot(d, delta)) / (np.linalg.norm(d) * np.linalg.norm(delta))
    assert corr > 0.999 and np.allclose(path.psr_measured, -6.0, atol=1e-3)
    with pytest.raises(ValueError, match="delta has|symbols"):
        path(_block(128))


def test_only_blind_attacks_and_valid_files():
    with pytest.raises(ValueError, match="blind attacks only"):
        IqPath("awgn", 10.0, 0, attack="pgd", psr_db=-10.0)
    with pytest.raises(ValueError, match="attack-file"):
        IqPath("awgn", 10.0, 0, attack="universal", psr_db=-10.0, attack_file="/nonexistent.safetensors")
    with pytest.raises(ValueError, match="channel too"):
        EmulatorConfig("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", attack="gaussian", psr_db=-10.0)


def test_symbol_frames_take_the_channel_and_keep_their_side_info_sealed():
    master = bytes(range(32))
    x = _block(512, seed=4)
    scr = SymbolScrambler(master)
    frame = Sealer(master).seal_symbols(Frame(FrameType.DATA, 2, 7, side_bytes({"i": 7})),
                                        iq_bytes(scr.encrypt(x, 2, 7)))
    raw = encode_frame(frame)
    tapped = iq_from_tail(raw)                           # what Eve's tap holds: scrambled symbols
    assert abs(np.vdot(tapped, x)) / len(x) < 0.1
    stats: Counter = Counter()
    emu = _OnIq(EmulatorConfig("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", channel="awgn", snr_db=20.0), stats)
    out = decode_frame(emu(raw))
    assert stats["channel_applied"] == 1 and out.flags & FLAG_SYMBOLS
    side, y = unpack_data(Opener(master).open(out))
    y = scr.decrypt(y, 2, 7)
    assert side == {"i": 7}
    assert np.mean(np.abs(y - x) ** 2) == pytest.approx(0.01, rel=0.2)   # the AWGN's N0, nothing else
    bad = bytearray(raw)
    bad[30] ^= 1                                          # inside the sealed side info
    with pytest.raises(Rejected, match="forged"):
        Opener(master).open(decode_frame(bytes(bad)))


def iq_from_tail(raw: bytes) -> np.ndarray:
    return np.frombuffer(split_symbols(decode_frame(raw).payload)[1], "<c8")
