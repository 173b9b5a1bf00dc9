"""Link set-up handshake and catch-up: exchange (kb_id, version, root, log root), fetch with proofs.

``handshake`` classifies two :class:`Hello` messages; ``sync`` brings a reader up to a source by
fetching a :class:`Bundle` (missing records, their entry lists and blobs, and a log consistency
proof from the reader's trusted size) and appending it only after every check passes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from semguard.knowledge import merkle
from semguard.knowledge._db import transaction
from semguard.knowledge.records import (
    Hello, HistoryError, LogProof, PoisoningRejected, RollbackError, VersionRecord,
)
from semguard.knowledge.store import Gate, KnowledgeBase
from semguard.knowledge.reserved import check_change, governance_of
from semguard.knowledge.verify import check_blob, check_identity, check_record, log_leaves, manifest_root

__all__ = ["SyncStatus", "Bundle", "handshake", "export_bundle", "import_bundle", "sync"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncStatus:
    """Handshake outcome: ``state`` in {"in_sync", "behind", "ahead", "diverged", "foreign"}.

    ``behind``: local must fetch; ``ahead``: the remote is older (a reader refuses to go back);
    ``diverged``: same version number, different root or log root; ``foreign``: other kb_id.
    """

    state: str
    local: Hello
    remote: Hello

    @property
    def ok(self) -> bool:
        return self.state == "in_sync"


def handshake(local: Hello, remote: Hello) -> SyncStatus:
    """Compare the priors of two link ends (pure)."""
    if local.kb_id != remote.kb_id:
        state = "foreign"
    elif local.version == remote.version:
        same = local.root == remote.root and local.log_root == remote.log_root
        state = "in_sync" if same else "diverged"
    else:
        state = "behind" if local.version < remote.version else "ahead"
    return SyncStatus(state, local, remote)


@dataclass(frozen=True)
class Bundle:
    """Versions ``since+1 .. since+len(records)`` of one knowledge base, with a consistency proof."""

    kb_id: str
    since: int
    records: tuple[VersionRecord, ...]
    manifests: dict[int, dict[str, bytes]]
    blobs: dict[bytes, bytes]
    proof: LogProof


def export_bundle(source: KnowledgeBase, since: int) -> Bundle:
    """What a reader at version ``since`` is missing (blobs new since then only)."""
    source.refresh()
    if not 0 <= since <= source.version:
        raise RollbackError(f"reader claims version {since}, source only has 1..{source.version}")
    manifests = {v: source.manifest(v) for v in range(since + 1, source.version + 1)}
    known = set(source.manifest(since).values())
    need = {h for m in manifests.values() for h in m.values()} - known
    blobs = {h: source._blob(h) for h in need}
    return Bundle(source.kb_id, since, tuple(source.records[since:]), manifests, blobs,
                  source.prove_log(since))


def import_bundle(reader: KnowledgeBase, bundle: Bundle, *, gate: Gate | None = None) -> int:
    """Verify ``bundle`` against the reader's trusted state and append it; returns versions added.

    Raises:
        HistoryError / RollbackError: foreign, rewritten or replayed history.
        SignatureError / UnauthorizedError / IntegrityError: a bad record or blob.
        PoisoningRejected: ``gate`` rejected version v; versions before v are kept.
    """
    reader.refresh()
    n = reader.version
    if bundle.kb_id != reader.kb_id:
        raise HistoryError(f"bundle is for knowledge base {bundle.kb_id}, reader pins {reader.kb_id}")
    if bundle.since != n:
        raise RollbackError(f"bundle starts after version {bundle.since}, reader trusts version {n}")
    p = bundle.proof
    if p.first != n or p.second != n + len(bundle.records):
        raise HistoryError(f"log proof {p.first}->{p.second} does not fit the reader's {n} versions "
                           f"plus {len(bundle.records)} offered")
    if p.first_root != reader.log_root():
        raise HistoryError(f"source's log of the first {n} versions differs from the one the reader "
                           "trusts (history rewritten)")
    merkle.verify_consistency(p.first, p.second, p.first_root, p.second_root, p.path)
    leaves = reader._leaves + log_leaves(list(bundle.records))
    roots = merkle.prefix_roots(leaves)
    if roots[-1] != p.second_root:
        raise HistoryError("bundle records do not hash to the log root its proof commits to")
    prev_man, prev = reader.manifest(n), reader.head
    prev_gov = reader.governance(n)

    def blob(h: bytes) -> bytes | None:
        return bundle.blobs.get(h) or reader._blob(h)

    accepted: list[VersionRecord] = []
    reason = None
    for pos, rec in enumerate(bundle.records, start=n + 1):
        check_record(rec, kb_id=reader.kb_id, position=pos, prev=prev, prev_log_root=roots[pos - 1],
                     publishers=prev_gov.signers)
        man = bundle.manifests.get(pos, {})
        if manifest_root(man) != rec.root or len(man) != rec.n_entries:
            raise HistoryError(f"version {pos}: entry list does not match its signed root")
        for name, h in man.items():
            data = bundle.blobs.get(h)
            if data is None:
                data = reader._blob(h)
                if data is None:
                    raise HistoryError(f"version {pos}: bundle lacks the bytes of entry {name!r}")
            check_blob(name, h, data)
        gov = governance_of(reader.owner, man, blob, pos)
        check_change(prev_gov, gov, rec.publisher, rec.note, pos)
        if gate is not None:
            reason = gate(reader, prev_man, man, bundle.blobs)
            if reason is not None:
                reader._quarantine(rec.publisher, f"version {pos}: {reason}", man)
                break
        accepted.append(rec)
        prev_man, prev, prev_gov = man, rec, gov
    _append(reader, accepted, bundle)
    if reason is not None:
        raise PoisoningRejected(f"version {n + len(accepted) + 1} quarantined: {reason}; "
                                f"reader stays at version {reader.version}")
    return len(accepted)


def _append(reader: KnowledgeBase, records: list[VersionRecord], bundle: Bundle) -> None:
    if not records:
        return
    c = reader.conn
    with transaction(c):
        if c.execute("SELECT COUNT(*) FROM versions").fetchone()[0] != bundle.since:
            raise HistoryError("reader log changed during sync; retry")
        for rec in records:
            man = bundle.manifests[rec.version]
            c.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?)",
                          [(h, bundle.blobs[h]) for h in man.values() if h in bundle.blobs])
            c.executemany("INSERT INTO entries VALUES (?, ?, ?)", [(rec.version, k, h) for k, h in man.items()])
            c.execute("INSERT INTO versions VALUES (?, ?)", (rec.version, json.dumps(rec.to_json())))
    reader.refresh()


def sync(reader: KnowledgeBase, source: KnowledgeBase, *, gate: Gate | None = None,
         expected_kb_id: str | None = None, expected_owner: bytes | None = None) -> SyncStatus:
    """Handshake, then fetch the reader's missing versions from ``source`` with proofs.

    Returns the handshake status *before* syncing.  A source older than the reader (a replayed
    old version) raises :class:`RollbackError`; a different root at the same version raises
    :class:`HistoryError`; a source or reader other than the pinned ``expected_kb_id`` /
    ``expected_owner`` raises :class:`IdentityError`.
    """
    for kb in (source, reader):
        check_identity(kb.kb_id, kb.owner, expected_kb_id=expected_kb_id, expected_owner=expected_owner,
                       where=str(kb.path))
    status = handshake(reader.hello(), source.hello())
    if status.state == "foreign":
        raise HistoryError(f"source is knowledge base {status.remote.kb_id}, reader pins {status.local.kb_id}")
    if status.state == "diverged":
        raise HistoryError(f"version {status.local.version}: source has a different root/log "
                           "(history rewritten or forked)")
    if status.state == "ahead":
        raise RollbackError(f"source offers version {status.remote.version}, older than the trusted "
                            f"version {status.local.version} (replayed old version?)")
    if status.state == "behind":
        added = import_bundle(reader, export_bundle(source, reader.version), gate=gate)
        log.info("synced %s: +%d versions -> %d", reader.kb_id, added, reader.version)
    return status
