"""AEAD sealing: nonce = epoch||seq, header authenticated, replays / reorders beyond the window /
forgeries / stale epochs rejected and counted; re-keying by epoch; resumable receiver state."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semguard.runtime.frames import Frame, FrameType, decode_frame, encode_frame
from semguard.runtime.secure import Opener, Rejected, ReplayWindow, Sealer, frame_nonce

MASTER = bytes(range(32))


def _f(seq: int, epoch: int = 0, payload: bytes = b"hello") -> Frame:
    return Frame(FrameType.DATA, epoch, seq, payload)


def test_nonce_is_epoch_then_seq():
    assert frame_nonce(1, 2) == b"\x00\x00\x00\x01" + b"\x00" * 7 + b"\x02"


def test_seal_open_and_rejections():
    s, o = Sealer(MASTER), Opener(MASTER, window=4)
    frames = [s.seal(_f(i, payload=bytes([i]) * 3)) for i in range(10)]
    assert frames[0].payload != b"\x00" * 3 and len(frames[0].payload) == 3 + 16
    for i in (0, 1, 3, 2):  # reorder within the window is accepted once
        assert o.open(frames[i]) == bytes([i]) * 3
    with pytest.raises(Rejected, match="replay"):
        o.open(frames[2])
    o.open(frames[9])
    with pytest.raises(Rejected, match="too_old"):
        o.open(frames[4])  # 5 below highest 9, window 4
    raw = bytearray(encode_frame(frames[8]))
    raw[-1] ^= 1  # bit flip in the tag
    with pytest.raises(Rejected, match="forged"):
        o.open(decode_frame(bytes(raw)))
    raw = bytearray(encode_frame(frames[8]))
    raw[8 + 3] ^= 1  # header epoch changed: 0 -> 1 fails the AAD/nonce
    with pytest.raises(Rejected, match="forged"):
        o.open(decode_frame(bytes(raw)))
    with pytest.raises(Rejected, match="forged"):
        o.open(_f(8))  # clear frame
    with pytest.raises(Rejected, match="forged"):
        Opener(bytes(32)).open(frames[8])  # wrong key
    assert o.open(frames[8]) == b"\x08" * 3  # the genuine one still passes after the forgeries
    assert o.accepted == 6
    assert o.rejected == {"replay": 1, "too_old": 1, "forged": 3}


def test_rekey_by_epoch_and_stale_epoch():
    s, o = Sealer(MASTER), Opener(MASTER)
    o.open(s.seal(_f(5, 0)))
    new = s.seal(_f(0, 1))
    assert new.payload != s.seal(_f(0, 0)).payload  # other key, same seq
    assert o.open(new) == b"hello" and o.epoch == 1
    with pytest.raises(Rejected, match="stale_epoch"):
        o.open(s.seal(_f(6, 0)))


def test_restart_state_blocks_redelivery():
    s, o = Sealer(MASTER), Opener(MASTER)
    fr = [s.seal(_f(i)) for i in range(5)]
    for f in fr[:3]:
        o.open(f)
    o2 = Opener(MASTER)
    o2.restore(o.state())
    for f in fr[:3]:
        with pytest.raises(Rejected, match="replay"):
            o2.open(f)
    assert o2.open(fr[3]) == b"hello"
    with pytest.raises(ValueError, match="receiver state"):
        o2.restore({"epoch": 0})


def test_window_bitmap_matches_a_set():
    import random
    rng = random.Random(0)
    w, seen = ReplayWindow(8), set()
    for _ in range(500):
        q = rng.randrange(0, 60)
        expect = q not in seen and q > w.highest - 8
        try:
            w.accept(q)
            got = True
        except Rejected:
            got = False
        assert got == expect
        if got:
            seen.add(q)


def _hkdf_by_hand(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 extract-then-expand with the standard library's HMAC-SHA256."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]


def test_epoch_key_is_the_keys_schedule():
    from semguard.keys.kdf import KeySchedule, hkdf
    from semguard.runtime.secure import SALT, epoch_key
    # RFC 5869 test case 1
    okm = hkdf(bytes([0x0B] * 22), bytes(range(0xF0, 0xFA)), 42, bytes(range(13)))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    for e in (0, 1, 7):
        assert epoch_key(MASTER, e) == KeySchedule(MASTER, salt=SALT).key(e, "frames")
        assert epoch_key(MASTER, e) == _hkdf_by_hand(MASTER, SALT, f"frames|epoch={e}".encode(), 32)
    with pytest.raises(ValueError, match="128 bits"):
        Sealer(b"short")


def test_plkg_session_runs_without_torch():
    """A whole PLKG session (probe channel with Eve, both state machines, Eve's own attempt) and the
    emulator, Mallory and the CLI module load neither torch nor the torch channels, nor ``scipy.stats``
    (over a second to import; ``scipy.signal`` would load it)."""
    code = ("import sys, numpy as np\n"
            "import semguard.cli.runtime, semguard.runtime.emulator, semguard.runtime.mallory\n"
            "from semguard.runtime.kbview import KbView\n"
            "from semguard.runtime.plkg import PlkgInitiator, PlkgResponder\n"
            "from semguard.runtime.probe_channel import ProbeChannel\n"
            "kb = KbView('kb', 1, '00' * 32)\n"
            "bob, alice = PlkgInitiator(kb, rng=np.random.default_rng(1)), PlkgResponder(kb, rng=np.random.default_rng(2))\n"
            "ch = ProbeChannel(seed=5, eve_distance=0.5)\n"
            "msg = bob.first()\n"
            "while msg is not None:\n"
            "    msg = bob.handle(ch.through(alice.handle(ch.through(msg, 'tx')), 'rx'))\n"
            "assert alice.master == bob.master and len(ch.overheard) == 1\n"
            "print(sorted(m for m in ('torch', 'semguard.channels.base', 'semguard.channels.jakes', 'scipy.stats',\n"
            "                         'scipy.signal') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_runtime_sealing_and_handshake_load_no_torch():
    code = ("import sys, semguard.runtime.secure, semguard.runtime.handshake\n"
            "print(sorted(m for m in ('torch', 'semguard.channels', 'semguard.keys.ciphers') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
