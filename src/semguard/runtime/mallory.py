"""Mallory, a man in the middle inside the emulator (``semguard channel --mitm``).

She takes the handshake relay's place: towards Bob (rx) she is the transmitter, towards Alice (tx) the
receiver, with a physical channel of her own to each (two independent reciprocal probe channels: she
transmits and receives probes herself).  Bob's hello starts both sessions; she answers with the key
source Bob asked for and replays the knowledge-base view Bob sent (a signed version record is public),
so only the identities can stop her.  With ``--mitm-identity`` she signs with her own key; with
``--mitm-claim`` she announces the pinned keys (Alice's to Bob, Bob's to Alice) without their private
halves.

Data path: once she holds a master with each side, she opens every frame of Alice's under her
Alice-side master (unscrambling ``--seal symbols`` blocks), writes what she read to ``mitm_tap`` as clear
DATA frames, optionally forges it (``mitm_forge``: the IQ block negated, a different codec output of the
same power), and seals it again under her Bob-side master with the same epoch and sequence number.
Frames that arrive before both keys exist wait in a bounded queue.  Without identities both ends accept
her; with pinned identities each end refuses her handshake (hello: "not the pinned key"; a claimed key:
"peer authentication failed") and no frame reaches Bob.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from typing import IO, Any

import numpy as np
import zmq

from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, Frame, FrameError, FrameType, decode_frame, \
    encode_frame, iq_bytes, pack_data, side_bytes, unpack_data
from semguard.runtime.handshake import HandshakeError
from semguard.runtime.relay import RelayEnds, tap_write
from semguard.runtime.secure import Opener, Rejected, Sealer

__all__ = ["Mallory"]

log = logging.getLogger(__name__)
_ATTEMPTS = 10


class _ReplayedKb:
    """The knowledge-base view Mallory shows: the one Bob sent her (she accepts any peer's)."""

    def __init__(self, view: Any) -> None:
        self._view = view if isinstance(view, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        return dict(self._view)

    def check_peer(self, peer: Any) -> None:
        return None


def _claim(side: Any, public: bytes | None) -> Any:
    """Make ``side`` announce ``public`` as its identity (the transcript then holds the claimed key)."""
    if public is None:
        return side
    if hasattr(side, "hs"):                                 # x25519: the hello is built once
        side.hs._hello["id"] = public.hex()
    else:                                                   # plkg: built per message
        orig = side.hello
        side.hello = lambda: {**orig(), "id": public.hex()}
    return side


class Mallory(RelayEnds):
    """The emulator's handshake relay replaced by a man in the middle (same interface as
    :class:`~semguard.runtime.relay.HandshakeRelay`)."""

    def __init__(self, ctx: zmq.Context, cfg: Any, stats: Counter, tap: IO[bytes] | None) -> None:
        from semguard.runtime.probe_channel import ProbeChannel
        super().__init__(ctx, cfg, stats, tap)
        self.cfg = cfg
        chan = {"doppler_hz": cfg.probe_doppler_hz, "snr_db": cfg.probe_snr_db, "turnaround_s": cfg.probe_turnaround_s}
        self.ch_bob, self.ch_alice = ProbeChannel(**chan), ProbeChannel(**chan)   # her own channel to each
        self.to_bob: Any = None
        self.to_alice: Any = None
        self.alice_attempts = 0
        self._hello: dict[str, Any] = {}
        self.master_bob: bytes | None = None
        self.master_alice: bytes | None = None
        self._queue: deque[bytes] = deque(maxlen=cfg.hwm)
        self._crypto: tuple[Opener, Sealer, Any, Any] | None = None
        self.read_tap = open(cfg.mitm_tap, "ab") if cfg.mitm_tap else None

    # -- the two key agreements -------------------------------------------------------------------
    def _plkg(self, msg: dict[str, Any]) -> Any:
        if msg.get("key_source", "x25519") != "plkg":
            return None
        from semguard.runtime.plkg import PlkgConfig
        probe = msg.get("probe") if isinstance(msg.get("probe"), dict) else {}
        return PlkgConfig(n_probes=int(probe.get("n", 4096)), probe_rate_hz=float(probe.get("rate_hz", 250.0)))

    def _start_alice(self) -> None:
        from semguard.runtime.keysource import initiator
        self.alice_attempts += 1
        self.to_alice = _claim(initiator(self._hello.get("key_source", "x25519"), _ReplayedKb(self._hello.get("kb")),
                                         identity=self.cfg.mitm_identity, peer_public=None,
                                         plkg=self._plkg(self._hello)), self.cfg.mitm_claim_rx)
        self._send_alice(self.to_alice.first())

    def _send_alice(self, msg: dict[str, Any]) -> None:
        body = json.dumps(self.ch_alice.through(msg, "tx")).encode()
        self.record(body)
        self.back.send_multipart([b"", body])

    def to_tx(self) -> None:
        """A request from Bob: Mallory answers it herself."""
        from semguard.runtime.keysource import responder
        *env, body = self.front.recv_multipart()
        self.record(body)
        self.stats["handshake_requests"] += 1
        try:
            msg = json.loads(body)
            if not isinstance(msg, dict):
                raise HandshakeError("malformed request")
            if msg.get("m") == "hello":
                self._hello = msg
                source = msg.get("key_source", "x25519")
                self.to_bob = _claim(responder(source, _ReplayedKb(msg.get("kb")), msg, identity=self.cfg.mitm_identity,
                                               peer_public=None, plkg=self._plkg(msg)), self.cfg.mitm_claim_tx)
                if self.to_alice is None and self.master_alice is None:
                    self._start_alice()
            if self.to_bob is None:
                raise HandshakeError("unexpected message before a hello")
            reply = self.to_bob.handle(self.ch_bob.through(msg, "tx"))
            if self.to_bob.master is not None:
                self.master_bob, self.to_bob = self.to_bob.master, None
                self.stats["mitm_bob_keyed"] += 1
                self._crypto = None
        except (HandshakeError, ValueError, KeyError, TypeError) as exc:
            log.warning("mallory: the session with Bob failed: %s", exc)
            self.stats["mitm_bob_refused"] += 1
            self.to_bob, reply = None, {"m": "error", "e": str(exc)}
        out = json.dumps(self.ch_bob.through(reply, "rx")).encode()
        self.record(out)
        self.front.send_multipart([*env, out])

    def to_rx(self) -> None:
        """A reply from Alice to Mallory's own session."""
        body = self.back.recv_multipart()[-1]
        self.record(body)
        if self.to_alice is None:
            return
        try:
            reply = json.loads(body)
            if not isinstance(reply, dict):
                raise HandshakeError("malformed reply")
            nxt = self.to_alice.handle(self.ch_alice.through(reply, "rx"))
        except (HandshakeError, ValueError, KeyError, TypeError) as exc:
            log.warning("mallory: the session with Alice failed: %s", exc)
            self.stats["mitm_alice_refused"] += 1
            self.to_alice = None
            if "plkg:" in str(exc) and self.alice_attempts < _ATTEMPTS:  # a fresh realisation may agree
                self._start_alice()
            return
        if nxt is not None:
            self._send_alice(nxt)
        elif self.to_alice.master is not None:
            self.master_alice, self.to_alice = self.to_alice.master, None
            self.stats["mitm_alice_keyed"] += 1
            self._crypto = None

    # -- the data path ----------------------------------------------------------------------------
    def on_frame(self, raw: bytes) -> list[bytes]:
        self._queue.append(raw)
        return self.drain()

    def drain(self) -> list[bytes]:
        """Frames ready for Bob (re-sealed under Mallory's Bob-side master) once she holds both keys."""
        out: list[bytes] = []
        while self._queue:
            raw = self._queue[0]
            try:
                frame = decode_frame(raw)
            except FrameError:
                self.stats["mitm_malformed"] += 1
                out.append(self._queue.popleft())
                continue
            sealed = bool(frame.flags & FLAG_SEALED)
            if sealed and (self.master_alice is None or self.master_bob is None):
                break                                        # wait for both keys
            self._queue.popleft()
            fwd = self._rewrite(frame, sealed)
            if fwd is not None:
                out.append(fwd)
        return out

    def _keys(self) -> tuple[Opener, Sealer, Any, Any]:
        """Alice-side opener, Bob-side sealer and the two symbol scramblers (built once per key pair)."""
        if self._crypto is None:
            from semguard.runtime.scramble import SymbolScrambler
            assert self.master_alice is not None and self.master_bob is not None
            self._crypto = (Opener(self.master_alice, window=64), Sealer(self.master_bob),
                            SymbolScrambler(self.master_alice), SymbolScrambler(self.master_bob))
        return self._crypto

    def _rewrite(self, frame: Frame, sealed: bool) -> bytes | None:
        symbols = bool(frame.flags & FLAG_SYMBOLS)
        if sealed:
            opener, sealer, scr_alice, scr_bob = self._keys()
            try:
                clear = opener.open(frame)
            except Rejected:
                self.stats["mitm_rejected"] += 1
                return None
        else:
            clear = frame.payload
        e, s = frame.epoch, frame.seq
        if frame.type != FrameType.DATA:
            return encode_frame(sealer.seal(Frame(frame.type, e, s, clear)) if sealed else frame)
        side, iq = unpack_data(clear)
        if symbols:
            iq = scr_alice.decrypt(iq, e, s)
        self.stats["mitm_read"] += 1
        tap_write(self.read_tap, encode_frame(Frame(FrameType.DATA, e, s, pack_data(side, iq))))
        if self.cfg.mitm_forge:
            iq = (-np.asarray(iq)).astype(np.complex64)
            self.stats["mitm_forged"] += 1
        if not sealed:
            return encode_frame(Frame(FrameType.DATA, e, s, pack_data(side, iq)))
        if symbols:
            scrambled = iq_bytes(scr_bob.encrypt(iq, e, s))
            return encode_frame(sealer.seal_symbols(Frame(FrameType.DATA, e, s, side_bytes(side)), scrambled))
        return encode_frame(sealer.seal(Frame(FrameType.DATA, e, s, pack_data(side, iq))))

    def close(self) -> None:
        super().close()
        if self.read_tap is not None:
            self.read_tap.close()
