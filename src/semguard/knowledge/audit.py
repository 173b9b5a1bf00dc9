"""Signed, hash-chained audit log of access decisions, with its head bound into the versions.

Row ``i`` stores ``hash_i = SHA-256(hash_{i-1} || canonical JSON of the row)`` (``hash_0`` = 32
zero bytes) and ``sig_i``, an Ed25519 signature of ``hash_i`` by the operator that wrote it, which
must be the owner or a member key.  Without such a key a row cannot be added, edited, or the chain
recomputed after rows are deleted.  Each version published through :class:`~semguard.knowledge.Guard`
carries ``_audit = {"seq", "head"}``, so :func:`verify_audit` also finds a truncated tail or a
rewritten prefix up to the last bound head.  Each request nonce is stored once (replay refused).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge._db import transaction
from semguard.knowledge.access import Decision
from semguard.knowledge.keys import key_id, public_bytes, sign, verify_signature
from semguard.knowledge.records import IntegrityError, SignatureError

__all__ = ["AuditRow", "append_audit", "read_audit", "verify_audit", "audit_head", "ReplayError"]

_TABLE = """CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, ts REAL, subject TEXT, obj TEXT,
            action TEXT, purpose TEXT, allowed INTEGER, rule TEXT, nonce TEXT UNIQUE, version INTEGER,
            operator BLOB, prev BLOB, hash BLOB, sig BLOB)"""


class ReplayError(IntegrityError):
    """A signed request was presented a second time (its nonce is already in the audit log)."""


@dataclass(frozen=True)
class AuditRow:
    """One logged decision; ``rule`` is the JSON of the deciding policy line; ``version`` the head."""

    seq: int
    ts: float
    subject: str
    obj: str
    action: str
    purpose: str
    allowed: bool
    rule: str
    nonce: str
    version: int
    operator: str


def _row_hash(prev: bytes, row: AuditRow) -> bytes:
    body = json.dumps(asdict(row), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(b"semguard-audit|" + prev + body).digest()


def _exists(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='audit_log'").fetchone() is not None


def append_audit(conn: sqlite3.Connection, d: Decision, operator: Ed25519PrivateKey, *, nonce: str,
                 version: int) -> AuditRow:
    """Append decision ``d`` signed by ``operator`` (own transaction); :class:`ReplayError` on a reused nonce."""
    conn.execute(_TABLE)
    op = public_bytes(operator)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM audit_log WHERE nonce = ?", (nonce,)).fetchone():
            raise ReplayError(f"request nonce {nonce[:16]}… was already used (replayed request)")
        last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, bytes(last[1])) if last else (1, bytes(32))
        row = AuditRow(seq, time.time(), d.subject, d.obj, d.action, d.purpose, d.allowed,
                       json.dumps(list(d.rule)), nonce, version, op.hex())
        h = _row_hash(prev, row)
        conn.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, row.ts, row.subject, row.obj, row.action, row.purpose, int(row.allowed), row.rule,
                      nonce, version, op, prev, h, sign(operator, h)))
    return row


def _rows(conn: sqlite3.Connection):
    for s, t, su, o, a, p, al, r, n, v, op, pr, h, sg in conn.execute("SELECT * FROM audit_log ORDER BY seq"):
        yield AuditRow(s, t, su, o, a, p, bool(al), r, n, v, bytes(op).hex()), bytes(pr), bytes(h), bytes(sg)


def read_audit(conn: sqlite3.Connection) -> list[AuditRow]:
    """All rows in order (unverified; call :func:`verify_audit` first)."""
    return [r for r, *_ in _rows(conn)] if _exists(conn) else []


def audit_head(conn: sqlite3.Connection) -> tuple[int, bytes]:
    """``(seq, hash)`` of the last row (``(0, zeros)`` for an empty log)."""
    if not _exists(conn):
        return 0, bytes(32)
    last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (last[0], bytes(last[1])) if last else (0, bytes(32))


def verify_audit(conn: sqlite3.Connection, operators: set[bytes],
                 bound: list[tuple[int, int, bytes]] = ()) -> int:
    """Check the chain, every row's signature by a key in ``operators``, and the heads bound in versions.

    ``bound`` is ``[(version, seq, head)]`` from the ``_audit`` entries of the verified versions.
    Returns the number of rows; raises :class:`IntegrityError` naming the first failure.
    """
    prev, n, heads = bytes(32), 0, {}
    for row, pr, h, sg in (_rows(conn) if _exists(conn) else ()):
        n += 1
        if row.seq != n or pr != prev or _row_hash(prev, row) != h:
            raise IntegrityError(f"audit log row {row.seq}: hash chain broken (row edited, removed or reordered)")
        op = bytes.fromhex(row.operator)
        if op not in operators:
            raise IntegrityError(f"audit log row {row.seq}: written by key {key_id(op)}, not the owner or a member")
        try:
            verify_signature(op, h, sg, what=f"audit log row {row.seq}")
        except SignatureError as exc:
            raise IntegrityError(f"audit log row {row.seq}: signature does not verify (row forged or "
                                 "chain recomputed without the operator key)") from exc
        heads[row.seq] = h
        prev = h
    for version, seq, head in bound:
        if seq == 0:
            continue
        if seq > n:
            raise IntegrityError(f"audit log has {n} rows but version {version} bound row {seq}: "
                                 "the log was truncated")
        if heads[seq] != head:
            raise IntegrityError(f"audit log row {seq} differs from the head bound in version {version}: "
                                 "the log was rewritten")
    return n
