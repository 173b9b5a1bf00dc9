"""Ledger anchoring: publish (version, root, log root) of a knowledge base to an append-only witness.

A knowledge base's own log is hash-chained and signed, but whoever holds the owner key can sign
a *different* history under the same ``kb_id`` (a fork) and serve it to a reader.  Anchoring
writes each version's entry root and log root to a ledger the publisher cannot rewrite; a reader
then checks that its local log agrees with the anchors (:func:`check_against_ledger`).

Backends (both implement :class:`Ledger`):

* :class:`~semguard.knowledge._ledger_local.LocalLedger` — the default: a separate SQLite file
  (a witness kept by the reader or a third party), anchors signed with the publisher's Ed25519 key.
* :class:`~semguard.knowledge._ledger_evm.EvmLedger` — a Vyper smart contract
  (``contracts/KnowledgeAnchor.vy``) on an EVM chain: in process (``eth-tester`` + ``py-evm``)
  or a real node by RPC URL.  Optional extra ``semguard[ledger]`` (vyper, eth-tester, web3).

Both reject an unauthorised publisher (:class:`UnauthorizedError`), a replayed version
(:class:`RollbackError`) and a skipped version (:class:`HistoryError`).  Since the log root of
versions ``1..v`` is an RFC 9162 Merkle root over every record (signatures included), one anchor
at version ``v`` commits to the whole prefix ``1..v``: a reader needs a single lookup.
"""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge._ledger_base import (
    AnchorReceipt, AnchorRecord, Ledger, LedgerCheck, LedgerUnavailable, anchor_digest, anchor_message,
    check_hash32, kb_id_bytes,
)
from semguard.knowledge.keys import public_bytes, sign
from semguard.knowledge.records import HistoryError, RollbackError

__all__ = ["AnchorRecord", "AnchorReceipt", "LedgerCheck", "Ledger", "LedgerUnavailable",
           "anchor_message", "anchor_digest", "kb_id_bytes", "check_hash32", "anchor_version",
           "check_against_ledger", "anchor_pending", "open_ledger",
           "LocalLedger", "EvmLedger"]  # noqa: F822 (loaded lazily by __getattr__ below)
log = logging.getLogger(__name__)


def anchor_version(kb, ledger: Ledger, key: Ed25519PrivateKey, version: int | None = None) -> AnchorReceipt:
    """Anchor version ``version`` (default: head) of a verified :class:`KnowledgeBase` ``kb``.

    The anchor carries the version's entry root and the log root of ``1..version``; ``key`` is the
    publisher's Ed25519 key (it signs the anchor message; an EVM ledger authorises by account).
    """
    v = kb.version if version is None else version
    rec = kb.record(v)
    log_root = kb.log_root(v)
    sig = sign(key, anchor_message(kb.kb_id, v, rec.root, log_root))
    receipt = ledger.anchor(kb.kb_id, v, rec.root, log_root, public_bytes(key), sig)
    log.info("anchored version %d of %s (tx %s)", v, kb.kb_id, receipt.tx_hash[:18])
    return receipt


def check_against_ledger(kb, ledger: Ledger, *, require_current: bool = False) -> LedgerCheck:
    """Check that the verified local log of ``kb`` agrees with the ledger's anchors.

    Compares, at ``v = min(local version, last anchored version)``, the local entry root and log
    root of ``1..v`` with the anchored ones, and the anchor's Ed25519 key with the record's signer.
    Equal log roots imply the whole prefix ``1..v`` is identical (RFC 9162 Merkle root over the
    record bytes), so one lookup suffices.

    Raises:
        HistoryError: the local history differs from the anchored one (rewritten or forked).
        RollbackError: ``require_current`` and the ledger holds newer versions than ``kb``.
    """
    anchored = ledger.latest(kb.kb_id)
    v = min(kb.version, anchored)
    if v > 0:
        a = ledger.lookup(kb.kb_id, v)
        if a is None:
            raise HistoryError(f"ledger reports {anchored} anchored versions of {kb.kb_id} but has none at {v}")
        rec = kb.record(v)
        for what, local, remote in (("entry root", rec.root, a.root), ("log root", kb.log_root(v), a.log_root),
                                    ("publisher key", rec.publisher, a.publisher)):
            if local != remote:
                raise HistoryError(f"{kb.kb_id} version {v}: local {what} {local.hex()[:16]}… differs from the "
                                   f"anchored {remote.hex()[:16]}… (local history rewritten or forked)")
    if require_current and anchored > kb.version:
        raise RollbackError(f"{kb.kb_id}: local head is version {kb.version}, the ledger anchors version "
                            f"{anchored} (stale or rolled-back copy)")
    return LedgerCheck(kb.kb_id, kb.version, anchored, v)


def anchor_pending(kb, ledger: Ledger, key: Ed25519PrivateKey) -> list[AnchorReceipt]:
    """Check ``kb`` against ``ledger`` (refuse to extend a forked history), then anchor every
    version after the last anchored one up to the head; returns the receipts (maybe none)."""
    chk = check_against_ledger(kb, ledger)
    return [anchor_version(kb, ledger, key, v) for v in range(chk.anchored_version + 1, kb.version + 1)]


def open_ledger(path: str | None = None, *, rpc: str | None = None, contract: str | None = None,
                account: str | None = None, private_key: str | None = None) -> Ledger:
    """A :class:`LocalLedger` at ``path``, or an :class:`EvmLedger` at ``contract`` via the node at ``rpc``
    transacting as ``account`` or signing with ``private_key`` (exactly one of ``path`` / ``rpc``)."""
    if (path is None) == (rpc is None):
        raise ValueError("give either a local ledger file or an RPC URL (with contract and account), not both")
    if path is not None:
        from semguard.knowledge._ledger_local import LocalLedger
        return LocalLedger(path)
    if not contract or not (account or private_key):
        raise ValueError(f"{rpc}: an EVM ledger needs the contract address and a sending account or key")
    from semguard.knowledge._ledger_evm import EvmLedger
    return EvmLedger.connect(rpc, contract, account, private_key=private_key)


def __getattr__(name: str):  # load the backends only when asked (EvmLedger needs the optional extra)
    if name == "LocalLedger":
        from semguard.knowledge._ledger_local import LocalLedger
        return LocalLedger
    if name == "EvmLedger":
        from semguard.knowledge._ledger_evm import EvmLedger
        return EvmLedger
    raise AttributeError(f"module 'semguard.knowledge.ledger' has no attribute {name!r}")
