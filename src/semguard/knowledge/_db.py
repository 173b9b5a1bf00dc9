"""SQLite plumbing of the knowledge base: schema, WAL connection, creation."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from semguard.knowledge.records import IntegrityError, KnowledgeError
from semguard.knowledge.verify import derive_kb_id

__all__ = ["SCHEMA", "connect", "transaction", "create_db", "add_quarantine", "list_quarantine", "parse_genesis"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (hash BLOB PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS versions (version INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (version INTEGER NOT NULL, name TEXT NOT NULL, hash BLOB NOT NULL,
                                    PRIMARY KEY (version, name));
CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, ts REAL, publisher BLOB, reason TEXT,
                                       manifest TEXT);
"""


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Autocommit connection in WAL mode, ``synchronous=FULL``, 60 s busy timeout.

    ``readonly`` opens ``file:...?mode=ro``: nothing is created or changed.  When no ``-wal``
    file exists (no connection has the database open) it adds ``immutable=1``, because a
    read-only WAL reader would otherwise leave new ``-wal``/``-shm`` files behind.
    """
    p = Path(path)
    if p.is_dir():
        raise KnowledgeError(f"{p}: is a directory, not a knowledge-base file")
    if readonly:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no knowledge base here (create one with `semguard kb init`)")
        immutable = "&immutable=1" if not Path(f"{p}-wal").exists() else ""
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro{immutable}", uri=True,
                               isolation_level=None, timeout=60.0)
        conn.execute("PRAGMA busy_timeout=60000")
        return conn
    conn = sqlite3.connect(str(p), isolation_level=None, timeout=60.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise KnowledgeError(f"{p}: not a semguard knowledge base ({exc})") from exc
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (take the write lock now, so concurrent writers serialise), then
    ``COMMIT`` on success or ``ROLLBACK`` on any exception, which is re-raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def create_db(path: str | Path, owner: bytes, salt: bytes) -> None:
    """Create the schema and the identity (owner key, salt, kb_id) in one transaction."""
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        with transaction(conn):
            conn.executemany("INSERT INTO meta VALUES (?, ?)",
                             [("owner", owner), ("salt", salt), ("kb_id", derive_kb_id(owner, salt).encode())])
    finally:
        conn.close()


def add_quarantine(conn: sqlite3.Connection, pub: bytes, reason: str, manifest: Mapping[str, bytes]) -> None:
    """Record a rejected update (publisher, reason, its entry list) outside the signed log."""
    conn.execute("INSERT INTO quarantine (ts, publisher, reason, manifest) VALUES (?, ?, ?, ?)",
                 (time.time(), pub, reason, json.dumps({n: h.hex() for n, h in manifest.items()})))


def list_quarantine(conn: sqlite3.Connection) -> list[tuple[float, str, str]]:
    """(time, publisher key hex, reason) of every quarantined update, oldest first."""
    return [(t, bytes(p).hex(), r) for t, p, r in
            conn.execute("SELECT ts, publisher, reason FROM quarantine ORDER BY id")]


def parse_genesis(genesis: Mapping[str, str]) -> tuple[bytes, bytes]:
    """(owner key, salt) from a genesis dict; checks ``kb_id`` when present."""
    try:
        owner, salt = bytes.fromhex(genesis["owner"]), bytes.fromhex(genesis["salt"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"genesis needs hex fields 'owner' and 'salt': {exc!r}") from exc
    if "kb_id" in genesis and derive_kb_id(owner, salt) != genesis["kb_id"]:
        raise IntegrityError("genesis: kb_id does not match owner and salt")
    return owner, salt
