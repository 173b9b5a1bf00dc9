"""Link set-up: knowledge sync check, the x25519 key source, Ed25519 transcript authentication, and
the helpers the plkg key source (:mod:`semguard.runtime.plkg`) shares.

Two messages each way (SIGMA-style, cf. Krawczyk, CRYPTO 2003)::

    rx -> tx  hello_rx = {role, eph (X25519 public), nonce, kb: {id, version, root[, record]}, id (Ed25519 public)}
    tx -> rx  hello_tx
    rx -> tx  sig_rx = Ed25519(rx identity, "semguard-runtime-hs|rx|" + transcript)
    tx -> rx  sig_tx = Ed25519(tx identity, "semguard-runtime-hs|tx|" + transcript)

``transcript = SHA-256(hello_tx || hello_rx)``; the session master is
``HKDF(X25519(eph_a, eph_b), info=transcript)``.  Both sides refuse a peer whose knowledge base differs
from theirs; with a signed view (:mod:`semguard.runtime.kbview`) the peer's version record must carry a
valid signature by one of our base's publishers.  Without identities (``identity=None`` and
``peer_public=None``) the exchange is plain Diffie-Hellman and a man in the middle who swaps the
ephemeral keys shares one master with each side (see :class:`MitmRelay`); with a pinned peer key the
swapped transcript's signature does not verify and :class:`HandshakeError` is raised.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from semguard.keys.kdf import hkdf
from semguard.knowledge.keys import public_bytes, sign, verify_signature
from semguard.knowledge.records import SignatureError
from semguard.runtime.kbview import KbMismatch, KbView

__all__ = ["HandshakeError", "KbView", "Handshake", "MitmRelay", "X25519Initiator", "X25519Responder", "check_hello", "derive_master", "sign_transcript", "verify_transcript"]

_ROLES = ("tx", "rx")


class HandshakeError(RuntimeError):
    """Link set-up failed (knowledge mismatch, bad signature, malformed message)."""


def check_hello(peer: dict[str, Any], role: str, kb: KbView, peer_public: bytes | None) -> None:
    """The checks every hello passes: complementary role, our knowledge base (signed root verified when
    ours is signed), and the pinned identity if one is pinned."""
    if peer.get("role") == role or peer.get("role") not in _ROLES:
        raise HandshakeError(f"hello: peer role {peer.get('role')!r} does not complement {role!r}")
    try:
        kb.check_peer(peer.get("kb"))
    except KbMismatch as exc:
        raise HandshakeError(str(exc)) from None
    if peer_public is not None and peer.get("id") != peer_public.hex():
        raise HandshakeError("hello: peer identity is not the pinned key")


def _signed(role: str, transcript: bytes) -> bytes:
    return b"semguard-runtime-hs|" + role.encode() + b"|" + transcript


def derive_master(secret: bytes, label: bytes, transcript: bytes) -> bytes:
    """The 32-byte session master: HKDF-SHA256(secret, info = "semguard-runtime-master|" [label "|"] transcript)."""
    info = b"semguard-runtime-master|" + (label + b"|" if label else b"") + transcript
    return hkdf(secret, info, 32)


def sign_transcript(identity: Ed25519PrivateKey | None, role: str, transcript: bytes) -> bytes:
    """``role``'s Ed25519 signature over the transcript (empty without an identity)."""
    return sign(identity, _signed(role, transcript)) if identity is not None else b""


def verify_transcript(peer_public: bytes | None, peer_role: str, transcript: bytes, signature: bytes) -> None:
    """Check the peer's transcript signature when a peer key is pinned (else accept: unauthenticated)."""
    if peer_public is None:
        return
    try:
        verify_signature(peer_public, _signed(peer_role, transcript), signature, what=f"handshake ({peer_role})")
    except SignatureError as exc:
        raise HandshakeError(f"peer authentication failed: {exc}") from None


def _canon(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _x_pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Handshake:
    """One side of the set-up.

    Args:
        role: "tx" or "rx".
        kb: this side's knowledge-base view.
        identity: this side's Ed25519 private key (None: unauthenticated).
        peer_public: the pinned 32-byte Ed25519 public key of the peer (None: accept anyone).
    """

    def __init__(self, role: str, kb: KbView, *, identity: Ed25519PrivateKey | None = None,
                 peer_public: bytes | None = None) -> None:
        if role not in _ROLES:
            raise ValueError(f"role must be one of {_ROLES}, got {role!r}")
        if peer_public is not None and len(peer_public) != 32:
            raise ValueError(f"peer_public must be a 32-byte Ed25519 key, got {len(peer_public)} bytes")
        self.role, self.kb = role, kb
        self._identity, self._peer_public = identity, peer_public
        self._eph = X25519PrivateKey.generate()
        self._hello = {"role": role, "eph": _x_pub(self._eph).hex(), "nonce": os.urandom(16).hex(),
                       "kb": kb.to_dict(), "id": public_bytes(identity).hex() if identity else None}
        self._transcript: bytes | None = None
        self._shared: bytes | None = None

    def __repr__(self) -> str:
        return f"Handshake(role={self.role}, authenticated={self._peer_public is not None})"

    def hello(self) -> bytes:
        return _canon(self._hello)

    def receive_hello(self, raw: bytes) -> None:
        try:
            peer = json.loads(raw)
            if not isinstance(peer, dict):
                raise TypeError("not an object")
            eph = bytes.fromhex(peer["eph"])
        except (ValueError, KeyError, TypeError) as exc:
            raise HandshakeError(f"hello: malformed ({type(exc).__name__})") from None
        check_hello(peer, self.role, self.kb, self._peer_public)
        try:
            self._shared = self._eph.exchange(X25519PublicKey.from_public_bytes(eph))
        except ValueError as exc:
            raise HandshakeError(f"hello: bad ephemeral key ({exc})") from None
        tx, rx = (self._hello, peer) if self.role == "tx" else (peer, self._hello)
        self._transcript = hashlib.sha256(_canon(tx) + _canon(rx)).digest()

    def signature(self) -> bytes:
        """This side's signature over the transcript (empty when unauthenticated)."""
        if self._transcript is None:
            raise HandshakeError("signature before the peer's hello")
        return sign_transcript(self._identity, self.role, self._transcript)

    def complete(self, peer_signature: bytes) -> bytes:
        """Check the peer's signature (if a peer key is pinned) and return the 32-byte master."""
        peer_role = "rx" if self.role == "tx" else "tx"
        if self._transcript is None:
            raise HandshakeError("complete before the peer's hello")
        verify_transcript(self._peer_public, peer_role, self._transcript, peer_signature)
        assert self._shared is not None and self._transcript is not None
        return derive_master(self._shared, b"", self._transcript)


class X25519Initiator:
    """The rx side of :class:`Handshake` as messages: :meth:`first`, then :meth:`handle` each reply."""

    def __init__(self, kb: KbView, *, identity: Ed25519PrivateKey | None = None, peer_public: bytes | None = None) -> None:
        self.hs = Handshake("rx", kb, identity=identity, peer_public=peer_public)
        self.master: bytes | None = None
        self.info: dict[str, Any] = {"key_source": "x25519"}

    def first(self) -> dict[str, Any]:
        return {"m": "hello", "key_source": "x25519", "hello": self.hs.hello().hex()}

    def handle(self, reply: dict[str, Any]) -> dict[str, Any] | None:
        if reply.get("m") == "error":
            raise HandshakeError(f"transmitter refused: {reply.get('e')}")
        try:
            if reply.get("m") == "hello" and self.hs._shared is None:
                self.hs.receive_hello(bytes.fromhex(reply["hello"]))
                return {"m": "sig", "sig": self.hs.signature().hex()}
            if reply.get("m") == "sig" and self.hs._shared is not None:
                self.master = self.hs.complete(bytes.fromhex(reply["sig"]))
                return None
        except (KeyError, TypeError, ValueError) as exc:
            raise HandshakeError(f"x25519: malformed reply ({type(exc).__name__})") from None
        raise HandshakeError(f"x25519: unexpected reply {reply.get('m')!r}")


class X25519Responder:
    """The tx side of :class:`Handshake` as messages: :meth:`handle` answers each request."""

    def __init__(self, kb: KbView, *, identity: Ed25519PrivateKey | None = None, peer_public: bytes | None = None) -> None:
        self.hs = Handshake("tx", kb, identity=identity, peer_public=peer_public)
        self.master: bytes | None = None
        self.info: dict[str, Any] = {"key_source": "x25519"}

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            if msg.get("m") == "hello" and self.hs._shared is None:
                self.hs.receive_hello(bytes.fromhex(msg["hello"]))
                return {"m": "hello", "hello": self.hs.hello().hex()}
            if msg.get("m") == "sig" and self.hs._shared is not None:
                self.master = self.hs.complete(bytes.fromhex(msg["sig"]))
                return {"m": "sig", "sig": self.hs.signature().hex()}
        except (KeyError, TypeError, ValueError) as exc:
            raise HandshakeError(f"x25519: malformed message ({type(exc).__name__})") from None
        raise HandshakeError(f"x25519: unexpected message {msg.get('m')!r}")


class MitmRelay:
    """Mallory in the path: she answers each side with her own ephemeral key (and, if she has one,
    her own identity), relaying the rest.  She ends with one master per side when that side does
    not authenticate her."""

    def __init__(self, kb: KbView, identity: Ed25519PrivateKey | None = None) -> None:
        self.to_tx = Handshake("rx", kb, identity=identity)  # Mallory posing as rx towards tx
        self.to_rx = Handshake("tx", kb, identity=identity)  # Mallory posing as tx towards rx

    def run(self, tx: Handshake, rx: Handshake) -> tuple[bytes, bytes, bytes, bytes]:
        """Run both sessions through Mallory: (tx master, rx master, Mallory's tx-side, rx-side)."""
        rx.receive_hello(self.to_rx.hello())
        self.to_rx.receive_hello(rx.hello())
        tx.receive_hello(self.to_tx.hello())
        self.to_tx.receive_hello(tx.hello())
        m_rx = self.to_rx.complete(rx.signature())
        rx_master = rx.complete(self.to_rx.signature())
        m_tx = self.to_tx.complete(tx.signature())
        tx_master = tx.complete(self.to_tx.signature())
        return tx_master, rx_master, m_tx, m_rx


def run_direct(tx: Handshake, rx: Handshake) -> tuple[bytes, bytes]:
    """Both sides in one process, no one in the path: (tx master, rx master)."""
    tx.receive_hello(rx.hello())
    rx.receive_hello(tx.hello())
    sig_rx, sig_tx = rx.signature(), tx.signature()
    return tx.complete(sig_rx), rx.complete(sig_tx)
