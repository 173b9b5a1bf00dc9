"""Authenticated principals: requests signed with a member's Ed25519 key.

A principal is a name in the signed membership (``_members``, or ``owner`` for the owner key)
plus the private key whose public half is listed there.  Every request to read, publish, grant
or read the audit log is a :class:`SignedRequest` over ``(kb_id, subject, action, object,
purpose, env, nonce, timestamp)``; :func:`authenticate` checks it against the membership of the
verified head, the clock skew and the knowledge-base identity.  Replays are refused by the audit
log, which stores each nonce once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge.keys import key_id, public_bytes, sign, verify_signature
from semguard.knowledge.records import AccessDenied, SignatureError
from semguard.knowledge.reserved import Governance

__all__ = ["AuthenticationError", "Principal", "SignedRequest", "authenticate", "MAX_SKEW_S"]

#: accepted difference between a request's timestamp and the verifier's clock (seconds)
MAX_SKEW_S = 300.0


class AuthenticationError(AccessDenied):
    """A request is not signed by the member key of the principal it names (or is stale/replayed)."""


@dataclass(frozen=True)
class SignedRequest:
    """One request by principal ``subject``; ``signature`` is Ed25519 over :meth:`signing_bytes`."""

    kb_id: str
    subject: str
    action: str
    obj: str
    purpose: str
    env: Mapping[str, Any] = field(default_factory=dict)
    nonce: str = ""
    timestamp: float = 0.0
    signature: bytes = field(default=b"", repr=False)

    def signing_bytes(self) -> bytes:
        body = {"kb_id": self.kb_id, "subject": self.subject, "action": self.action, "obj": self.obj,
                "purpose": self.purpose, "env": dict(self.env), "nonce": self.nonce, "timestamp": self.timestamp}
        return b"semguard-request|" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Principal:
    """A member name with its private key (the key never leaves this object)."""

    name: str
    key: Ed25519PrivateKey = field(repr=False)

    @property
    def public(self) -> bytes:
        return public_bytes(self.key)

    def request(self, kb_id: str, action: str, obj: str, purpose: str,
                env: Mapping[str, Any] | None = None) -> SignedRequest:
        """A fresh signed request (random 128-bit nonce, current time)."""
        req = SignedRequest(kb_id, self.name, action, obj, purpose, dict(env or {}), os.urandom(16).hex(), time.time())
        return SignedRequest(**{**req.__dict__, "signature": sign(self.key, req.signing_bytes())})


def authenticate(req: SignedRequest, gov: Governance, kb_id: str, *, now: float | None = None,
                 max_skew_s: float = MAX_SKEW_S) -> bytes:
    """Return the principal's public key, or raise :class:`AuthenticationError`."""
    if req.kb_id != kb_id:
        raise AuthenticationError(f"request is for knowledge base {req.kb_id}, not {kb_id}")
    key = gov.member_key(req.subject)
    if key is None:
        raise AuthenticationError(f"{req.subject!r} is not a member of knowledge base {kb_id} "
                                  "(add it with `semguard kb member` as the owner)")
    now = time.time() if now is None else now
    if not isinstance(req.timestamp, int | float) or abs(now - req.timestamp) > max_skew_s:
        raise AuthenticationError(f"request by {req.subject!r} is stale or from the future "
                                  f"(more than {max_skew_s:.0f} s off the verifier's clock)")
    if not isinstance(req.nonce, str) or len(req.nonce) < 16:
        raise AuthenticationError(f"request by {req.subject!r} lacks a nonce of at least 16 hex characters")
    try:
        verify_signature(key, req.signing_bytes(), req.signature, what=f"request by {req.subject!r}")
    except SignatureError as exc:
        raise AuthenticationError(f"request claims principal {req.subject!r} but is not signed by its key "
                                  f"{key_id(key)}") from exc
    return key
