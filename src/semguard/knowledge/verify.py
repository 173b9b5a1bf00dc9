"""Pure checks a reader runs before it uses anything: record chain, signatures, roots, blobs.

Trust model: a knowledge base is identified by ``kb_id = SHA-256("semguard-kb" || owner || salt)``
(first 32 hex), so the owner key cannot be swapped without changing the identity a reader pins.
The publishers allowed to sign version ``v`` are the owner plus the keys listed in the reserved
entry ``_publishers`` of version ``v - 1`` (schema and change rules in
:mod:`semguard.knowledge.reserved`) — provenance is itself in the signed log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from semguard.knowledge.keys import key_id, verify_signature
from semguard.knowledge.merkle import build_levels, leaf_hash, root_of
from semguard.knowledge.records import (
    HistoryError, IdentityError, IntegrityError, RollbackError, UnauthorizedError, VersionRecord, entry_leaf,
)

__all__ = ["PUBLISHERS_ENTRY", "ZERO", "derive_kb_id", "manifest_levels", "manifest_root",
           "check_blob", "check_record", "check_identity", "log_leaves"]

PUBLISHERS_ENTRY = "_publishers"
ZERO = bytes(32)


def derive_kb_id(owner: bytes, salt: bytes) -> str:
    """Knowledge-base identity bound to the owner's raw Ed25519 key."""
    return hashlib.sha256(b"semguard-kb" + owner + salt).hexdigest()[:32]


def manifest_levels(manifest: Mapping[str, bytes]) -> tuple[list[str], list[list[bytes]]]:
    """Sorted entry names and the Merkle levels over ``entry_leaf(name, hash)``."""
    names = sorted(manifest)
    return names, build_levels([leaf_hash(entry_leaf(n, manifest[n])) for n in names])


def manifest_root(manifest: Mapping[str, bytes]) -> bytes:
    """Merkle root of a version's entries (name -> SHA-256 content hash)."""
    return root_of(manifest_levels(manifest)[1])


def check_blob(name: str, expected: bytes, data: bytes) -> None:
    """Raise :class:`IntegrityError` unless SHA-256(``data``) equals the signed content hash."""
    got = hashlib.sha256(data).digest()
    if got != expected:
        raise IntegrityError(f"entry {name!r}: stored bytes hash to {got.hex()[:16]}…, the signed "
                             f"version says {expected.hex()[:16]}… (tampered or corrupted)")


def log_leaves(records: list[VersionRecord]) -> list[bytes]:
    """Leaf hashes of the version log (one per record, in version order)."""
    return [leaf_hash(r.to_bytes()) for r in records]


def check_identity(kb_id: str, owner: bytes, *, expected_kb_id: str | None = None,
                   expected_owner: bytes | None = None, where: str = "knowledge base") -> None:
    """Raise :class:`IdentityError` unless the base has the pinned ``kb_id`` and owner key."""
    if expected_kb_id is not None and kb_id != expected_kb_id:
        raise IdentityError(f"{where}: kb_id is {kb_id}, the pinned identity is {expected_kb_id} "
                            "(a different knowledge base, or one rebuilt under another key)")
    if expected_owner is not None and owner != expected_owner:
        raise IdentityError(f"{where}: owner key is {key_id(owner)}, the pinned owner is "
                            f"{key_id(expected_owner)} (rebuilt under another key?)")


def check_record(rec: VersionRecord, *, kb_id: str, position: int, prev: VersionRecord | None,
                 prev_log_root: bytes, publishers: set[bytes]) -> None:
    """Check one record against its place in the log (1-based ``position``).

    Raises:
        RollbackError: the record claims an older version than its position (replayed).
        HistoryError: wrong knowledge base, broken hash chain or log root.
        UnauthorizedError: signer is not an allowed publisher.
        SignatureError: the signature does not verify.
    """
    if rec.kb_id != kb_id:
        raise HistoryError(f"version {position}: record belongs to knowledge base {rec.kb_id}, not {kb_id}")
    if rec.version < position:
        raise RollbackError(f"log position {position} holds a record of version {rec.version} "
                            "(an old version replayed)")
    if rec.version != position:
        raise HistoryError(f"log position {position} holds a record claiming version {rec.version}")
    want_prev = prev.record_hash if prev is not None else ZERO
    if rec.prev_hash != want_prev:
        raise HistoryError(f"version {position}: prev_hash does not chain to version {position - 1} "
                           "(history rewritten)")
    if rec.prev_log_root != prev_log_root:
        raise HistoryError(f"version {position}: signed log root differs from the log before it")
    if rec.publisher not in publishers:
        raise UnauthorizedError(f"version {position}: signed by key {key_id(rec.publisher)}, "
                                "which is not an authorised publisher of this knowledge base")
    verify_signature(rec.publisher, rec.signing_bytes(), rec.signature, what=f"version {position}")
