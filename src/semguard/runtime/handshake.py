"""Link set-up: knowledge sync check, ephemeral X25519 key agreement, Ed25519 authentication.

Two messages each way (SIGMA-style, cf. Krawczyk, CRYPTO 2003)::

    rx -> tx  hello_rx = {role, eph (X25519 public), nonce, kb: {id, version, root}, id (Ed25519 public)}
    tx -> rx  hello_tx
    rx -> tx  sig_rx = Ed25519(rx identity, "semguard-runtime-hs|rx|" + transcript)
    tx -> rx  sig_tx = Ed25519(tx identity, "semguard-runtime-hs|tx|" + transcript)

``transcript = SHA-256(hello_tx || hello_rx)``; the session master is
``HKDF(X25519(eph_a, eph_b), info=transcript)``.  Both sides refuse a peer whose knowledge base
(id, version, Merkle root) differs from theirs.  Without identities (``identity=None`` and
``peer_public=None``) the exchange is plain Diffie-Hellman and a man in the middle who swaps the
ephemeral keys shares one master with each side (see :class:`MitmRelay`); with a pinned peer key the
swapped transcript's signature does not verify and :class:`HandshakeError` is raised.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from semguard.keys.kdf import hkdf
from semguard.knowledge.keys import public_bytes, sign, verify_signature
from semguard.knowledge.records import SignatureError

__all__ = ["HandshakeError", "KbView", "Handshake", "MitmRelay"]

_ROLES = ("tx", "rx")


class HandshakeError(RuntimeError):
    """Link set-up failed (knowledge mismatch, bad signature, malformed message)."""


@dataclass(frozen=True)
class KbView:
    """What the two ends must agree on about the shared knowledge base."""

    kb_id: str
    version: int
    root: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.kb_id, "version": self.version, "root": self.root}


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
            eph = bytes.fromhex(peer["eph"])
            kb = peer["kb"]
            role = peer["role"]
        except (ValueError, KeyError, TypeError) as exc:
            raise HandshakeError(f"hello: malformed ({type(exc).__name__})") from None
        if role == self.role or role not in _ROLES:
            raise HandshakeError(f"hello: peer role {role!r} does not complement {self.role!r}")
        if kb != self.kb.to_dict():
            raise HandshakeError(f"knowledge base mismatch: ours {self.kb.to_dict()}, peer's {kb}")
        if self._peer_public is not None and peer.get("id") != self._peer_public.hex():
            raise HandshakeError("hello: peer identity is not the pinned key")
        try:
            self._shared = self._eph.exchange(X25519PublicKey.from_public_bytes(eph))
        except ValueError as exc:
            raise HandshakeError(f"hello: bad ephemeral key ({exc})") from None
        tx, rx = (self._hello, peer) if self.role == "tx" else (peer, self._hello)
        self._transcript = hashlib.sha256(_canon(tx) + _canon(rx)).digest()

    def _signed_bytes(self, role: str) -> bytes:
        if self._transcript is None:
            raise HandshakeError("signature before the peer's hello")
        return b"semguard-runtime-hs|" + role.encode() + b"|" + self._transcript

    def signature(self) -> bytes:
        """This side's signature over the transcript (empty when unauthenticated)."""
        return sign(self._identity, self._signed_bytes(self.role)) if self._identity else b""

    def complete(self, peer_signature: bytes) -> bytes:
        """Check the peer's signature (if a peer key is pinned) and return the 32-byte master."""
        peer_role = "rx" if self.role == "tx" else "tx"
        if self._peer_public is not None:
            try:
                verify_signature(self._peer_public, self._signed_bytes(peer_role), peer_signature,
                                 what=f"handshake ({peer_role})")
            except SignatureError as exc:
                raise HandshakeError(f"peer authentication failed: {exc}") from None
        assert self._shared is not None and self._transcript is not None
        return hkdf(self._shared, b"semguard-runtime-master|" + self._transcript, 32)


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
