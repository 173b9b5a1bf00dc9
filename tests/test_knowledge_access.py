"""Access decisions for a policy table (RBAC, ABAC, purpose), per-role encryption, audit chain."""

import sqlite3

import pytest

from semguard.knowledge import AccessDenied, Guard, IntegrityError, KnowledgeBase, generate_key
from semguard.knowledge.audit import verify_audit
from semguard.knowledge.crypto import decrypt_entry, encrypt_entry, new_role_key


@pytest.fixture()
def guard(tmp_path):
    key = generate_key()
    g = Guard(KnowledgeBase.init(tmp_path / "kb.db", key))
    p = g.policy
    p.assign("alice", "engineer")
    p.assign("bob", "analyst")
    p.assign("carol", "admin")
    p.assign("admin", "engineer")                      # role hierarchy
    p.sub_purpose("link-setup", "operations")
    p.allow("engineer", "codecs/*", "read", "operations")
    p.allow("engineer", "codecs/*", "publish", "maintenance", "r.env.clearance >= 2")
    p.allow("analyst", "vocab/*", "read", "research")
    p.deny("analyst", "vocab/secret*", "read", "research")
    p.allow("admin", "role:*", "grant", "administration")
    p.allow("admin", "audit", "read_audit", "oversight")
    p.deny("engineer", "codecs/*", "publish", "maintenance", "r.env.hour < 6")  # no night pushes
    return g, key


TABLE = [  # subject, action, object, purpose, env, expected
    ("alice", "read", "codecs/adjscc", "operations", {}, True),
    ("alice", "read", "codecs/adjscc", "link-setup", {}, True),          # sub-purpose
    ("alice", "read", "codecs/adjscc", "marketing", {}, False),          # wrong purpose
    ("alice", "read", "vocab/labels", "research", {}, False),            # no rule -> deny
    ("alice", "publish", "codecs/adjscc", "maintenance", {"clearance": 2, "hour": 12}, True),
    ("alice", "publish", "codecs/adjscc", "maintenance", {"clearance": 1, "hour": 12}, False),  # ABAC
    ("alice", "publish", "codecs/adjscc", "maintenance", {"clearance": 3, "hour": 3}, False),   # deny wins
    ("alice", "publish", "codecs/adjscc", "maintenance", {}, False),     # missing attribute -> deny
    ("bob", "read", "vocab/labels", "research", {}, True),
    ("bob", "read", "vocab/secret-labels", "research", {}, False),       # explicit deny
    ("bob", "read", "codecs/adjscc", "operations", {}, False),
    ("carol", "read", "codecs/adjscc", "operations", {}, True),          # inherited from engineer
    ("carol", "grant", "role:analyst", "administration", {}, True),
    ("alice", "grant", "role:analyst", "administration", {}, False),
    ("carol", "read_audit", "audit", "oversight", {}, True),
    ("bob", "read_audit", "audit", "oversight", {}, False),
    ("mallory", "read", "codecs/adjscc", "operations", {}, False),       # unknown subject
]


@pytest.mark.parametrize("subject,action,obj,purpose,env,expected", TABLE)
def test_policy_table(guard, subject, action, obj, purpose, env, expected):
    g, _ = guard
    assert g.policy.decide(subject, obj, action, purpose, env).allowed is expected


def test_guarded_operations_are_audited(guard):
    g, key = guard
    g.publish("alice", key, {"codecs/adjscc": b"weights"}, purpose="maintenance",
              env={"clearance": 2, "hour": 10})
    assert g.read("alice", "codecs/adjscc", purpose="operations") == b"weights"
    with pytest.raises(AccessDenied, match="deny by default"):
        g.read("bob", "codecs/adjscc", purpose="operations")
    with pytest.raises(AccessDenied):
        g.grant("alice", "alice", "admin", purpose="administration")
    g.grant("carol", "dave", "analyst", purpose="administration")
    rows = g.audit("carol", purpose="oversight")
    assert [(r.subject, r.action, r.allowed) for r in rows] == [
        ("alice", "publish", True), ("alice", "read", True), ("bob", "read", False),
        ("alice", "grant", False), ("carol", "grant", True), ("carol", "read_audit", True)]
    # reopen: policies persisted, dave now an analyst
    g2 = Guard(KnowledgeBase(g.kb.path))
    assert g2.policy.decide("dave", "vocab/x", "read", "research").allowed
    c = sqlite3.connect(g.kb.path)
    c.execute("UPDATE audit SET allowed = 1 WHERE seq = 3")  # hide the denied read
    c.commit()
    with pytest.raises(IntegrityError, match="audit log row 3"):
        verify_audit(g.kb.conn)


def test_restricted_entries_encrypted_per_role(guard):
    g, key = guard
    keys = {"engineer": new_role_key(), "analyst": new_role_key()}
    g.publish("alice", key, {"codecs/secret": b"top secret weights"}, purpose="maintenance",
              env={"clearance": 2, "hour": 10}, restricted={"codecs/secret": {"engineer": keys["engineer"]}})
    stored = g.kb.get("codecs/secret")
    assert b"top secret" not in stored
    assert g.read("alice", "codecs/secret", purpose="operations",
                  role_keys={"engineer": keys["engineer"]}) == b"top secret weights"
    with pytest.raises(AccessDenied, match="holds no key"):
        g.read("alice", "codecs/secret", purpose="operations", role_keys={"analyst": keys["analyst"]})
    with pytest.raises(AccessDenied, match="wrong key"):
        decrypt_entry("codecs/secret", stored, "engineer", keys["analyst"])
    env = encrypt_entry("a", b"data", {"engineer": keys["engineer"]})
    with pytest.raises(IntegrityError, match="GCM"):
        decrypt_entry("b", env, "engineer", keys["engineer"])  # moved to another name
