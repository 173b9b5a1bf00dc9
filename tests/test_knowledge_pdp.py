"""Provable data possession: Merkle-path proofs, detection against theory, the signed challenge log, CLI."""

import json
import os
import sqlite3

import pytest

from semguard.cli.main import main
from semguard.knowledge import IntegrityError, KnowledgeBase, generate_key, save_private_key
from semguard.knowledge.pdp import (
    Challenge, PdpClient, PossessionError, PossessionProof, ProofItem, challenge_indices,
    detection_probability, proof_size, prove,
)
from semguard.knowledge.pdp_log import ChallengeLog


@pytest.fixture()
def store(tmp_path):
    key = generate_key()
    kb = KnowledgeBase.init(tmp_path / "kb.db", key)
    kb.publish(key, {f"e{i:03d}": os.urandom(64) for i in range(200)})
    return kb


def test_hand_computed_detection_probability():
    assert detection_probability(10, 1, 1) == pytest.approx(0.1)
    assert detection_probability(10, 2, 2) == pytest.approx(1 - (8 * 7) / (10 * 9))
    assert detection_probability(10, 0, 5) == 0.0 and detection_probability(10, 6, 5) == 1.0
    idx = challenge_indices(b"n" * 32, 50, 50)
    assert sorted(idx) == list(range(50)) and idx == challenge_indices(b"n" * 32, 50, 50)


def test_honest_store_proves_and_cheats_fail(store):
    client, ch = PdpClient.setup(store).challenge(16)
    proof = prove(store, ch)
    client.check(ch, proof)
    assert len(proof.items) == 16 and proof_size(proof) == sum(
        8 + 4 + 64 + 32 * len(it.path) for it in proof.items)
    # RFC 9162 tree of 200 = 128 + 64 + 8 leaves: paths of 8 hashes, 5 for the last 8 leaves
    assert all(len(it.path) == (5 if it.index >= 192 else 8) for it in proof.items)
    it0 = proof.items[0]
    flipped = ProofItem(it0.index, it0.name, bytes([it0.data[0] ^ 1]) + it0.data[1:], it0.path)
    with pytest.raises(PossessionError, match="do not match the root"):
        client.check(ch, PossessionProof(proof.kb_id, proof.version, proof.nonce, (flipped, *proof.items[1:])))
    with pytest.raises(PossessionError, match="lacks challenged entry"):
        client.check(ch, PossessionProof(proof.kb_id, proof.version, proof.nonce, proof.items[1:]))
    client2, ch2 = client.challenge(16)                           # a stale answer to a new challenge
    assert ch2.nonce != ch.nonce and client2.counter == client.counter + 1
    with pytest.raises(PossessionError, match="another challenge"):
        client2.check(ch2, proof)


def test_detection_rate_matches_theory(store):
    n, d, c, trials = 200, 10, 20, 300
    names = sorted(store.manifest(1))
    man = store.manifest(1)
    for name in names[::n // d][:d]:                               # drop 5 % of the blobs
        store.conn.execute("DELETE FROM blobs WHERE hash = ?", (man[name],))
    client = PdpClient.setup(store)
    caught = 0
    for _ in range(trials):
        client, ch = client.challenge(c)
        try:
            client.check(ch, prove(store, ch))
        except PossessionError:
            caught += 1
    p = detection_probability(n, d, c)                             # 0.6585
    sd = (p * (1 - p) / trials) ** 0.5
    assert abs(caught / trials - p) < 4 * sd


def test_cli_and_signed_challenge_log(store, tmp_path, capsys):
    def cli(*argv):
        rc = main(["kb", *argv])
        out = capsys.readouterr()
        return rc, out.out + out.err
    db, cl, log, key = str(store.path), str(tmp_path / "client.json"), str(tmp_path / "ledger.db"), tmp_path / "c.pem"
    save_private_key(generate_key(), key)
    store.close()
    assert cli("challenge", cl, "--setup", db)[0] == 0
    assert oct(os.stat(cl).st_mode & 0o777) == "0o600"
    assert cli("challenge", cl, "-c", "32", "--out", str(tmp_path / "ch.json"))[0] == 0
    assert cli("prove", db, str(tmp_path / "ch.json"), "--out", str(tmp_path / "pr.json"))[0] == 0
    rc, out = cli("challenge", cl, "--check", str(tmp_path / "ch.json"), str(tmp_path / "pr.json"),
                  "--log", log, "--key", str(key))
    assert rc == 0 and "proved possession of 32" in out
    c = sqlite3.connect(db)
    c.execute("DELETE FROM blobs")                                 # the store loses everything
    c.commit()
    assert cli("challenge", cl, "-c", "32", "--out", str(tmp_path / "ch2.json"))[0] == 0
    assert cli("prove", db, str(tmp_path / "ch2.json"), "--out", str(tmp_path / "pr2.json"))[0] == 0
    rc, out = cli("challenge", cl, "--check", str(tmp_path / "ch2.json"), str(tmp_path / "pr2.json"),
                  "--log", log, "--key", str(key))
    assert rc == 2 and "lacks challenged entry" in out
    entries = ChallengeLog(log).entries()
    assert [e.ok for e in entries] == [True, False]
    ch2 = Challenge.from_json(json.loads((tmp_path / "ch2.json").read_text()))
    assert entries[1].nonce == ch2.nonce.hex()
    c = sqlite3.connect(log)
    c.execute("UPDATE pdp_challenges SET body = replace(body, '\"ok\": false', '\"ok\": true') WHERE seq = 2")
    c.commit()
    with pytest.raises(IntegrityError, match="row 2"):
        ChallengeLog(log).entries()
