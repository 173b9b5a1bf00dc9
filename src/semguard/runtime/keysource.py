"""Where the session master comes from: ``plkg`` (physical-layer key generation over the emulator's
reciprocal probes, :mod:`semguard.runtime.plkg`) or ``x25519`` (ephemeral Diffie-Hellman,
:mod:`semguard.runtime.handshake`).  Both authenticate the transcript with the Ed25519 identities
when a peer key is pinned, and both check the peer's knowledge base.  ``plkg`` imports the keys
package (and torch) only when chosen."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.runtime.handshake import HandshakeError, KbView, X25519Initiator, X25519Responder

__all__ = ["KEY_SOURCES", "initiator", "responder"]

KEY_SOURCES = ("plkg", "x25519")


def _check(source: str) -> None:
    if source not in KEY_SOURCES:
        raise ValueError(f"key_source must be one of {KEY_SOURCES}, got {source!r}")


def initiator(source: str, kb: KbView, *, identity: Ed25519PrivateKey | None, peer_public: bytes | None,
              plkg: Any = None) -> Any:
    """The receiver's side (``first()``, ``handle(reply)``, ``master``, ``info``)."""
    _check(source)
    if source == "x25519":
        return X25519Initiator(kb, identity=identity, peer_public=peer_public)
    from semguard.runtime.plkg import PlkgInitiator
    return PlkgInitiator(kb, plkg, identity=identity, peer_public=peer_public)


def responder(source: str, kb: KbView, hello: dict[str, Any], *, identity: Ed25519PrivateKey | None,
              peer_public: bytes | None, plkg: Any = None) -> Any:
    """The transmitter's side for a new ``hello`` (refused when it asks for another key source)."""
    _check(source)
    asked = hello.get("key_source", "x25519")
    if asked != source:
        raise HandshakeError(f"key source: the receiver asks for {asked!r}, this transmitter runs {source!r}")
    if source == "x25519":
        return X25519Responder(kb, identity=identity, peer_public=peer_public)
    from semguard.runtime.plkg import PlkgResponder
    return PlkgResponder(kb, plkg, identity=identity, peer_public=peer_public)
