"""Optional challenge log for PDP: each challenge and its outcome, signed and hash-chained, in the
ledger file (:class:`~semguard.knowledge._ledger_local.LocalLedger`'s SQLite witness).

Row ``i`` holds ``(kb_id, version, root, nonce, c, ok, proof digest)``, ``hash_i = SHA-256(hash_{i-1}
|| row)`` and the client's Ed25519 signature of ``hash_i``.  Because the indices follow from the
revealed nonce and a Merkle proof needs no secret (:mod:`semguard.knowledge.pdp`), a third party
can re-check every logged proof it is shown, and the store cannot later deny a failed challenge.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.knowledge._db import connect, transaction
from semguard.knowledge.keys import public_bytes, sign, verify_signature
from semguard.knowledge.pdp import Challenge
from semguard.knowledge.records import IntegrityError, SignatureError

__all__ = ["ChallengeLog", "LoggedChallenge"]

_TABLE = """CREATE TABLE IF NOT EXISTS pdp_challenges (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,
            client BLOB NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL, sig BLOB NOT NULL)"""


@dataclass(frozen=True)
class LoggedChallenge:
    seq: int
    kb_id: str
    version: int
    root: str
    nonce: str
    c: int
    ok: bool
    proof_digest: str
    client: str


class ChallengeLog:
    """Append-only, client-signed log of PDP challenges in the SQLite file ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self.conn.execute(_TABLE)

    def record(self, client_key: Ed25519PrivateKey, challenge: Challenge, ok: bool, proof_digest: bytes) -> int:
        """Append one outcome; returns its sequence number."""
        c = self.conn
        with transaction(c):
            last = c.execute("SELECT seq, hash FROM pdp_challenges ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, bytes(last[1])) if last else (1, bytes(32))
            body = json.dumps({"seq": seq, "kb_id": challenge.kb_id, "version": challenge.version,
                               "root": challenge.root.hex(), "nonce": challenge.nonce.hex(), "c": challenge.c,
                               "ok": bool(ok), "proof_digest": proof_digest.hex()}, sort_keys=True)
            h = hashlib.sha256(prev + body.encode()).digest()
            c.execute("INSERT INTO pdp_challenges VALUES (?, ?, ?, ?, ?, ?)",
                      (seq, body, public_bytes(client_key), prev, h, sign(client_key, h)))
        return seq

    def entries(self) -> list[LoggedChallenge]:
        """Every row after checking the chain and each signature (IntegrityError at the first bad one)."""
        out, prev = [], bytes(32)
        for seq, body, client, pr, h, sig in self.conn.execute("SELECT * FROM pdp_challenges ORDER BY seq"):
            h, client = bytes(h), bytes(client)
            if seq != len(out) + 1 or bytes(pr) != prev or hashlib.sha256(prev + body.encode()).digest() != h:
                raise IntegrityError(f"{self.path}: challenge log row {seq}: chain broken (edited or removed)")
            try:
                verify_signature(client, h, bytes(sig), what=f"challenge log row {seq}")
            except SignatureError as exc:
                raise IntegrityError(f"{self.path}: challenge log row {seq}: signature does not verify") from exc
            out.append(LoggedChallenge(**json.loads(body), client=client.hex()))
            prev = h
        return out

    def close(self) -> None:
        self.conn.close()
