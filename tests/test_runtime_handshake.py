"""Handshake: agreement, knowledge mismatch, and the man in the middle who wins without
authentication and is refused with Ed25519 identities."""

from __future__ import annotations

import pytest

from semguard.knowledge.keys import generate_key, public_bytes
from semguard.runtime.frames import Frame, FrameType
from semguard.runtime.handshake import Handshake, HandshakeError, KbView, MitmRelay, run_direct
from semguard.runtime.secure import Opener, Rejected, Sealer

KB = KbView("kb-1", 3, "ab" * 32)


def test_direct_agreement_and_kb_mismatch():
    a, b = generate_key(), generate_key()
    m_tx, m_rx = run_direct(Handshake("tx", KB, identity=a, peer_public=public_bytes(b)),
                            Handshake("rx", KB, identity=b, peer_public=public_bytes(a)))
    assert m_tx == m_rx and len(m_tx) == 32
    m2, _ = run_direct(Handshake("tx", KB), Handshake("rx", KB))
    assert m2 != m_tx  # fresh ephemerals, fresh master
    with pytest.raises(HandshakeError, match="knowledge base mismatch"):
        run_direct(Handshake("tx", KB), Handshake("rx", KbView("kb-1", 4, "ab" * 32)))


def test_mitm_wins_without_authentication():
    tx, rx = Handshake("tx", KB), Handshake("rx", KB)
    tx_master, rx_master, m_tx, m_rx = MitmRelay(KB).run(tx, rx)
    assert tx_master == m_tx and rx_master == m_rx and tx_master != rx_master
    # Mallory opens what tx seals, and re-seals it so rx accepts it
    frame = Sealer(tx_master).seal(Frame(FrameType.DATA, 0, 0, b"secret image block"))
    stolen = Opener(m_tx).open(frame)
    assert stolen == b"secret image block"
    assert Opener(rx_master).open(Sealer(m_rx).seal(Frame(FrameType.DATA, 0, 0, b"forged by mallory"))) \
        == b"forged by mallory"


def test_mitm_refused_with_identities():
    a, b, mallory = generate_key(), generate_key(), generate_key()
    tx = Handshake("tx", KB, identity=a, peer_public=public_bytes(b))
    rx = Handshake("rx", KB, identity=b, peer_public=public_bytes(a))
    with pytest.raises(HandshakeError, match="pinned"):
        MitmRelay(KB, identity=mallory).run(tx, rx)
    # Mallory presenting the genuine public keys but unable to sign the swapped transcript
    tx = Handshake("tx", KB, identity=a, peer_public=public_bytes(b))
    rx = Handshake("rx", KB, identity=b, peer_public=public_bytes(a))
    relay = MitmRelay(KB)
    relay.to_rx._hello["id"] = public_bytes(a).hex()
    relay.to_tx._hello["id"] = public_bytes(b).hex()
    with pytest.raises(HandshakeError, match="authentication failed"):
        relay.run(tx, rx)
    # without the master, Mallory's frames are forged to rx
    with pytest.raises(Rejected, match="forged"):
        Opener(bytes(32)).open(Sealer(b"m" * 32).seal(Frame(FrameType.DATA, 0, 0, b"x")))
