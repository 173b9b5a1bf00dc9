"""What the two ends of a link must agree on about their knowledge base, and the check of the peer's
signed root.

A :class:`KbView` read from a knowledge base (:func:`kb_view`) carries the current version's signed
:class:`~semguard.knowledge.records.VersionRecord` (kb id, version, Merkle root, ..., Ed25519
signature of the publisher) and the publisher keys that base trusts at that version.  In the
handshake each end sends its record; :meth:`KbView.check_peer` refuses the peer unless

1. the record's signature verifies under its publisher key,
2. that publisher is one of *our* base's publishers (a record signed by anyone else is refused even
   if its signature is valid), and
3. its kb id, version and root are ours.

A view without a record (``KbView(id, version, root)``, no base configured) only compares the three
fields, as before; such a view refuses a signed peer only on a field mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semguard.knowledge.keys import key_id, verify_signature
from semguard.knowledge.records import SignatureError, VersionRecord

__all__ = ["KbView", "KbMismatch", "kb_view"]


class KbMismatch(RuntimeError):
    """The peer's knowledge base is not ours (or its signed root does not verify)."""


@dataclass(frozen=True)
class KbView:
    kb_id: str
    version: int
    root: str                                        #: hex
    record: VersionRecord | None = field(default=None, repr=False)
    publishers: frozenset[bytes] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        if self.record is not None:
            r = self.record
            if (r.kb_id, r.version, r.root.hex()) != (self.kb_id, self.version, self.root):
                raise ValueError("KbView: the record's kb id / version / root differ from the view's")
            if not self.publishers:
                raise ValueError("KbView: a signed view needs the base's publisher keys")

    @property
    def signed(self) -> bool:
        return self.record is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.kb_id, "version": self.version, "root": self.root}
        if self.record is not None:
            d["record"] = self.record.to_json()
        return d

    def check_peer(self, peer: Any) -> None:
        """Raise :class:`KbMismatch` (one line, naming what differs) unless ``peer`` (its hello's ``kb``)
        is our knowledge base at our version."""
        if not isinstance(peer, dict):
            raise KbMismatch("knowledge base: the peer sent no kb {id, version, root}")
        if not self.signed:
            theirs = {k: peer.get(k) for k in ("id", "version", "root")}
            if theirs != {"id": self.kb_id, "version": self.version, "root": self.root}:
                raise KbMismatch(f"knowledge base mismatch: ours {self.to_dict()}, peer's {theirs}")
            return
        if "record" not in peer:
            raise KbMismatch("knowledge base: the peer sent no signed root (its version record); "
                             f"ours is {self.kb_id} v{self.version}")
        try:
            rec = VersionRecord.from_json(peer["record"])
        except (ValueError, TypeError, AttributeError) as exc:
            raise KbMismatch(f"knowledge base: the peer's signed root is malformed ({exc})") from None
        try:
            verify_signature(rec.publisher, rec.signing_bytes(), rec.signature, what="peer's knowledge-base root")
        except (SignatureError, ValueError) as exc:
            raise KbMismatch(f"knowledge base: {exc}") from None
        if rec.publisher not in self.publishers:
            raise KbMismatch(f"knowledge base: the peer's root is signed by key {key_id(rec.publisher)}, which is not "
                             f"a publisher of our knowledge base {self.kb_id} at v{self.version}")
        if (rec.kb_id, rec.version, rec.root.hex()) != (self.kb_id, self.version, self.root):
            raise KbMismatch(f"knowledge base mismatch: ours {self.kb_id} v{self.version} root {self.root[:16]}..., "
                             f"peer's (signed) {rec.kb_id} v{rec.version} root {rec.root.hex()[:16]}...")
        if (peer.get("id"), peer.get("version"), peer.get("root")) != (rec.kb_id, rec.version, rec.root.hex()):
            raise KbMismatch("knowledge base: the peer's kb fields differ from its own signed record")


def kb_view(path: str | Path) -> KbView:
    """The signed view of the knowledge base at ``path`` (opened read-only; its record chain is verified)."""
    from semguard.knowledge.records import KnowledgeError
    from semguard.knowledge.store import KnowledgeBase
    try:
        kb = KnowledgeBase(path, readonly=True)
    except KnowledgeError as exc:
        raise ValueError(f"--kb: {exc}") from None
    try:
        kb.verify()
        v = kb.version
        if v < 1:
            raise ValueError(f"knowledge base {path}: no published version to sign a root")
        rec = kb.record(v)
        return KbView(rec.kb_id, v, rec.root.hex(), rec, frozenset(kb.publishers(v - 1)))  # who may sign v
    except KnowledgeError as exc:
        raise ValueError(f"--kb: {exc}") from None
    finally:
        kb.close()
