"""Reserved entries: publishers, members, access policy and audit head, as signed entries of a version.

Governance lives in the version history like any other entry, so the Merkle root and the version
signature cover it and ``verify`` checks it.  Four reserved names, each with a strict JSON schema:

* ``_publishers``: list of distinct hex Ed25519 public keys (64 hex each, valid curve points, not
  the owner) allowed to sign the next version besides the owner.
* ``_members``: object ``{name: hex Ed25519 public key}``; the principals that may send signed
  requests (names ``[a-z0-9][a-z0-9_.-]*``, at most 64 characters; ``owner`` is reserved for the
  owner key and cannot be listed).
* ``_policy``: list of policy lines (see :mod:`semguard.knowledge.access`).
* ``_audit``: ``{"seq": n, "head": hex}`` — the audit-chain head bound into this version.

Who may change them (delegation depth 1): ``_publishers`` and ``_members`` only the owner;
``_policy`` the owner, or a publisher whose change only adds role assignments it is itself
allowed to ``grant`` under the previous version's policy (the purpose is named in the note as
``grant:<purpose>``; the replayed decision uses no request attributes).  A malformed record is
refused at publish and reported by ``verify``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from semguard.knowledge.access import AccessPolicy, parse_policy
from semguard.knowledge.records import IntegrityError, UnauthorizedError
from semguard.knowledge.verify import check_blob

__all__ = ["PUBLISHERS", "MEMBERS", "POLICY", "AUDIT", "RESERVED", "OWNER", "NAME_RE", "Governance",
           "parse_publishers", "parse_members", "parse_audit_head", "governance_of", "check_change",
           "encode", "on_curve"]

PUBLISHERS, MEMBERS, POLICY, AUDIT = "_publishers", "_members", "_policy", "_audit"
RESERVED = (PUBLISHERS, MEMBERS, POLICY, AUDIT)
OWNER = "owner"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


_P = 2 ** 255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P


def _add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p1, p2
    t = _D * x1 * x2 * y1 * y2 % _P
    return ((x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P) % _P, (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P)


def on_curve(raw: bytes) -> bool:
    """True if ``raw`` (32 bytes) encodes a point of edwards25519 outside the small-order subgroup
    (RFC 8032 §5.1.3 decoding, then ``[8]P`` is not the identity).

    ``cryptography`` accepts any 32 bytes as a public key, so the schema checks the encoding itself.
    """
    if len(raw) != 32:
        return False
    n = int.from_bytes(raw, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= _P:
        return False
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if x * x % _P != x2:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
    if x * x % _P != x2 or (x == 0 and sign):
        return False
    pt = (_P - x if x & 1 != sign else x, y)
    for _ in range(3):
        pt = _add(pt, pt)
    return pt != (0, 1)


def _pubkey(what: str, text: object) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError(f"{what}: expected 64 lower-case hex characters (an Ed25519 public key), got {text!r}")
    raw = bytes.fromhex(text)
    if not on_curve(raw):
        raise ValueError(f"{what}: {text[:16]}… is not a point of edwards25519 (not an Ed25519 public key)")
    return raw


def _json(name: str, blob: bytes) -> object:
    try:
        return json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"entry {name!r}: not valid JSON ({exc})") from exc


def parse_publishers(blob: bytes, owner: bytes) -> frozenset[bytes]:
    """Delegated publisher keys from a ``_publishers`` blob (ValueError naming what is wrong)."""
    data = _json(PUBLISHERS, blob)
    if not isinstance(data, list):
        raise ValueError(f"entry {PUBLISHERS!r}: expected a JSON list of hex Ed25519 keys, got {type(data).__name__}")
    keys = [_pubkey(f"entry {PUBLISHERS!r} item {i}", h) for i, h in enumerate(data)]
    if len(set(keys)) != len(keys):
        raise ValueError(f"entry {PUBLISHERS!r}: duplicate keys")
    if owner in keys:
        raise ValueError(f"entry {PUBLISHERS!r}: lists the owner key (the owner always publishes)")
    return frozenset(keys)


def parse_members(blob: bytes) -> dict[str, bytes]:
    """``{name: raw key}`` from a ``_members`` blob (ValueError naming what is wrong)."""
    data = _json(MEMBERS, blob)
    if not isinstance(data, dict):
        raise ValueError(f"entry {MEMBERS!r}: expected a JSON object {{name: hex key}}, got {type(data).__name__}")
    out = {}
    for name, h in data.items():
        if not NAME_RE.fullmatch(name) or name == OWNER:
            raise ValueError(f"entry {MEMBERS!r}: member name {name!r} must match {NAME_RE.pattern} "
                             f"and not be {OWNER!r}")
        out[name] = _pubkey(f"entry {MEMBERS!r} member {name!r}", h)
    if len(set(out.values())) != len(out):
        raise ValueError(f"entry {MEMBERS!r}: two members share one key")
    return out


def parse_audit_head(blob: bytes) -> tuple[int, bytes]:
    """``(seq, head hash)`` from an ``_audit`` blob."""
    data = _json(AUDIT, blob)
    if (not isinstance(data, dict) or set(data) != {"seq", "head"} or not isinstance(data["seq"], int)
            or data["seq"] < 0 or not isinstance(data["head"], str) or not re.fullmatch(r"[0-9a-f]{64}", data["head"])):
        raise ValueError(f"entry {AUDIT!r}: expected {{\"seq\": int >= 0, \"head\": 64 hex}}")
    return data["seq"], bytes.fromhex(data["head"])


def encode(obj: object) -> bytes:
    """Canonical JSON bytes of a reserved record."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Governance:
    """Parsed reserved entries of one version (empty before anything is set)."""

    owner: bytes
    publishers: frozenset[bytes] = frozenset()
    members: Mapping[str, bytes] = field(default_factory=dict)
    policy: tuple[tuple[str, ...], ...] = ()
    audit: tuple[int, bytes] | None = None

    @property
    def signers(self) -> set[bytes]:
        """Keys allowed to sign the next version."""
        return {self.owner, *self.publishers}

    def member_key(self, name: str) -> bytes | None:
        """Public key of principal ``name`` (``owner`` is the owner key)."""
        return self.owner if name == OWNER else self.members.get(name)

    def member_name(self, key: bytes) -> str | None:
        if key == self.owner:
            return OWNER
        return next((n for n, k in self.members.items() if k == key), None)


def governance_of(owner: bytes, manifest: Mapping[str, bytes], blob: Callable[[bytes], bytes | None],
                  version: int) -> Governance:
    """Parse the reserved entries of ``manifest`` (``blob`` fetches bytes by content hash).

    Raises :class:`IntegrityError` naming the version when a reserved entry is missing or malformed.
    """
    def load(name: str) -> bytes | None:
        if name not in manifest:
            return None
        data = blob(manifest[name])
        if data is None:
            raise IntegrityError(f"version {version}: bytes of reserved entry {name!r} are missing")
        check_blob(name, manifest[name], data)
        return data

    try:
        pubs, mems, pol, aud = (load(n) for n in RESERVED)
        return Governance(owner,
                          parse_publishers(pubs, owner) if pubs is not None else frozenset(),
                          parse_members(mems) if mems is not None else {},
                          parse_policy(pol) if pol is not None else (),
                          parse_audit_head(aud) if aud is not None else None)
    except ValueError as exc:
        raise IntegrityError(f"version {version}: malformed reserved entry: {exc}") from exc


def check_change(prev: Governance, new: Governance, signer: bytes, note: str, version: int) -> None:
    """Raise :class:`UnauthorizedError` unless ``signer`` may move governance from ``prev`` to ``new``."""
    if signer == prev.owner:
        return
    if new.publishers != prev.publishers:
        raise UnauthorizedError(f"version {version}: only the owner may change {PUBLISHERS!r} "
                                "(delegated publishers cannot delegate further)")
    if dict(new.members) != dict(prev.members):
        raise UnauthorizedError(f"version {version}: only the owner may change {MEMBERS!r}")
    if new.policy == prev.policy:
        return
    old, cur = set(prev.policy), set(new.policy)
    added = cur - old
    if old - cur or any(line[0] != "g" for line in added) or not note.startswith("grant:"):
        raise UnauthorizedError(f"version {version}: a delegated publisher may only add role grants to "
                                f"{POLICY!r} (note 'grant:<purpose>'); other policy edits need the owner")
    who, purpose = prev.member_name(signer), note[len("grant:"):].split()[0] if note[6:].strip() else ""
    if who is None:
        raise UnauthorizedError(f"version {version}: the signer of a grant is not a member")
    pol = AccessPolicy(prev.policy)
    for line in sorted(added):
        d = pol.decide(who, f"role:{line[2]}", "grant", purpose)
        if not d.allowed:
            raise UnauthorizedError(f"version {version}: member {who!r} may not grant role {line[2]!r} "
                                    f"for purpose {purpose!r} under the previous policy")
