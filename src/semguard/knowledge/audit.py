"""Hash-chained audit log of access decisions (same SQLite file as the knowledge base).

Row ``i`` stores ``hash_i = SHA-256(hash_{i-1} || canonical JSON of the row)`` with
``hash_0 = 32 zero bytes``; :func:`verify_audit` recomputes the chain, so an edited, deleted or
reordered row is found.  Appends run in ``BEGIN IMMEDIATE`` so concurrent writers keep one chain.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass

from semguard.knowledge._db import transaction
from semguard.knowledge.access import Decision
from semguard.knowledge.records import IntegrityError

__all__ = ["AuditRow", "append_audit", "read_audit", "verify_audit"]

_TABLE = """CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, ts REAL, subject TEXT, obj TEXT,
            action TEXT, purpose TEXT, allowed INTEGER, rule TEXT, prev BLOB, hash BLOB)"""


@dataclass(frozen=True)
class AuditRow:
    """One logged decision."""

    seq: int
    ts: float
    subject: str
    obj: str
    action: str
    purpose: str
    allowed: bool
    rule: str


def _row_hash(prev: bytes, row: AuditRow) -> bytes:
    body = json.dumps(asdict(row), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(prev + body).digest()


def append_audit(conn: sqlite3.Connection, d: Decision) -> AuditRow:
    """Append decision ``d`` to the chain (own transaction)."""
    conn.execute(_TABLE)
    with transaction(conn):
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, bytes(last[1])) if last else (1, bytes(32))
        row = AuditRow(seq, time.time(), d.subject, d.obj, d.action, d.purpose, d.allowed, ",".join(d.rule))
        conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, row.ts, row.subject, row.obj, row.action, row.purpose, int(row.allowed),
                      row.rule, prev, _row_hash(prev, row)))
    return row


def read_audit(conn: sqlite3.Connection) -> list[AuditRow]:
    """All rows in order (unverified; call :func:`verify_audit` first)."""
    conn.execute(_TABLE)
    return [AuditRow(s, t, su, o, a, p, bool(al), r) for s, t, su, o, a, p, al, r, *_ in
            conn.execute("SELECT * FROM audit ORDER BY seq")]


def verify_audit(conn: sqlite3.Connection) -> int:
    """Recompute the chain; return its length or raise :class:`IntegrityError` at the first bad row."""
    conn.execute(_TABLE)
    prev, n = bytes(32), 0
    for s, t, su, o, a, p, al, r, pr, h in conn.execute("SELECT * FROM audit ORDER BY seq"):
        n += 1
        row = AuditRow(s, t, su, o, a, p, bool(al), r)
        if s != n or bytes(pr) != prev or _row_hash(prev, row) != bytes(h):
            raise IntegrityError(f"audit log row {s}: hash chain broken (row edited, removed or reordered)")
        prev = bytes(h)
    return n
