"""Local ledger: anchors in a separate SQLite file, authorised by Ed25519 signatures.

The default :class:`~semguard.knowledge.ledger.Ledger`: a witness file kept apart from the
knowledge base (by the reader or a third party).  Whoever can write the file registers knowledge
bases and their publisher keys (:meth:`LocalLedger.register_kb`); an anchor is accepted only with
a valid Ed25519 signature of :func:`anchor_message` by a registered key and only for version
``last + 1``, in one ``BEGIN IMMEDIATE`` transaction.  Every read re-verifies the stored signature.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from semguard.knowledge._db import connect, transaction
from semguard.knowledge._ledger_base import (
    AnchorReceipt, AnchorRecord, anchor_digest, anchor_message, check_hash32, kb_id_bytes,
)
from semguard.knowledge.keys import key_id, verify_signature
from semguard.knowledge.records import (
    HistoryError, IntegrityError, KnowledgeError, RollbackError, SignatureError, UnauthorizedError,
)

__all__ = ["LocalLedger"]
log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_kbs (kb_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ledger_publishers (kb_id TEXT NOT NULL, pubkey BLOB NOT NULL,
                                              PRIMARY KEY (kb_id, pubkey));
CREATE TABLE IF NOT EXISTS ledger_anchors (id INTEGER PRIMARY KEY, kb_id TEXT NOT NULL, version INTEGER NOT NULL,
    root BLOB NOT NULL, log_root BLOB NOT NULL, publisher BLOB NOT NULL, signature BLOB NOT NULL,
    UNIQUE (kb_id, version));
"""


class LocalLedger:
    """Append-only anchors of knowledge-base versions in the SQLite file ``path`` (created if absent)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self.conn.executescript(_SCHEMA)

    def register_kb(self, kb_id: str, publishers: Iterable[bytes]) -> None:
        """Register ``kb_id`` with its authorised publisher keys (raw Ed25519, 32 bytes each)."""
        kb_id_bytes(kb_id)
        keys = [check_hash32("publisher key", k) for k in publishers]
        c = self.conn
        with transaction(c):
            if c.execute("SELECT 1 FROM ledger_kbs WHERE kb_id = ?", (kb_id,)).fetchone():
                raise KnowledgeError(f"{self.path}: knowledge base {kb_id} already registered")
            c.execute("INSERT INTO ledger_kbs VALUES (?)", (kb_id,))
            c.executemany("INSERT INTO ledger_publishers VALUES (?, ?)", [(kb_id, k) for k in keys])

    def bind_publisher(self, kb_id: str, publisher: bytes, *, revoke: bool = False) -> None:
        """Authorise (or with ``revoke`` remove) one more publisher key of a registered ``kb_id``."""
        self._require_registered(kb_id)
        key = check_hash32("publisher key", publisher)
        if revoke:
            self.conn.execute("DELETE FROM ledger_publishers WHERE kb_id = ? AND pubkey = ?", (kb_id, key))
        else:
            self.conn.execute("INSERT OR IGNORE INTO ledger_publishers VALUES (?, ?)", (kb_id, key))

    def _require_registered(self, kb_id: str) -> None:
        if not self.conn.execute("SELECT 1 FROM ledger_kbs WHERE kb_id = ?", (kb_id,)).fetchone():
            raise UnauthorizedError(f"{self.path}: knowledge base {kb_id} is not registered in this ledger")

    def _authorised(self, kb_id: str, publisher: bytes) -> bool:
        return self.conn.execute("SELECT 1 FROM ledger_publishers WHERE kb_id = ? AND pubkey = ?",
                                 (kb_id, publisher)).fetchone() is not None

    def latest(self, kb_id: str) -> int:
        """Last anchored version of ``kb_id`` (0 if none)."""
        row = self.conn.execute("SELECT MAX(version) FROM ledger_anchors WHERE kb_id = ?", (kb_id,)).fetchone()
        return int(row[0] or 0)

    def anchor(self, kb_id: str, version: int, root: bytes, log_root: bytes, publisher: bytes,
               signature: bytes | None = None) -> AnchorReceipt:
        """Append the anchor of ``version``; ``signature`` (Ed25519 of :func:`anchor_message`) is required.

        Raises:
            UnauthorizedError: unregistered kb or publisher key.
            SignatureError: missing or invalid signature.
            RollbackError: ``version`` was already anchored (replay).
            HistoryError: ``version`` skips one (must be last + 1).
        """
        msg = anchor_message(kb_id, version, root, log_root)
        publisher = check_hash32("publisher key", publisher)
        if signature is None:
            raise SignatureError(f"{self.path}: a local anchor needs the publisher's Ed25519 signature")
        c = self.conn
        with transaction(c):
            self._require_registered(kb_id)
            if not self._authorised(kb_id, publisher):
                raise UnauthorizedError(f"key {key_id(publisher)} is not an authorised publisher of {kb_id}")
            verify_signature(publisher, msg, signature, what=f"anchor of {kb_id} v{version}")
            last = self.latest(kb_id)
            if version <= last:
                raise RollbackError(f"{kb_id}: version {version} replayed (version {last} already anchored)")
            if version != last + 1:
                raise HistoryError(f"{kb_id}: version {version} skips versions (last anchored is {last})")
            cur = c.execute("INSERT INTO ledger_anchors (kb_id, version, root, log_root, publisher, signature) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (kb_id, version, root, log_root, publisher, signature))
        rec = AnchorRecord(kb_id, version, root, log_root, publisher, key_id(publisher), int(cur.lastrowid))
        return AnchorReceipt(rec, anchor_digest(rec))

    def lookup(self, kb_id: str, version: int) -> AnchorRecord | None:
        """The anchor of ``version`` after re-checking its signature (IntegrityError if the row was edited)."""
        row = self.conn.execute("SELECT id, root, log_root, publisher, signature FROM ledger_anchors "
                                "WHERE kb_id = ? AND version = ?", (kb_id, version)).fetchone()
        if row is None:
            return None
        rid, root, log_root, pub, sig = row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4])
        try:
            verify_signature(pub, anchor_message(kb_id, version, root, log_root), sig,
                             what=f"stored anchor of {kb_id} v{version}")
        except SignatureError as exc:
            raise IntegrityError(f"{self.path}: anchor row {rid} was altered after it was written") from exc
        return AnchorRecord(kb_id, version, root, log_root, pub, key_id(pub), int(rid))

    def close(self) -> None:
        self.conn.close()
