"""SQLite knowledge base: content-addressed blobs, signed hash-chained versions, Merkle proofs.

One file, WAL journal, ``synchronous=FULL``; every publish is one ``BEGIN IMMEDIATE`` transaction
that reads the head, applies the update and appends the next version, so a publisher killed
mid-write leaves the last committed version intact and concurrent publishers serialise without
losing updates.  Readers verify the record chain when they open or refresh, and every blob
against its signed content hash and Merkle inclusion proof before returning it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge import merkle
from semguard.knowledge._db import add_quarantine, connect, create_db, list_quarantine, parse_genesis, transaction
from semguard.knowledge.reserved import RESERVED, Governance, check_change, governance_of
from semguard.knowledge.keys import public_bytes, sign
from semguard.knowledge.records import (
    EntryProof, Hello, HistoryError, IntegrityError, KnowledgeError, LogProof, PoisoningRejected,
    UnauthorizedError, VersionRecord, entry_leaf,
)
from semguard.knowledge.verify import (
    ZERO, check_blob, check_identity, check_record, derive_kb_id, log_leaves, manifest_levels,
)

__all__ = ["KnowledgeBase", "Gate"]
log = logging.getLogger(__name__)

#: validation gate: (kb, head manifest, candidate manifest, {content hash: bytes} not yet stored)
#: -> reason string (reject and quarantine) or None (accept)
Gate = Callable[["KnowledgeBase", dict[str, bytes], dict[str, bytes], Mapping[str, bytes]], "str | None"]


class KnowledgeBase:
    """A verified view of one knowledge-base file.

    Open with ``KnowledgeBase(path)`` (verifies the whole record chain; ``readonly=True`` opens
    ``file:...?mode=ro`` and never creates or changes a file) or create with :meth:`init`.  ``head`` is the latest verified :class:`VersionRecord` (None before the
    first publish).  Fault injection for crash tests: ``before_commit`` is called inside the
    publish transaction just before ``COMMIT``.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no knowledge base here (create one with `semguard kb init`)")
        self.readonly = readonly
        self.conn = connect(self.path, readonly=readonly)
        try:
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            self.owner, salt, self.kb_id = bytes(meta["owner"]), bytes(meta["salt"]), meta["kb_id"].decode()
        except (sqlite3.DatabaseError, KeyError, AttributeError, TypeError) as exc:
            self.conn.close()
            raise KnowledgeError(f"{self.path}: not a semguard knowledge base ({exc})") from exc
        if derive_kb_id(self.owner, salt) != self.kb_id:
            raise IntegrityError(f"{self.path}: kb_id does not match the owner key (meta tampered)")
        self.records: list[VersionRecord] = []
        self._leaves: list[bytes] = []
        self._levels_cache: dict[int, tuple[list[str], list[list[bytes]]]] = {}
        self._index_cache: dict[int, tuple[dict[str, int], dict[str, bytes]]] = {}
        self._gov_cache: dict[int, Governance] = {}
        self.before_commit: Callable[[], None] | None = None
        self.refresh()

    # ------------------------------------------------------------------ creation / reading log
    @classmethod
    def init(cls, path: str | Path, owner: Ed25519PrivateKey) -> KnowledgeBase:
        """Create an empty knowledge base owned by ``owner`` (refuses to overwrite)."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: already exists; refusing to re-initialise a knowledge base")
        create_db(path, public_bytes(owner), os.urandom(16))
        return cls(path)

    @classmethod
    def init_replica(cls, path: str | Path, genesis: Mapping[str, str]) -> KnowledgeBase:
        """Create an empty reader copy of a knowledge base from its :meth:`genesis` (owner, salt)."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: already exists; refusing to re-initialise a knowledge base")
        create_db(path, *parse_genesis(genesis))
        return cls(path)

    def genesis(self) -> dict[str, str]:
        """What a reader needs to pin this knowledge base: kb_id, owner key and salt (hex, public)."""
        salt = self.conn.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0]
        return {"kb_id": self.kb_id, "owner": self.owner.hex(), "salt": bytes(salt).hex()}

    def _read_records(self, start: int = 1) -> list[VersionRecord]:
        rows = self.conn.execute("SELECT version, record FROM versions WHERE version >= ? ORDER BY version",
                                 (start,)).fetchall()
        out = []
        for v, text in rows:
            try:
                out.append(VersionRecord.from_json(json.loads(text)))
            except (ValueError, json.JSONDecodeError) as exc:
                raise IntegrityError(f"{self.path}: version row {v} is not a valid record: {exc}") from exc
        return out

    def manifest(self, version: int) -> dict[str, bytes]:
        """Entry name -> content hash of ``version`` (empty dict for version 0)."""
        rows = self.conn.execute("SELECT name, hash FROM entries WHERE version = ?", (version,)).fetchall()
        return {n: bytes(h) for n, h in rows}

    def _blob(self, h: bytes) -> bytes | None:
        row = self.conn.execute("SELECT data FROM blobs WHERE hash = ?", (h,)).fetchone()
        return None if row is None else bytes(row[0])

    def governance(self, version: int | None = None) -> Governance:
        """Publishers, members, policy and audit head of ``version`` (default head; 0: empty)."""
        v = self.version if version is None else version
        if v not in self._gov_cache:
            rows = self.conn.execute(f"SELECT name, hash FROM entries WHERE version = ? AND name IN "
                                     f"({', '.join('?' * len(RESERVED))})", (v, *RESERVED)).fetchall()
            self._gov_cache[v] = governance_of(self.owner, {n: bytes(h) for n, h in rows}, self._blob, v)
        return self._gov_cache[v]

    def publishers(self, version: int) -> set[bytes]:
        """Keys allowed to sign version ``version + 1``."""
        return self.governance(version).signers

    def refresh(self) -> None:
        """Read versions appended since the last check and verify them (chain, signatures, roots).

        Raises HistoryError if already-trusted versions changed (rewritten history).
        """
        recs = self._read_records()
        n_old = len(self.records)
        if len(recs) < n_old:
            raise HistoryError(f"{self.path}: log shrank from {n_old} to {len(recs)} versions")
        if n_old and log_leaves(recs[:n_old]) != self._leaves:
            raise HistoryError(f"{self.path}: already-verified versions were rewritten")
        leaves, prev = list(self._leaves), (self.records[-1] if n_old else None)
        roots = merkle.prefix_roots(leaves + log_leaves(recs[n_old:]))
        for pos, rec in enumerate(recs[n_old:], start=n_old + 1):
            check_record(rec, kb_id=self.kb_id, position=pos, prev=prev, prev_log_root=roots[pos - 1],
                         publishers=self.publishers(pos - 1))
            names, levels = self._levels(pos)
            if merkle.root_of(levels) != rec.root or len(names) != rec.n_entries:
                raise IntegrityError(f"version {pos}: stored entry list does not match its signed Merkle root")
            self._gov_cache.pop(pos, None)
            check_change(self.governance(pos - 1), self.governance(pos), rec.publisher, rec.note, pos)
            leaves.append(merkle.leaf_hash(rec.to_bytes()))
            prev = rec
        self.records, self._leaves = recs, leaves

    def _levels(self, version: int) -> tuple[list[str], list[list[bytes]]]:
        if version not in self._levels_cache:
            man = self.manifest(version)
            names, levels = manifest_levels(man)
            self._levels_cache[version] = (names, levels)
            self._index_cache[version] = ({n: i for i, n in enumerate(names)}, man)
        return self._levels_cache[version]

    head = property(lambda self: self.records[-1] if self.records else None, doc="latest verified record")
    version = property(lambda self: len(self.records), doc="number of verified versions")

    def record(self, version: int) -> VersionRecord:
        if not 1 <= version <= self.version:
            raise KnowledgeError(f"version {version} not in 1..{self.version}")
        return self.records[version - 1]

    def log_root(self, size: int | None = None) -> bytes:
        """Merkle root of the log of the first ``size`` versions (default: all)."""
        size = self.version if size is None else size
        return merkle.root_of(merkle.build_levels(self._leaves[:size]))

    def hello(self) -> Hello:
        """Handshake message for the current verified head."""
        h = self.head
        return Hello(self.kb_id, self.version, h.root if h else merkle.EMPTY_ROOT, self.log_root())

    # ------------------------------------------------------------------ entries and proofs
    def resolve(self, version: int | None = None, root: bytes | None = None) -> int:
        """Version number for ``version`` or ``root`` (latest version with that root); default head."""
        if root is not None:
            hits = [r.version for r in self.records if r.root == root]
            if not hits:
                raise KnowledgeError(f"no verified version has root {root.hex()[:16]}…")
            if version is not None and version not in hits:
                raise KnowledgeError(f"version {version} does not have root {root.hex()[:16]}…")
            return hits[-1]
        v = self.version if version is None else version
        self.record(v)
        return v

    def prove_entry(self, name: str, version: int | None = None) -> EntryProof:
        """Inclusion proof of entry ``name`` in ``version``'s signed Merkle root."""
        v = self.resolve(version)
        names, levels = self._levels(v)
        index, man = self._index_cache[v]
        if name not in man:
            raise KeyError(f"version {v} has no entry {name!r}")
        i = index[name]
        return EntryProof(name, man[name], v, i, len(names), tuple(merkle.inclusion_path(levels, i)))

    def get(self, name: str, version: int | None = None, root: bytes | None = None) -> bytes:
        """Bytes of entry ``name``, after checking its hash and its inclusion in the signed root."""
        v = self.resolve(version, root)
        proof = self.prove_entry(name, v)
        data = self._blob(proof.content_hash)
        if data is None:
            raise IntegrityError(f"entry {name!r} of version {v}: blob missing from {self.path}")
        check_blob(name, proof.content_hash, data)
        merkle.verify_inclusion(merkle.leaf_hash(entry_leaf(name, proof.content_hash)), proof.index,
                                proof.size, proof.path, self.record(v).root)
        return data

    def prove_log(self, first: int, second: int | None = None) -> LogProof:
        """Consistency proof between the logs of ``first`` and ``second`` versions."""
        second = self.version if second is None else second
        levels = merkle.build_levels(self._leaves[:second])
        path = merkle.consistency_path(levels, first, second) if 0 < first < second else []
        return LogProof(first, second, self.log_root(first), self.log_root(second), tuple(path))

    def verify(self, *, expected_kb_id: str | None = None, expected_owner: bytes | None = None) -> Hello:
        """Full check: re-read the chain from scratch and hash every blob of every version.

        ``expected_kb_id`` / ``expected_owner`` pin the identity: :class:`IdentityError` if the
        base is another one (e.g. rebuilt whole under an attacker's key, which verifies by itself).
        """
        check_identity(self.kb_id, self.owner, expected_kb_id=expected_kb_id, expected_owner=expected_owner,
                       where=str(self.path))
        self.records, self._leaves, self._levels_cache, self._index_cache, self._gov_cache = [], [], {}, {}, {}
        self.refresh()
        for rec in self.records:
            rows = self.conn.execute("SELECT e.name, e.hash, b.data FROM entries e LEFT JOIN blobs b "
                                     "ON b.hash = e.hash WHERE e.version = ?", (rec.version,))
            for name, h, data in rows:
                h = bytes(h)
                if data is None:
                    raise IntegrityError(f"entry {name!r} of version {rec.version}: blob missing")
                check_blob(name, h, data)
        return self.hello()

    # ------------------------------------------------------------------ writing
    def publish(self, key: Ed25519PrivateKey, put: Mapping[str, bytes] | None = None,
                delete: Iterable[str] = (), *, note: str = "", gate: Gate | None = None) -> VersionRecord:
        """Append a version = head + ``put`` - ``delete``, signed by ``key``, in one transaction.

        ``gate`` (validation gate) sees the head and candidate manifests before anything is
        written; a non-None reason quarantines the update and raises :class:`PoisoningRejected`.
        """
        put = dict(put or {})
        hashes = {n: hashlib.sha256(d).digest() for n, d in put.items()}
        for n, d in put.items():
            if not isinstance(n, str) or not n or not isinstance(d, bytes | bytearray):
                raise TypeError(f"entry {n!r}: names must be non-empty str and data bytes")
        delete = list(delete)
        self.refresh()
        if gate is not None:
            base = self.manifest(self.version)
            cand = {**{n: h for n, h in base.items() if n not in delete}, **hashes}
            reason = gate(self, base, cand, {hashes[n]: d for n, d in put.items()})
            if reason is not None:
                self._quarantine(public_bytes(key), reason, cand)
                raise PoisoningRejected(f"update quarantined: {reason}")
        c = self.conn
        with transaction(c):
            self.refresh()  # another publisher may have committed since; build on the real head
            v = self.version
            man = self.manifest(v)
            missing = [n for n in delete if n not in man]
            if missing:
                raise KeyError(f"cannot delete {missing}: not in version {v}")
            for n in delete:
                del man[n]
            man.update(hashes)
            pub = public_bytes(key)
            if pub not in self.publishers(v):
                raise UnauthorizedError(f"key {pub.hex()[:16]}… is not an authorised publisher")
            fresh = {hashes[n]: bytes(d) for n, d in put.items()}
            try:
                new_gov = governance_of(self.owner, man, lambda h: fresh.get(h) or self._blob(h), v + 1)
            except IntegrityError as exc:  # refuse a malformed reserved record before anything is stored
                raise ValueError(f"refused: {exc}") from exc
            check_change(self.governance(v), new_gov, pub, note, v + 1)
            names, levels = manifest_levels(man)
            rec = VersionRecord(self.kb_id, v + 1, merkle.root_of(levels), len(names),
                                self.head.record_hash if self.head else ZERO, self.log_root(),
                                pub, time.time(), note)
            rec = VersionRecord(**{**rec.__dict__, "signature": sign(key, rec.signing_bytes())})
            c.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?)",
                          [(hashes[n], bytes(d)) for n, d in put.items()])
            c.executemany("INSERT INTO entries VALUES (?, ?, ?)", [(v + 1, n, man[n]) for n in names])
            c.execute("INSERT INTO versions VALUES (?, ?)", (v + 1, json.dumps(rec.to_json())))
            if self.before_commit is not None:
                self.before_commit()
        self.refresh()
        log.info("published version %d of %s (%d entries)", v + 1, self.kb_id, len(names))
        return rec

    def rollback(self, key: Ed25519PrivateKey, to_version: int) -> VersionRecord:
        """Append a new version whose entries equal ``to_version``'s (the log stays append-only)."""
        old, cur = self.manifest(self.resolve(to_version)), self.manifest(self.version)
        blobs = {n: self.get(n, to_version) for n, h in old.items() if cur.get(n) != h}
        return self.publish(key, blobs, [n for n in cur if n not in old], note=f"rollback to {to_version}")

    def _quarantine(self, pub: bytes, reason: str, manifest: Mapping[str, bytes]) -> None:
        add_quarantine(self.conn, pub, reason, manifest)
        log.warning("quarantined an update of %s: %s", self.kb_id, reason)

    def quarantined(self) -> list[tuple[float, str, str]]:
        """(time, publisher key hex, reason) of every quarantined update."""
        return list_quarantine(self.conn)

    def close(self) -> None:
        self.conn.close()
