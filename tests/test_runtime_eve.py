"""Eve runs the PLKG key agreement herself from the tapped public discussion and her own observation
of Alice's probes (runtime.plkg_eve): where she sits with Bob she gets the key (the attack works), at
the declared distance she never does, and what her bits carry stays under the bound the key was sized
against."""

from __future__ import annotations

import numpy as np
import pytest

from semguard.channels.spectrum import spatial_correlation
from semguard.runtime.handshake import HandshakeError
from semguard.runtime.kbview import KbView
from semguard.runtime.plkg import PlkgInitiator, PlkgResponder
from semguard.runtime.plkg_eve import eve_attempt, eve_master, sessions_from_messages
from semguard.runtime.probe_channel import ProbeChannel
from semguard.runtime.relay import EVE_PROBE
from semguard.runtime.wire import iq_out

KB = KbView("kb-1", 3, "ab" * 32)


def test_eve_overhears_through_a_channel_correlated_as_j0():
    """Eve d wavelengths from Bob: her channel's correlation with Bob's is J0(2 pi d) (Jakes 1974)."""
    for d in (0.1, 0.3):
        ch = ProbeChannel(snr_db=60.0, seed=4, eve_distance=d)
        p = np.ones(20000)
        ch.to_alice("r", p, 250.0)
        yb = ch.to_bob("r", p, 250.0)
        rid, ye = ch.overheard.popleft()
        rho = np.vdot(yb, ye) / np.sqrt(np.vdot(yb, yb).real * np.vdot(ye, ye).real)
        assert rid == "r" and rho.real == pytest.approx(float(spatial_correlation(d)), abs=0.03)
        assert abs(rho.imag) < 0.03


def _tapped_session(seed: int, distance: float) -> tuple[dict, PlkgResponder, PlkgInitiator]:
    """One session through the probe channel, the messages recorded as the emulator's relay taps them."""
    ch = ProbeChannel(seed=seed, eve_distance=distance)
    bob = PlkgInitiator(KB, rng=np.random.default_rng(seed + 1))
    alice = PlkgResponder(KB, rng=np.random.default_rng(seed + 2))
    msgs, msg = [], bob.first()
    while msg is not None:
        to_alice = ch.through(msg, "tx")
        reply = ch.through(alice.handle(to_alice), "rx")
        msgs += [to_alice, reply]
        while ch.overheard:
            rid, y = ch.overheard.popleft()
            msgs.append({"m": EVE_PROBE, "round": rid, "probe": {"iq": iq_out(y)}})
        msg = bob.handle(reply)
    (session,) = sessions_from_messages(msgs)
    return session, alice, bob


@pytest.mark.parametrize(("distance", "seed"), [(0.0, 3), (0.5, 3), (0.5, 8)])
def test_eve_runs_the_key_agreement_from_her_tap(distance, seed):
    try:
        session, alice, bob = _tapped_session(seed, distance)
    except HandshakeError as exc:  # Alice and Bob themselves did not agree on this realisation
        pytest.skip(f"no key between Alice and Bob: {exc}")
    assert alice.master == bob.master
    eve = eve_attempt(session)
    assert eve.key_bits == alice.info["key_bits"] and eve.sample_bits == 1024
    if distance == 0.0:   # she sits with Bob: same channel, own noise -- she reconciles and gets the key
        assert eve.key_matched and eve.sample_disagreement < 0.02
    else:                 # 0.5 wavelengths (rho = J0(pi) = -0.30): nothing she can reconcile
        assert not eve.key_matched and eve.eve_blocks_ok == 0
        assert eve.sample_disagreement > 0.35
        # what her bits carry (a BSC of her disagreement) is under the declared Eve's bound
        assert eve.bsc_bits < alice.info["eve_info_bits"]


@pytest.mark.parametrize(("distance", "seed"), [(0.0, 3), (0.5, 3)])
def test_soft_eve_chase_decodes_from_her_tap(distance, seed):
    """The soft-decision Eve (her LLRs, Chase-II over her 6 least reliable bits per block) on the same
    sessions: with Bob she gets the key; at the declared distance she decodes no block, and what her LLRs
    carry per bit (measured on the disclosed sample) stays under the declared Eve's bound, though above
    the hard decisions' BSC figure."""
    try:
        session, alice, _ = _tapped_session(seed, distance)
    except HandshakeError as exc:
        pytest.skip(f"no key between Alice and Bob: {exc}")
    soft = eve_attempt(session, decoder="chase", chase_p=6)
    hard = eve_attempt(session)
    assert soft.decoder == "chase" and soft.sample_bits == 1024 and soft.reconciled_bits == hard.reconciled_bits
    if distance == 0.0:
        assert soft.key_matched and soft.correlation_fit > 0.99 and soft.sample_information > 0.95
    else:
        assert not soft.key_matched and soft.eve_blocks_ok == 0
        assert soft.correlation_fit < -0.2                  # J0(pi) = -0.30: she found the sign herself
        assert hard.bsc_bits < soft.soft_bits < alice.info["eve_info_bits"]
    with pytest.raises(ValueError, match="decoder"):
        eve_attempt(session, decoder="list")


def test_eve_with_the_key_derives_the_session_master():
    """The attack's last step: with a key that passed Alice's tag, Eve rebuilds Alice's transcript from the
    tapped public messages and derives the same session master (so she opens every frame); the key is
    neither printed nor exported."""
    session, alice, bob = _tapped_session(3, 0.0)
    for eve in (eve_attempt(session), eve_attempt(session, decoder="chase")):
        assert eve.key_matched and eve.key is not None
        assert eve_master(session, eve.key) == alice.master == bob.master
        assert "key" not in eve.to_dict() and eve.key.hex() not in repr(eve)
    far, _, _ = _tapped_session(3, 0.5)
    assert eve_attempt(far).key is None and eve_attempt(far, decoder="chase").key is None
    with pytest.raises(ValueError, match="rx sig"):
        eve_master({k: v for k, v in session.items() if k != "rx_sig"}, b"\0" * 16)
