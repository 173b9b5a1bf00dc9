"""Knowledge integrity: a signed, Merkle-proofed, access-controlled store of shared priors.

Both ends of a semantic link must run on the same priors (codec weights, vocabularies,
codebooks).  :class:`KnowledgeBase` keeps them in SQLite as content-addressed entries in signed,
hash-chained versions (RFC 9162 Merkle trees for entries and for the version log); ``sync``
runs the link-set-up handshake and fetches missing versions with proofs; ``poison`` holds the
validation gate; :class:`Guard` authenticates signed requests of principals, applies the casbin
policy kept in the signed history, encrypts per role and keeps a signed audit chain; ``pdp``
challenges a remote store to prove it still holds the entries.
"""

from typing import Any

from semguard.knowledge.guard import Guard
from semguard.knowledge.keys import generate_key, load_private_key, public_bytes, save_private_key
from semguard.knowledge.merkle import ProofError
from semguard.knowledge.principals import AuthenticationError, Principal, SignedRequest
from semguard.knowledge.records import (
    AccessDenied, Hello, HistoryError, IdentityError, IntegrityError, KnowledgeError, PoisoningRejected,
    RollbackError, SignatureError, UnauthorizedError, VersionRecord,
)
from semguard.knowledge.store import KnowledgeBase
from semguard.knowledge.sync import SyncStatus, handshake, sync

__all__ = [
    "KnowledgeBase", "Guard", "Principal", "SignedRequest", "PriorRef", "load_codec", "load_state", "save_codec",
    "generate_key", "load_private_key", "public_bytes", "save_private_key",
    "Hello", "SyncStatus", "handshake", "sync", "VersionRecord",
    "KnowledgeError", "IntegrityError", "SignatureError", "HistoryError", "RollbackError",
    "UnauthorizedError", "PoisoningRejected", "AccessDenied", "AuthenticationError", "IdentityError",
    "ProofError",
]


def __getattr__(name: str) -> Any:  # codec helpers import torch: load them only when asked
    if name in ("PriorRef", "load_codec", "load_state", "save_codec"):
        from semguard.knowledge import codec_io
        return getattr(codec_io, name)
    raise AttributeError(f"module 'semguard.knowledge' has no attribute {name!r}")
