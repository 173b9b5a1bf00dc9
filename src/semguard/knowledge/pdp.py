"""Provable data possession (PDP) of a remotely stored knowledge-base version, with Merkle paths.

A client that keeps only a version's signed entry root, its size and a 32-byte secret asks a
remote store to prove that it still holds ``c`` randomly chosen entries (the blocks).  The store
answers with each entry's bytes and its RFC 9162 inclusion path; the client hashes the bytes,
walks the path and compares with its root.  Scheme: sampling-based PDP of Ateniese et al.
(CCS 2007) with Merkle paths instead of homomorphic RSA tags, as in the blockchain-based private
PDP line the 2024 survey reviews.

Why Merkle paths rather than homomorphic tags: the entry tree already exists and its root is
signed and optionally anchored, so no per-block tags must be computed, stored or refreshed on
each publish; verification needs no secret (public verifiability: anyone holding the challenge
and the signed root can check a proof, which is what a ledger-anchored challenge log needs);
and it relies only on SHA-256.  The price is proof size: ``c`` blocks plus ``c`` paths of
``ceil(log2 n)`` hashes, against a constant-size aggregated tag.

Privacy of the challenge: the nonce is ``HMAC-SHA256(secret, kb_id | version | counter)``, so the
store cannot predict which entries will be asked next; the indices follow publicly from the
nonce, so a revealed challenge is checkable by a third party.  If a fraction ``f`` of ``n``
entries is lost, one challenge of ``c`` distinct entries detects it with probability
``1 - C(n - d, c) / C(n, c)``, ``d = ceil(f n)`` (:func:`detection_probability`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from dataclasses import dataclass, field, replace

from semguard.knowledge import merkle
from semguard.knowledge.records import KnowledgeError, entry_leaf

__all__ = ["PossessionError", "PdpClient", "Challenge", "ProofItem", "PossessionProof", "prove", "verify_possession",
           "challenge_indices", "detection_probability", "proof_size"]


class PossessionError(KnowledgeError):
    """A possession proof is missing a challenged entry or does not match the trusted root."""


def challenge_indices(nonce: bytes, n: int, c: int) -> list[int]:
    """``min(c, n)`` distinct indices in ``0..n-1`` drawn from SHA-256(nonce | counter) (rejection sampling)."""
    if n <= 0 or c <= 0:
        raise ValueError(f"challenge needs n > 0 entries and c > 0 blocks, got n={n}, c={c}")
    want, out, seen, ctr = min(c, n), [], set(), 0
    bound = (1 << 64) - (1 << 64) % n  # unbiased modulo
    while len(out) < want:
        x = int.from_bytes(hashlib.sha256(nonce + ctr.to_bytes(8, "big")).digest()[:8], "big")
        ctr += 1
        if x < bound and (i := x % n) not in seen:
            seen.add(i)
            out.append(i)
    return out


def detection_probability(n: int, deleted: int, c: int) -> float:
    """P(at least one of ``c`` distinct uniformly drawn entries is among ``deleted`` of ``n``)."""
    c = min(c, n)
    if deleted <= 0:
        return 0.0
    if n - deleted < c:
        return 1.0
    return 1.0 - math.exp(math.lgamma(n - deleted + 1) - math.lgamma(n - deleted - c + 1)
                          - math.lgamma(n + 1) + math.lgamma(n - c + 1))


@dataclass(frozen=True)
class Challenge:
    """What the client sends: which version (by its signed root) and the nonce for ``c`` entries."""

    kb_id: str
    version: int
    root: bytes
    n: int
    c: int
    nonce: bytes

    def indices(self) -> list[int]:
        return challenge_indices(self.nonce, self.n, self.c)

    def to_json(self) -> dict:
        return {"kb_id": self.kb_id, "version": self.version, "root": self.root.hex(), "n": self.n, "c": self.c,
                "nonce": self.nonce.hex()}

    @classmethod
    def from_json(cls, d: dict) -> Challenge:
        try:
            return cls(str(d["kb_id"]), int(d["version"]), bytes.fromhex(d["root"]), int(d["n"]), int(d["c"]),
                       bytes.fromhex(d["nonce"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"challenge: expected kb_id, version, root, n, c, nonce; {exc!r}") from exc


@dataclass(frozen=True)
class ProofItem:
    index: int
    name: str
    data: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class PossessionProof:
    """The store's answer: one item per challenged index it could serve."""

    kb_id: str
    version: int
    nonce: bytes
    items: tuple[ProofItem, ...]

    def to_json(self) -> dict:
        return {"kb_id": self.kb_id, "version": self.version, "nonce": self.nonce.hex(),
                "items": [{"index": it.index, "name": it.name, "data": it.data.hex(),
                           "path": [p.hex() for p in it.path]} for it in self.items]}

    @classmethod
    def from_json(cls, d: dict) -> PossessionProof:
        try:
            items = tuple(ProofItem(int(i["index"]), str(i["name"]), bytes.fromhex(i["data"]),
                                    tuple(bytes.fromhex(p) for p in i["path"])) for i in d["items"])
            return cls(str(d["kb_id"]), int(d["version"]), bytes.fromhex(d["nonce"]), items)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"proof: expected kb_id, version, nonce, items[index, name, data, path]; {exc!r}") from exc

    def digest(self) -> bytes:
        """SHA-256 over the items (for the challenge log)."""
        h = hashlib.sha256(self.nonce)
        for it in self.items:
            h.update(it.index.to_bytes(8, "big") + hashlib.sha256(it.data).digest() + b"".join(it.path))
        return h.digest()


def proof_size(proof: PossessionProof) -> int:
    """Bytes on the wire in binary form: per item 8 (index) + name + data + 32 per path hash."""
    return sum(8 + len(it.name.encode()) + len(it.data) + 32 * len(it.path) for it in proof.items)


def prove(kb, challenge: Challenge) -> PossessionProof:
    """Answer ``challenge`` from a :class:`KnowledgeBase` (the remote store); entries whose bytes
    the store no longer has are left out (the client's check then fails)."""
    v = kb.resolve(challenge.version)
    if kb.kb_id != challenge.kb_id or kb.record(v).root != challenge.root:
        raise PossessionError(f"challenge is for {challenge.kb_id} v{challenge.version} with another root; "
                              f"this store holds {kb.kb_id} v{v}")
    names, levels = kb._levels(v)
    man = kb._index_cache[v][1]
    items = []
    for i in challenge.indices():
        data = kb._blob(man[names[i]])
        if data is not None:
            items.append(ProofItem(i, names[i], data, tuple(merkle.inclusion_path(levels, i))))
    return PossessionProof(kb.kb_id, v, challenge.nonce, tuple(items))


@dataclass(frozen=True)
class PdpClient:
    """Client state: the trusted ``(kb_id, version, root, n)`` of one version, a secret and a counter.

    ``secret`` (32 bytes) must stay with the client (file mode 0600); everything else is public.
    """

    kb_id: str
    version: int
    root: bytes
    n: int
    secret: bytes = field(repr=False)
    counter: int = 0

    @classmethod
    def setup(cls, kb, version: int | None = None) -> PdpClient:
        """Take the signed root of ``version`` (default head) of a verified base, and a fresh secret."""
        v = kb.resolve(version)
        rec = kb.record(v)
        if rec.n_entries == 0:
            raise ValueError(f"version {v} has no entries to challenge")
        return cls(kb.kb_id, v, rec.root, rec.n_entries, os.urandom(32))

    def challenge(self, c: int) -> tuple[PdpClient, Challenge]:
        """Next challenge of ``c`` entries, and the client state with its counter advanced."""
        msg = f"{self.kb_id}|{self.version}|{self.counter}".encode()
        nonce = hmac.new(self.secret, msg, hashlib.sha256).digest()
        return replace(self, counter=self.counter + 1), Challenge(self.kb_id, self.version, self.root, self.n, c, nonce)

    def check(self, challenge: Challenge, proof: PossessionProof) -> None:
        """Raise :class:`PossessionError` unless ``proof`` serves every challenged entry under the root."""
        verify_possession(challenge, proof, root=self.root, n=self.n)

    def to_json(self) -> dict:
        return {"kb_id": self.kb_id, "version": self.version, "root": self.root.hex(), "n": self.n,
                "secret": self.secret.hex(), "counter": self.counter}

    @classmethod
    def from_json(cls, d: dict) -> PdpClient:
        try:
            return cls(str(d["kb_id"]), int(d["version"]), bytes.fromhex(d["root"]), int(d["n"]),
                       bytes.fromhex(d["secret"]), int(d["counter"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"PDP client state: expected kb_id, version, root, n, secret, counter; {exc!r}") from exc


def verify_possession(challenge: Challenge, proof: PossessionProof, *, root: bytes, n: int) -> None:
    """Public check of ``proof`` against a trusted ``root`` of ``n`` entries (no secret needed)."""
    if challenge.root != root or challenge.n != n:
        raise PossessionError("challenge names another root or size than the trusted one")
    if proof.kb_id != challenge.kb_id or proof.version != challenge.version or proof.nonce != challenge.nonce:
        raise PossessionError("proof answers another challenge (kb_id, version or nonce differ)")
    got = {it.index: it for it in proof.items}
    for i in challenge.indices():
        it = got.get(i)
        if it is None:
            raise PossessionError(f"proof lacks challenged entry {i} (the store no longer holds it?)")
        leaf = merkle.leaf_hash(entry_leaf(it.name, hashlib.sha256(it.data).digest()))
        try:
            merkle.verify_inclusion(leaf, i, n, it.path, root)
        except merkle.ProofError as exc:
            raise PossessionError(f"entry {i} ({it.name!r}): bytes or path do not match the root ({exc})") from exc
