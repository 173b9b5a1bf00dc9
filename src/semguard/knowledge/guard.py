"""Access-controlled, audited operations over a :class:`KnowledgeBase`.

Every call asks the :class:`AccessPolicy` first, writes the decision to the hash-chained audit
log (allowed or not), and raises :class:`AccessDenied` on deny.  Restricted entries are stored
as per-role envelopes (:mod:`semguard.knowledge.crypto`); reading one also needs the role key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge.access import AccessPolicy, Decision
from semguard.knowledge.audit import AuditRow, append_audit, read_audit, verify_audit
from semguard.knowledge.crypto import decrypt_entry, encrypt_entry, envelope_roles, is_encrypted
from semguard.knowledge.records import AccessDenied, VersionRecord
from semguard.knowledge.store import Gate, KnowledgeBase

__all__ = ["Guard"]


class Guard:
    """Policy-enforcing facade: ``read``, ``publish``, ``grant``, ``audit``.

    Args:
        kb: the verified store; policies and the audit log live in the same SQLite file.
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.policy = AccessPolicy(kb.conn)

    def check(self, subject: str, action: str, obj: str, purpose: str,
              env: Mapping[str, Any] | None = None) -> Decision:
        """Decide, audit, and raise :class:`AccessDenied` unless allowed."""
        d = self.policy.decide(subject, obj, action, purpose, env)
        append_audit(self.kb.conn, d)
        if not d.allowed:
            raise AccessDenied(f"{subject!r} may not {action} {obj!r} for purpose {purpose!r} (deny by default)")
        return d

    def read(self, subject: str, name: str, *, purpose: str, env: Mapping[str, Any] | None = None,
             version: int | None = None, role_keys: Mapping[str, bytes] | None = None) -> bytes:
        """Verified bytes of ``name``; envelopes are opened with one of the subject's role keys."""
        self.check(subject, "read", name, purpose, env)
        blob = self.kb.get(name, version)
        if not is_encrypted(blob):
            return blob
        held = set(self.policy.roles(subject)) & set(envelope_roles(name, blob)) & set(role_keys or {})
        if not held:
            raise AccessDenied(f"entry {name!r} is restricted; {subject!r} holds no key of its roles")
        role = sorted(held)[0]
        return decrypt_entry(name, blob, role, role_keys[role])

    def publish(self, subject: str, key: Ed25519PrivateKey, put: Mapping[str, bytes] | None = None,
                delete: Iterable[str] = (), *, purpose: str, env: Mapping[str, Any] | None = None,
                restricted: Mapping[str, Mapping[str, bytes]] | None = None,
                gate: Gate | None = None, note: str = "") -> VersionRecord:
        """Publish after a ``publish`` decision for every touched entry.

        ``restricted`` maps entry name -> {role: role key}; those entries are encrypted first.
        """
        put = dict(put or {})
        delete = list(delete)
        for name in [*put, *delete]:
            self.check(subject, "publish", name, purpose, env)
        for name, keys in (restricted or {}).items():
            if name not in put:
                raise KeyError(f"restricted entry {name!r} is not among the entries being published")
            put[name] = encrypt_entry(name, put[name], keys)
        return self.kb.publish(key, put, delete, note=note, gate=gate)

    def grant(self, subject: str, user: str, role: str, *, purpose: str,
              env: Mapping[str, Any] | None = None) -> None:
        """Give ``user`` the role ``role`` (needs ``grant`` on object ``role:<role>``)."""
        self.check(subject, "grant", f"role:{role}", purpose, env)
        self.policy.assign(user, role)

    def audit(self, subject: str, *, purpose: str, env: Mapping[str, Any] | None = None) -> list[AuditRow]:
        """The verified audit log (needs ``read_audit`` on object ``audit``)."""
        self.check(subject, "read_audit", "audit", purpose, env)
        verify_audit(self.kb.conn)
        return read_audit(self.kb.conn)
