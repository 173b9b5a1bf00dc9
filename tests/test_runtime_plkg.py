"""PLKG over the emulator's reciprocal probe channel: the two ends agree on a key sized for the declared
Eve; a man in the middle who runs his own key agreement with each end reads and forges frames when the
transcript is not authenticated, and is refused when the ends pin each other's Ed25519 keys."""

from __future__ import annotations

import numpy as np
import pytest

from semguard.channels.jakes import jakes_autocorrelation
from semguard.knowledge.keys import generate_key, public_bytes
from semguard.runtime.frames import Frame, FrameType
from semguard.runtime.handshake import HandshakeError
from semguard.runtime.kbview import KbView
from semguard.runtime.plkg import PlkgConfig, PlkgInitiator, PlkgResponder
from semguard.runtime.probe_channel import ProbeChannel
from semguard.runtime.secure import Opener, Sealer

KB = KbView("kb-1", 3, "ab" * 32)


def _run(bob: PlkgInitiator, alice: PlkgResponder, ch: ProbeChannel) -> None:
    msg = bob.first()
    while msg is not None:
        msg = bob.handle(ch.through(alice.handle(ch.through(msg, "tx")), "rx"))


def test_reciprocal_probes_share_one_realisation():
    """Both directions see h(t) and h(t + tau): their correlation is J0(2 pi f_d tau) (Jakes), the
    noise is independent, and a round the relay never saw gets an independent channel."""
    ch = ProbeChannel(doppler_hz=100.0, snr_db=60.0, turnaround_s=1e-3, seed=3)
    p = np.ones(20000)
    ya = ch.to_alice("r", p, 250.0)
    yb = ch.to_bob("r", p, 250.0)
    rho = abs(np.vdot(ya, yb)) / np.sqrt(np.vdot(ya, ya).real * np.vdot(yb, yb).real)
    assert rho == pytest.approx(float(jakes_autocorrelation(100.0 * 1e-3)), abs=0.01)
    y_other = ch.to_bob("unknown", p, 250.0)
    assert abs(np.vdot(ya, y_other)) / len(p) < 0.1 and ch.unknown_rounds == 1


def test_plkg_agrees_a_key_sized_for_the_declared_eve():
    a, b = generate_key(), generate_key()
    bob = PlkgInitiator(KB, identity=b, peer_public=public_bytes(a), rng=np.random.default_rng(1))
    alice = PlkgResponder(KB, identity=a, peer_public=public_bytes(b), rng=np.random.default_rng(2))
    _run(bob, alice, ProbeChannel(seed=5))
    assert alice.master is not None and alice.master == bob.master and len(alice.master) == 32
    info = alice.info
    assert info["key_bits"] >= 128 and info["key_bits"] == bob.info["key_bits"]
    # the length is what the min-entropy leaves after leakage and the declared Eve's information
    assert info["key_bits"] <= info["min_entropy_bits"] - info["leaked_bits"] - info["eve_info_bits"]
    assert "key" not in info and all(not isinstance(v, bytes) for v in info.values())


def test_plkg_refuses_without_a_channel_and_at_low_snr():
    bob, alice = PlkgInitiator(KB), PlkgResponder(KB)
    with pytest.raises(HandshakeError, match="unchanged"):
        alice.handle(bob.first())  # no emulator in the path: the pilots arrive as sent
    cfg = PlkgConfig(n_probes=1024, snr_db=0.0)
    with pytest.raises(HandshakeError, match="plkg:"):
        _run(PlkgInitiator(KB, cfg), PlkgResponder(KB, cfg), ProbeChannel(snr_db=0.0, seed=1))


class _Mallory:
    """In the path between Alice and Bob, with a physical channel of her own to each (she transmits and
    receives probes herself): Bob-facing she is 'tx', Alice-facing she is 'rx'."""

    def __init__(self, claim: tuple[bytes, bytes] | None = None, identity=None) -> None:
        self.to_bob = PlkgResponder(KB, identity=identity)
        self.to_alice = PlkgInitiator(KB, identity=identity)
        if claim is not None:  # she claims Alice's key to Bob and Bob's to Alice, without their private keys
            for side, pub in zip((self.to_bob, self.to_alice), claim):
                orig = side.hello
                side.hello = lambda orig=orig, pub=pub: {**orig(), "id": pub.hex()}
        self.ch_a, self.ch_b = ProbeChannel(seed=11), ProbeChannel(seed=12)

    def run(self, alice: PlkgResponder, bob: PlkgInitiator) -> None:
        msg_a = self.to_alice.first()
        msg_b = bob.first()
        while msg_b is not None:
            reply_b = self.to_bob.handle(self.ch_b.through(msg_b, "tx"))
            if msg_a is not None:
                msg_a = self.to_alice.handle(self.ch_a.through(alice.handle(self.ch_a.through(msg_a, "tx")), "rx"))
            msg_b = bob.handle(self.ch_b.through(reply_b, "rx"))
        while msg_a is not None:
            msg_a = self.to_alice.handle(self.ch_a.through(alice.handle(self.ch_a.through(msg_a, "tx")), "rx"))


def test_mitm_reads_and_forges_without_authentication():
    alice, bob, mallory = PlkgResponder(KB), PlkgInitiator(KB), _Mallory()
    mallory.run(alice, bob)
    assert alice.master == mallory.to_alice.master and bob.master == mallory.to_bob.master
    assert alice.master != bob.master
    # Alice's frame: Mallory opens it, rewrites it, and Bob accepts her forgery as Alice's
    frame = Sealer(alice.master).seal(Frame(FrameType.DATA, 0, 0, b"pay 10 to bob"))
    clear = Opener(mallory.to_alice.master).open(frame)
    forged = Sealer(mallory.to_bob.master).seal(Frame(FrameType.DATA, 0, 0, clear.replace(b"bob", b"eve")))
    assert clear == b"pay 10 to bob" and Opener(bob.master).open(forged) == b"pay 10 to eve"


@pytest.mark.parametrize("how", ["own key", "claims the pinned key"])
def test_mitm_refused_with_pinned_identities(how):
    a, b, m = generate_key(), generate_key(), generate_key()
    alice = PlkgResponder(KB, identity=a, peer_public=public_bytes(b))
    bob = PlkgInitiator(KB, identity=b, peer_public=public_bytes(a))
    mallory = _Mallory(identity=m) if how == "own key" else _Mallory(claim=(public_bytes(a), public_bytes(b)), identity=m)
    want = "not the pinned key" if how == "own key" else "peer authentication failed"
    with pytest.raises(HandshakeError, match=want):
        mallory.run(alice, bob)
    assert bob.master is None
