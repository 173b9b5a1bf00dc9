"""What both ledger backends share: the :class:`Ledger` protocol, anchor records, message format.

Kept apart from :mod:`semguard.knowledge.ledger` so that the backends (``_ledger_local``,
``_ledger_evm``) import only this module and ``ledger`` imports the backends, without a cycle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from semguard.knowledge.records import KnowledgeError

__all__ = ["AnchorRecord", "AnchorReceipt", "LedgerCheck", "Ledger", "LedgerUnavailable",
           "anchor_message", "anchor_digest", "kb_id_bytes", "check_hash32"]


class LedgerUnavailable(KnowledgeError):
    """The ledger backend cannot be reached or is not installed (message says which and how)."""


@dataclass(frozen=True)
class AnchorRecord:
    """What a ledger holds for one version of one knowledge base.

    Attributes:
        kb_id: knowledge-base identity (32 hex characters).
        version: 1, 2, ... (consecutive per ``kb_id``).
        root: Merkle root of the version's entries (32 bytes).
        log_root: Merkle root of the version log ``1..version`` (32 bytes).
        publisher: raw Ed25519 key (32 bytes) of the publisher the anchor was made for.
        account: who submitted it: EVM address (``EvmLedger``) or the key id (``LocalLedger``).
        position: block number (``EvmLedger``) or row id (``LocalLedger``).
    """

    kb_id: str
    version: int
    root: bytes
    log_root: bytes
    publisher: bytes
    account: str
    position: int


@dataclass(frozen=True)
class AnchorReceipt:
    """Proof that an anchor was written: transaction hash (EVM) or row hash (local), and gas."""

    record: AnchorRecord
    tx_hash: str
    gas_used: int = 0


@dataclass(frozen=True)
class LedgerCheck:
    """Outcome of :func:`check_against_ledger` (raised errors cover every mismatch)."""

    kb_id: str
    local_version: int
    anchored_version: int
    checked_version: int

    @property
    def current(self) -> bool:
        """True when the local head is the latest anchored version."""
        return self.local_version == self.anchored_version


@runtime_checkable
class Ledger(Protocol):
    """An append-only, publisher-authorised store of version anchors."""

    def anchor(self, kb_id: str, version: int, root: bytes, log_root: bytes, publisher: bytes,
               signature: bytes | None = None) -> AnchorReceipt:
        """Append the anchor of ``version`` (must be the last anchored version + 1)."""
        ...

    def lookup(self, kb_id: str, version: int) -> AnchorRecord | None:
        """The anchor of ``version``, or None if it was never anchored."""
        ...

    def latest(self, kb_id: str) -> int:
        """Last anchored version of ``kb_id`` (0 if none)."""
        ...


def kb_id_bytes(kb_id: str) -> bytes:
    """16 raw bytes of a kb_id (32 hex characters, as :func:`verify.derive_kb_id` makes)."""
    try:
        raw = bytes.fromhex(kb_id)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"kb_id {kb_id!r}: expected 32 hex characters") from exc
    if len(raw) != 16:
        raise ValueError(f"kb_id {kb_id!r}: expected 32 hex characters (16 bytes), got {len(raw)} bytes")
    return raw


def check_hash32(name: str, value: bytes) -> bytes:
    """Return ``value`` if it is 32 bytes, else raise ValueError naming the field."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{name}: expected 32 bytes, got {type(value).__name__} of length "
                         f"{len(value) if hasattr(value, '__len__') else '?'}")
    return bytes(value)


def anchor_message(kb_id: str, version: int, root: bytes, log_root: bytes) -> bytes:
    """Canonical bytes a publisher signs (Ed25519) to anchor ``version`` in a :class:`LocalLedger`."""
    body = {"kb_id": kb_id, "version": int(version), "root": check_hash32("root", root).hex(),
            "log_root": check_hash32("log_root", log_root).hex()}
    return b"semguard-anchor|" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def anchor_digest(record: AnchorRecord) -> str:
    """SHA-256 (hex) of an anchor's canonical fields; the local ledger's row hash."""
    return hashlib.sha256(anchor_message(record.kb_id, record.version, record.root, record.log_root)
                          + record.publisher).hexdigest()
