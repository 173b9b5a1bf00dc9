"""The five flaws an audit found around the knowledge base: each attack reproduced, then refused.

1. a subject named like a role held that role, and ``--as NAME`` needed no key;
2. policy rows were unsigned SQLite rows, the audit chain unkeyed (tail deletion / recompute passed);
3. ``kb anchor`` accepted a stale copy;
4. a malformed ``_publishers`` froze the base; delegated publishers could delegate further;
5. no identity pinning: a base rebuilt under another key verified and was adopted by a new reader.
"""

import hashlib
import json
import shutil
import sqlite3

import pytest

from semguard.cli.main import main
from semguard.knowledge import (
    Guard, IdentityError, IntegrityError, KnowledgeBase, UnauthorizedError, generate_key, public_bytes, sync,
)
from semguard.knowledge.access import allow, assign
from semguard.knowledge.principals import AuthenticationError, Principal


def _cli(capsys, *argv):
    rc = main(["kb", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _sql(path, q, *args):
    c = sqlite3.connect(path)
    c.execute(q, args)
    c.commit()
    c.close()


@pytest.fixture()
def base(tmp_path):
    key = generate_key()
    kb = KnowledgeBase.init(tmp_path / "kb.db", key)
    owner = Principal("owner", key)
    g = Guard(kb, operator=key)
    alice = Principal("alice", generate_key())
    g.add_member(owner, "alice", alice.public)
    g.set_policy(owner, [allow("admin", "role:*", "grant", "administration"),
                         allow("engineer", "codecs/*", "read", "operations"),
                         allow("auditor", "audit", "read_audit", "oversight")])
    return g, owner, alice


def test_flaw1_role_name_is_not_a_grant_and_as_needs_the_key(base, tmp_path, capsys):
    g, owner, _ = base
    # a member literally named "admin" holds no role "admin"
    admin_named = Principal("admin", generate_key())
    g.add_member(owner, "admin", admin_named.public)
    assert not g.policy.decide("admin", "role:admin", "grant", "administration").allowed
    with pytest.raises(Exception, match="default-deny"):
        g.grant(admin_named, "alice", "admin", purpose="administration")
    # the CLI attack of the audit: `kb grant eve admin --as admin` without admin's key
    db = str(g.kb.path)
    rc, _, err = _cli(capsys, "grant", db, "eve", "admin", "--as", "admin")
    assert rc == 2 and "--key" in err
    other = tmp_path / "other.pem"
    from semguard.knowledge import save_private_key
    save_private_key(generate_key(), other)
    rc, _, err = _cli(capsys, "grant", db, "alice", "admin", "--as", "admin", "--key", str(other))
    assert rc == 2 and "not that principal's key" in err
    assert "admin" not in Guard(KnowledgeBase(db)).policy.roles("alice")
    # a request that names a principal but is signed by another key is refused
    req = Principal("admin", generate_key()).request(g.kb.kb_id, "read", "codecs/x", "operations")
    with pytest.raises(AuthenticationError):
        g.read(req)


def test_flaw2_policy_rows_and_audit_log_cannot_be_edited_behind_the_owner(base, capsys):
    g, owner, alice = base
    db = g.kb.path
    # an allow row inserted with sqlite into the old policy table is not honoured
    _sql(db, "CREATE TABLE IF NOT EXISTS policies (ptype TEXT, v0 TEXT, v1 TEXT, v2 TEXT, v3 TEXT, v4 TEXT, v5 TEXT)")
    _sql(db, "INSERT INTO policies VALUES ('p', 'alice', 'codecs/*', 'read', 'operations', 'True', 'allow')")
    g2 = Guard(KnowledgeBase(db), operator=owner.key)
    assert not g2.policy.decide("alice", "codecs/x", "read", "operations").allowed
    # editing the signed policy entry breaks verification
    man = g2.kb.manifest(g2.kb.version)
    forged = json.dumps([list(allow("user:alice", "*", "read", "operations"))]).encode()
    _sql(db, "UPDATE blobs SET data = ? WHERE hash = ?", forged, man["_policy"])
    rc, _, err = _cli(capsys, "verify", str(db))
    assert rc == 2 and "_policy" in err


def test_flaw2_audit_tail_truncation_and_recompute_detected(base, capsys):
    g, owner, alice = base
    g.grant(owner, "alice", "auditor", purpose="administration")      # owner grant: audited
    rows = g.audit(alice.request(g.kb.kb_id, "read_audit", "audit", "oversight"))
    assert any(r.subject == "owner" and r.obj == "role:auditor" and '"owner"' in r.rule for r in rows)
    with pytest.raises(Exception, match="default-deny"):
        g.read(alice.request(g.kb.kb_id, "read", "codecs/x", "operations"))
    last = g.audit(alice.request(g.kb.kb_id, "read_audit", "audit", "oversight"))[-2]
    assert (last.subject, last.allowed, json.loads(last.rule)) == ("alice", False, ["default-deny"])
    g.kb.publish(owner.key, {"x": b"1"})  # any later guarded publish binds the head; do one:
    g.grant(owner, "alice", "engineer", purpose="administration")
    n = g.verify_audit()
    db = g.kb.path
    # (a) delete the tail
    c = sqlite3.connect(db)
    saved = c.execute("SELECT * FROM audit_log WHERE seq = ?", (n,)).fetchone()
    c.execute("DELETE FROM audit_log WHERE seq = ?", (n,))
    c.commit()
    with pytest.raises(IntegrityError, match="truncated"):
        Guard(KnowledgeBase(db)).verify_audit()
    c.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", saved)
    c.commit()
    assert Guard(KnowledgeBase(db)).verify_audit() == n
    # (b) delete a row in the middle and recompute the unkeyed chain: signatures no longer verify
    rows = c.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
    c.execute("DELETE FROM audit_log")
    prev = bytes(32)
    from semguard.knowledge.audit import AuditRow, _row_hash
    for i, r in enumerate([r for r in rows if r[0] != 3], start=1):
        row = AuditRow(i, r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], bytes(r[10]).hex())
        h = _row_hash(prev, row)
        c.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (i, *r[1:11], prev, h, r[13]))
        prev = h
    c.commit()
    with pytest.raises(IntegrityError, match="signature does not verify"):
        Guard(KnowledgeBase(db)).verify_audit()
    rc, _, err = _cli(capsys, "verify", str(db))
    assert rc == 2 and "audit log row" in err


def test_flaw3_stale_copy_against_ledger_is_an_error(tmp_path, capsys, monkeypatch):
    db, key, w = str(tmp_path / "kb.db"), str(tmp_path / "owner.pem"), tmp_path / "w.bin"
    w.write_bytes(b"w")
    led = str(tmp_path / "ledger.db")
    assert _cli(capsys, "init", db, "--key", key)[0] == 0
    for name in ("a", "b"):
        assert _cli(capsys, "publish", db, "--key", key, "--put", f"{name}={w}")[0] == 0
    kb = KnowledgeBase(db)
    kb.close()
    shutil.copy(db, tmp_path / "v2.db")  # a restored old copy
    assert _cli(capsys, "publish", db, "--key", key, "--put", f"c={w}")[0] == 0
    assert _cli(capsys, "anchor", db, "--ledger", led, "--register", "--key", key)[0] == 0
    rc, out, err = _cli(capsys, "anchor", str(tmp_path / "v2.db"), "--ledger", led)
    assert rc == 2 and "stale" in err and "OK" not in out
    rc, out, err = _cli(capsys, "verify", str(tmp_path / "v2.db"), "--ledger", led)
    assert rc == 2 and "stale" in err
    # truncated: delete the newest version's rows from a copy
    shutil.copy(db, tmp_path / "trunc.db")
    _sql(tmp_path / "trunc.db", "DELETE FROM versions WHERE version = 3")
    _sql(tmp_path / "trunc.db", "DELETE FROM entries WHERE version = 3")
    rc, _, err = _cli(capsys, "verify", str(tmp_path / "trunc.db"), "--ledger", led)
    assert rc == 2 and "version 2, the ledger anchors version 3" in err
    assert _cli(capsys, "verify", db, "--ledger", led)[0] == 0


def test_flaw4_malformed_publishers_refused_and_no_further_delegation(kb2):
    kb, owner = kb2
    for bad in (b"not json", b'{"a": 1}', b'["zz"]', json.dumps(["00" * 32]).encode(),
                json.dumps([public_bytes(owner).hex()]).encode()):
        with pytest.raises(ValueError, match="_publishers"):
            kb.publish(owner, {"_publishers": bad})
    assert kb.version == 2 and KnowledgeBase(kb.path).verify().version == 2
    kb.publish(owner, {"x": b"owner can still publish"})
    alice, bob = generate_key(), generate_key()
    kb.publish(owner, {"_publishers": json.dumps([public_bytes(alice).hex()]).encode()})
    with pytest.raises(UnauthorizedError, match="only the owner may change '_publishers'"):
        kb.publish(alice, {"_publishers": json.dumps([public_bytes(alice).hex(), public_bytes(bob).hex()]).encode()})
    kb.publish(alice, {"weights": b"delegated content is fine"})
    # a malformed record smuggled in by SQL (re-signed by the owner) is reported by verify
    v = kb.version
    bad = b"not a list"
    h = hashlib.sha256(bad).digest()
    _sql(kb.path, "INSERT INTO blobs VALUES (?, ?)", h, bad)
    _sql(kb.path, "UPDATE entries SET hash = ? WHERE version = ? AND name = '_publishers'", h, v)
    with pytest.raises(IntegrityError):
        KnowledgeBase(kb.path)


def test_flaw5_identity_pinning_and_trust_on_first_use(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEMGUARD_TRUST_FILE", str(tmp_path / "known.json"))
    key, evil = generate_key(), generate_key()
    src = tmp_path / "src.db"
    good = KnowledgeBase.init(src, key)
    good.publish(key, {"codec": b"good"})
    kb_id, owner_hex = good.kb_id, public_bytes(key).hex()
    good.close()
    assert _cli(capsys, "verify", str(src), "--kb-id", kb_id, "--owner", owner_hex)[0] == 0
    rc, out, _ = _cli(capsys, "sync", str(tmp_path / "r1.db"), str(src))
    assert rc == 0 and "trust on first use" in out
    # the source is rebuilt whole under an attacker's key: it verifies on its own ...
    src.unlink()
    forged = KnowledgeBase.init(src, evil)
    forged.publish(evil, {"codec": b"evil"})
    forged.close()
    assert _cli(capsys, "verify", str(src))[0] == 0
    # ... but not against the pinned identity, and a new reader refuses it
    rc, _, err = _cli(capsys, "verify", str(src), "--kb-id", kb_id, "--owner", owner_hex)
    assert rc == 2 and "pinned" in err
    rc, _, err = _cli(capsys, "sync", str(tmp_path / "r2.db"), str(src))
    assert rc == 2 and "identity changed" in err and not (tmp_path / "r2.db").exists()
    rc, _, err = _cli(capsys, "sync", str(tmp_path / "r3.db"), str(src), "--pin", f"{kb_id}:{owner_hex}")
    assert rc == 2 and "pinned" in err and not (tmp_path / "r3.db").exists()
    with pytest.raises(IdentityError):
        sync(KnowledgeBase(tmp_path / "r1.db"), KnowledgeBase(src), expected_kb_id=kb_id)


def test_flaw2_delegated_grants_verify_but_other_policy_edits_need_the_owner(base, tmp_path):
    g, owner, alice = base
    carol = Principal("carol", generate_key())
    g.add_member(owner, "carol", carol.public, publisher=True)
    g.grant(owner, "carol", "admin", purpose="administration")
    g.grant(carol, "alice", "engineer", purpose="administration")      # a delegated, policy-checked grant
    assert "engineer" in g.policy.roles("alice")
    reader = KnowledgeBase.init_replica(tmp_path / "reader.db", g.kb.genesis())
    sync(reader, g.kb)                                                  # a fresh reader replays the checks
    assert KnowledgeBase(g.kb.path).verify().version == reader.version
    # carol (publisher, admin) may not rewrite the policy itself, nor grant without the note's purpose
    lines = [*g.policy.lines, allow("user:carol", "*", "read", "operations")]
    from semguard.knowledge.access import policy_blob
    with pytest.raises(UnauthorizedError, match="only add role grants"):
        g.kb.publish(carol.key, {"_policy": policy_blob(lines)}, note="grant:administration")
    with pytest.raises(UnauthorizedError, match="may not grant role 'admin'"):
        g.kb.publish(carol.key, {"_policy": policy_blob([*g.policy.lines, assign("alice", "admin")])},
                     note="grant:research")
