"""Authenticated public discussion for key agreement.

Every public message of a session (the KDR sample, Cascade parities, BCH syndromes, the Toeplitz
seed, confirmation tags) goes through :meth:`PublicChannel.send`, which tags it with
HMAC-SHA256 (RFC 2104) under a pre-shared identity key over
``"semguard-pd" || session id || counter || kind || payload`` and checks the tag on receipt.  An
active attacker (``tamper``) who rewrites a message is then detected at the first rewritten
message (:class:`AuthenticationError`), instead of only being out-voted later by key
confirmation.  The counter stops replay and reordering within a session; the session id
(public, random) stops replay across sessions.

Without an identity key the channel is unauthenticated and ``tamper`` acts unseen.  The
transcript (what a passive Eve hears) is kept for her replay.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["AuthenticationError", "Message", "PublicChannel", "identity_key_from_secret"]


class AuthenticationError(RuntimeError):
    """A public message's MAC did not verify: it was changed in transit."""


@dataclass(frozen=True)
class Message:
    """One public message: ``payload`` is uint8 (bits or bytes), ``tag`` its MAC (None: unauthenticated)."""

    counter: int
    kind: str
    payload: np.ndarray
    tag: bytes | None


def identity_key_from_secret(secret: bytes, alice: str = "alice", bob: str = "bob") -> bytes:
    """A 32-byte pair identity key derived from a pre-shared or knowledge-base secret and the two
    identities (HMAC-SHA256 as a KDF, so one secret gives different keys per pair)."""
    if len(secret) < 16:
        raise ValueError(f"identity secret must have at least 16 bytes, got {len(secret)}")
    pair = "|".join(sorted((alice, bob))).encode()
    return hmac.new(secret, b"semguard-identity|" + pair, hashlib.sha256).digest()


class PublicChannel:
    """The public discussion channel of one session.

    Args:
        identity_key: pre-shared MAC key (>= 16 bytes) or None (unauthenticated).
        session_id: public per-session random bytes.
        tamper: an active attacker, ``Message -> Message``, applied between sender and receiver.
    """

    def __init__(self, identity_key: bytes | None, session_id: bytes,
                 tamper: Callable[[Message], Message] | None = None) -> None:
        if identity_key is not None and len(identity_key) < 16:
            raise ValueError(f"identity key must have at least 16 bytes, got {len(identity_key)}")
        self._key = identity_key
        self.session_id = bytes(session_id)
        self.tamper = tamper
        self.transcript: list[Message] = []

    def __repr__(self) -> str:
        return f"PublicChannel(authenticated={self.authenticated}, messages={len(self.transcript)})"

    @property
    def authenticated(self) -> bool:
        return self._key is not None

    def _tag(self, counter: int, kind: str, payload: np.ndarray) -> bytes | None:
        if self._key is None:
            return None
        head = b"semguard-pd|" + self.session_id + counter.to_bytes(8, "big") + kind.encode() + b"|"
        return hmac.new(self._key, head + payload.tobytes(), hashlib.sha256).digest()

    def send(self, kind: str, payload: np.ndarray | bytes) -> np.ndarray:
        """Send ``payload`` (uint8 array or bytes); returns what the receiver accepts.

        Raises:
            AuthenticationError: the received message's MAC does not verify.
        """
        data = np.frombuffer(payload, dtype=np.uint8).copy() if isinstance(payload, bytes) \
            else np.ascontiguousarray(payload, dtype=np.uint8)
        counter = len(self.transcript)
        msg = Message(counter=counter, kind=kind, payload=data, tag=self._tag(counter, kind, data))
        got = self.tamper(msg) if self.tamper is not None else msg
        self.transcript.append(got)
        if self._key is not None:
            want = self._tag(counter, kind, np.ascontiguousarray(got.payload, dtype=np.uint8))
            if got.tag is None or got.counter != counter or got.kind != kind \
                    or not hmac.compare_digest(want, got.tag):
                raise AuthenticationError(f"public message #{counter} ({kind}) failed its MAC: changed in transit")
        return np.ascontiguousarray(got.payload, dtype=np.uint8)
