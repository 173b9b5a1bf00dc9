"""Authenticated, access-controlled, audited operations over a :class:`KnowledgeBase`.

Every request is a :class:`SignedRequest` by a principal of the signed membership; the Guard
authenticates it, asks the :class:`AccessPolicy` of the verified head, writes the decision (with
the rule that decided it) to the signed audit chain, and raises :class:`AccessDenied` on deny.
Changes to policy, grants and membership are publishes that carry the audit head (``_audit``).
Restricted entries are per-role envelopes (:mod:`semguard.knowledge.crypto`); reading one also
needs the role key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge.access import AccessPolicy, Decision, assign, policy_blob
from semguard.knowledge.audit import AuditRow, append_audit, audit_head, read_audit, verify_audit
from semguard.knowledge.crypto import decrypt_entry, encrypt_entry, envelope_roles, is_encrypted
from semguard.knowledge.keys import public_bytes
from semguard.knowledge.principals import Principal, SignedRequest, authenticate
from semguard.knowledge.records import AccessDenied, KnowledgeError, VersionRecord
from semguard.knowledge.reserved import AUDIT, MEMBERS, NAME_RE, OWNER, POLICY, PUBLISHERS, RESERVED, encode
from semguard.knowledge.store import Gate, KnowledgeBase

__all__ = ["Guard"]


class Guard:
    """Policy-enforcing facade: ``authorize``, ``read``, ``publish``, ``grant``, ``set_policy``,
    ``add_member``, ``audit``, ``verify_audit``.

    Args:
        kb: the verified store; the audit log lives in the same SQLite file.
        operator: key that signs audit rows (the owner or a member key).  When None, rows are
            signed by the requesting principal's key (the principal must then be local, as in the CLI).
        attributes: ABAC attributes the Guard itself vouches for (e.g. ``{"hour": 14}`` or a
            function of the request returning them, such as a clearance looked up by subject).
            They override the request's own ``env``, which is only the requester's signed claim.
    """

    def __init__(self, kb: KnowledgeBase, operator: Ed25519PrivateKey | None = None, *,
                 attributes: Mapping[str, Any] | Callable[[SignedRequest], Mapping[str, Any]] | None = None) -> None:
        self.kb = kb
        self.operator = operator
        self.attributes = attributes
        self._policy: tuple[int, AccessPolicy] | None = None

    @property
    def policy(self) -> AccessPolicy:
        """The access policy of the verified head (read from its signed ``_policy`` entry)."""
        self.kb.refresh()
        if self._policy is None or self._policy[0] != self.kb.version:
            self._policy = (self.kb.version, AccessPolicy(self.kb.governance().policy))
        return self._policy[1]

    def _operator(self, principal: Principal | None) -> Ed25519PrivateKey:
        op = self.operator or (principal.key if principal is not None else None)
        if op is None:
            raise KnowledgeError("this Guard has no operator key to sign its audit log; pass operator=")
        gov = self.kb.governance()
        if gov.member_name(public_bytes(op)) is None:
            raise AccessDenied("the operator key is neither the owner nor a member; it may not write the audit log")
        return op

    def authorize(self, req: SignedRequest, *, principal: Principal | None = None,
                  owner_rights: bool = False) -> Decision:
        """Authenticate ``req``, decide, audit, and raise :class:`AccessDenied` unless allowed.

        ``owner_rights``: the owner may do this regardless of policy (grants, policy, membership);
        the decision is still audited, with rule ``("owner",)``.
        """
        op = self._operator(principal)
        authenticate(req, self.kb.governance(), self.kb.kb_id)
        if owner_rights and req.subject == OWNER:
            d = Decision(req.subject, req.obj, req.action, req.purpose, True, ("owner",))
        else:
            trusted = self.attributes(req) if callable(self.attributes) else (self.attributes or {})
            d = self.policy.decide(req.subject, req.obj, req.action, req.purpose, {**req.env, **trusted})
        append_audit(self.kb.conn, d, op, nonce=req.nonce, version=self.kb.version)
        if not d.allowed:
            raise AccessDenied(f"{req.subject!r} may not {req.action} {req.obj!r} for purpose {req.purpose!r} "
                               f"(rule: {', '.join(d.rule)})")
        return d

    def _publish(self, key: Ed25519PrivateKey, principal: Principal | None, put: dict[str, bytes],
                 delete: Iterable[str] = (), note: str = "", gate: Gate | None = None) -> VersionRecord:
        self._operator(principal)
        seq, head = audit_head(self.kb.conn)
        put[AUDIT] = encode({"seq": seq, "head": head.hex()})
        return self.kb.publish(key, put, delete, note=note, gate=gate)

    def read(self, req: SignedRequest, *, version: int | None = None,
             role_keys: Mapping[str, bytes] | None = None) -> bytes:
        """Verified bytes of ``req.obj`` (a ``read`` request); envelopes open with a held role's key."""
        if req.action != "read":
            raise ValueError(f"read needs a 'read' request, got {req.action!r}")
        self.authorize(req)
        name = req.obj
        blob = self.kb.get(name, version)
        if not is_encrypted(blob):
            return blob
        held = set(self.policy.roles(req.subject)) & set(envelope_roles(name, blob)) & set(role_keys or {})
        if not held:
            raise AccessDenied(f"entry {name!r} is restricted; {req.subject!r} holds no key of its roles")
        role = sorted(held)[0]
        return decrypt_entry(name, blob, role, role_keys[role])

    def publish(self, principal: Principal, put: Mapping[str, bytes] | None = None, delete: Iterable[str] = (),
                *, purpose: str, env: Mapping[str, Any] | None = None,
                restricted: Mapping[str, Mapping[str, bytes]] | None = None,
                gate: Gate | None = None, note: str = "") -> VersionRecord:
        """Publish after an authenticated ``publish`` decision for every touched entry; the version
        is signed by ``principal.key`` (which must be a publisher).

        ``restricted`` maps entry name -> {role: role key}; those entries are encrypted first.
        """
        put, delete = dict(put or {}), list(delete)
        for name in [*put, *delete]:
            if name in RESERVED:
                raise ValueError(f"entry {name!r} is reserved; use set_policy / grant / add_member")
            self.authorize(principal.request(self.kb.kb_id, "publish", name, purpose, env), principal=principal)
        for name, keys in (restricted or {}).items():
            if name not in put:
                raise KeyError(f"restricted entry {name!r} is not among the entries being published")
            put[name] = encrypt_entry(name, put[name], keys)
        return self._publish(principal.key, principal, put, delete, note=note, gate=gate)

    def grant(self, principal: Principal, user: str, role: str, *, purpose: str,
              env: Mapping[str, Any] | None = None) -> VersionRecord:
        """Give member ``user`` the role ``role`` (``grant`` on ``role:<role>``; the owner always may).

        Refuses an unknown role (no policy line gives it rules) and a user who is not a member.
        The new policy is a version signed by ``principal.key`` (owner or a delegated publisher).
        """
        pol, gov = self.policy, self.kb.governance()
        if role not in pol.known_roles():
            raise ValueError(f"unknown role {role!r}: no policy line gives it rules "
                             f"(known: {sorted(pol.known_roles()) or 'none'})")
        if gov.member_key(user) is None or user == OWNER:
            raise ValueError(f"{user!r} is not a member; the owner adds members first")
        self.authorize(principal.request(self.kb.kb_id, "grant", f"role:{role}", purpose, env),
                       principal=principal, owner_rights=True)
        lines = [*pol.lines, assign(user, role)]
        return self._publish(principal.key, principal, {POLICY: policy_blob(lines)},
                             note=f"grant:{purpose} role {role} to {user} by {principal.name}")

    def set_policy(self, owner: Principal, lines: Iterable[Iterable[str]], *, note: str = "policy") -> VersionRecord:
        """Replace the whole policy (owner only; audited as a ``grant`` on object ``policy``)."""
        blob = policy_blob(lines)
        self.authorize(owner.request(self.kb.kb_id, "grant", "policy", "administration"),
                       principal=owner, owner_rights=True)
        if owner.name != OWNER:
            raise AccessDenied("only the owner may replace the policy")
        return self._publish(owner.key, owner, {POLICY: blob}, note=note)

    def add_member(self, owner: Principal, name: str, public_key: bytes, *, publisher: bool = False,
                   remove: bool = False) -> VersionRecord:
        """Add (or with ``remove`` drop) principal ``name`` with raw Ed25519 ``public_key`` (owner only);
        ``publisher`` also lists the key in ``_publishers`` (delegation depth 1)."""
        if not NAME_RE.fullmatch(name) or name == OWNER:
            raise ValueError(f"member name {name!r} must match {NAME_RE.pattern} and not be {OWNER!r}")
        self.authorize(owner.request(self.kb.kb_id, "grant", f"member:{name}", "administration"),
                       principal=owner, owner_rights=True)
        if owner.name != OWNER:
            raise AccessDenied("only the owner may change the membership")
        gov = self.kb.governance()
        members = {n: k.hex() for n, k in gov.members.items()}
        pubs = {k.hex() for k in gov.publishers}
        old = members.pop(name, None)
        pubs.discard(old)
        if not remove:
            members[name] = bytes(public_key).hex()
            if publisher:
                pubs.add(bytes(public_key).hex())
        put = {MEMBERS: json.dumps(members, sort_keys=True).encode()}
        if pubs != {k.hex() for k in gov.publishers}:
            put[PUBLISHERS] = json.dumps(sorted(pubs)).encode()
        return self._publish(owner.key, owner, put, note=f"{'remove' if remove else 'add'} member {name}")

    def checkpoint(self, principal: Principal) -> VersionRecord:
        """Bind the current audit head into a new version (signed by ``principal.key``, a publisher),
        so rows written since the last publish can no longer be dropped unnoticed."""
        self._operator(principal)
        if principal.name != OWNER and public_bytes(principal.key) not in self.kb.governance().publishers:
            raise AccessDenied(f"{principal.name!r} is not a publisher; it cannot sign a checkpoint")
        return self._publish(principal.key, principal, {}, note="audit checkpoint")

    def verify_audit(self) -> int:
        """Check the audit chain: signatures by owner/member keys and every head bound in a version."""
        self.kb.refresh()
        operators, bound = {self.kb.owner}, []
        for v in range(1, self.kb.version + 1):
            g = self.kb.governance(v)
            operators |= set(g.members.values())
            if g.audit is not None and (v == 1 or self.kb.governance(v - 1).audit != g.audit):
                bound.append((v, *g.audit))
        return verify_audit(self.kb.conn, operators, bound)

    def audit(self, req: SignedRequest, *, principal: Principal | None = None) -> list[AuditRow]:
        """The verified audit log (needs ``read_audit`` on object ``audit``; ``principal``: a local
        requester whose key signs the audit row when the Guard has no operator key)."""
        self.authorize(req, principal=principal)
        self.verify_audit()
        return read_audit(self.kb.conn)
