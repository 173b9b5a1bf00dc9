"""Records that cross module boundaries: version records, proofs, handshake messages, errors.

A :class:`VersionRecord` is what a publisher signs.  Its canonical byte form (sorted-key JSON,
hex for hashes) is hashed into the hash chain (``prev_hash``) and used as a leaf of the log tree,
so the record bytes are the single thing every check is computed from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

__all__ = [
    "KnowledgeError", "IntegrityError", "SignatureError", "HistoryError", "RollbackError",
    "UnauthorizedError", "PoisoningRejected", "AccessDenied", "IdentityError",
    "VersionRecord", "EntryProof", "LogProof", "Hello", "entry_leaf",
]


class KnowledgeError(Exception):
    """Base class of knowledge-base failures."""


class IntegrityError(KnowledgeError):
    """Stored bytes do not hash to what the signed records say (tampered or corrupted)."""


class SignatureError(KnowledgeError):
    """A version record's Ed25519 signature does not verify."""


class HistoryError(KnowledgeError):
    """The version log is not an append-only extension of what the reader trusted."""


class RollbackError(HistoryError):
    """An older (replayed) version was offered as if it were current."""


class UnauthorizedError(KnowledgeError):
    """The signing key is not a trusted publisher of this knowledge base."""


class PoisoningRejected(KnowledgeError):
    """The validation gate rejected an update; it was quarantined."""


class IdentityError(KnowledgeError):
    """The knowledge base is not the pinned one (other kb_id or owner key)."""


class AccessDenied(KnowledgeError):
    """The access policy denied the operation (deny by default)."""


def entry_leaf(name: str, content_hash: bytes) -> bytes:
    """Leaf data of a version's entry tree: the entry name bound to its content hash."""
    return json.dumps([name, content_hash.hex()], separators=(",", ":")).encode()


@dataclass(frozen=True)
class VersionRecord:
    """One signed, hash-chained version of a knowledge base.

    Attributes:
        kb_id: knowledge-base identity (hex); a record of another KB never verifies here.
        version: 1, 2, ...; equals the record's position in the log (1-based).
        root: Merkle root (RFC 9162) over the version's entries sorted by name.
        n_entries: number of entries in the version.
        prev_hash: SHA-256 of the previous record's canonical bytes (32 zero bytes for v1).
        prev_log_root: Merkle root of the log of versions ``1..version-1``.
        publisher: raw Ed25519 public key (32 bytes) of the signer.
        timestamp: seconds since the epoch (informational; not trusted for ordering).
        note: free text (e.g. ``"rollback to 3"``).
        signature: Ed25519 signature over :meth:`signing_bytes`.
    """

    kb_id: str
    version: int
    root: bytes
    n_entries: int
    prev_hash: bytes
    prev_log_root: bytes
    publisher: bytes
    timestamp: float
    note: str = ""
    signature: bytes = field(default=b"", repr=False)

    def signing_bytes(self) -> bytes:
        """Canonical bytes that are signed (every field except the signature)."""
        d = asdict(self)
        d.pop("signature")
        d = {k: v.hex() if isinstance(v, bytes) else v for k, v in d.items()}
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole record (log leaf and hash-chain input)."""
        return self.signing_bytes() + b"|" + self.signature.hex().encode()

    @property
    def record_hash(self) -> bytes:
        """SHA-256 of :meth:`to_bytes` (the next record's ``prev_hash``)."""
        return hashlib.sha256(self.to_bytes()).digest()

    def to_json(self) -> dict:
        """JSON-able dict (hex for bytes)."""
        return {k: v.hex() if isinstance(v, bytes) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> VersionRecord:
        """Inverse of :meth:`to_json`; raises ValueError naming a missing or bad field."""
        try:
            return cls(kb_id=d["kb_id"], version=int(d["version"]), root=bytes.fromhex(d["root"]),
                       n_entries=int(d["n_entries"]), prev_hash=bytes.fromhex(d["prev_hash"]),
                       prev_log_root=bytes.fromhex(d["prev_log_root"]),
                       publisher=bytes.fromhex(d["publisher"]), timestamp=float(d["timestamp"]),
                       note=str(d.get("note", "")), signature=bytes.fromhex(d["signature"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"bad version record field: {exc!r}; expected the keys of VersionRecord") from exc


@dataclass(frozen=True)
class EntryProof:
    """Inclusion of entry ``name`` (content hash ``content_hash``) in version ``version``'s tree."""

    name: str
    content_hash: bytes
    version: int
    index: int
    size: int
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class LogProof:
    """Consistency of the log of ``first`` versions with the log of ``second`` versions."""

    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class Hello:
    """Link set-up handshake message: which priors this end runs on.

    ``log_root`` is the Merkle root of the log of versions ``1..version``; two ends agree only
    when ``(kb_id, version, root, log_root)`` all match.
    """

    kb_id: str
    version: int
    root: bytes
    log_root: bytes
