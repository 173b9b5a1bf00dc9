"""Access decisions for a signed policy (RBAC, ABAC, purpose), authenticated requests, per-role
encryption, and the signed audit chain."""

import sqlite3

import pytest

from semguard.knowledge import AccessDenied, Guard, IntegrityError, KnowledgeBase, generate_key
from semguard.knowledge.access import allow, assign, deny, inherit, sub_purpose
from semguard.knowledge.crypto import decrypt_entry, encrypt_entry, new_role_key
from semguard.knowledge.principals import AuthenticationError, Principal

POLICY = [
    assign("alice", "engineer"), assign("bob", "analyst"), assign("carol", "admin"),
    inherit("admin", "engineer"),                      # role hierarchy
    sub_purpose("link-setup", "operations"),
    allow("engineer", "codecs/*", "read", "operations"),
    allow("engineer", "codecs/*", "publish", "maintenance", "r.env.clearance >= 2"),
    allow("analyst", "vocab/*", "read", "research"),
    deny("analyst", "vocab/secret*", "read", "research"),
    allow("admin", "role:*", "grant", "administration"),
    allow("admin", "audit", "read_audit", "oversight"),
    deny("engineer", "codecs/*", "publish", "maintenance", "r.env.hour < 6"),  # no night pushes
]


@pytest.fixture()
def guard(tmp_path):
    key = generate_key()
    owner = Principal("owner", key)
    g = Guard(KnowledgeBase.init(tmp_path / "kb.db", key), operator=key)
    people = {n: Principal(n, generate_key()) for n in ("alice", "bob", "carol", "dave")}
    people["owner"] = owner
    for n in ("alice", "bob", "carol", "dave"):
        g.add_member(owner, n, people[n].public, publisher=n == "alice")
    g.set_policy(owner, POLICY)
    return g, people


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
    ("admin", "grant", "role:analyst", "administration", {}, False),    # a name is not a role
]


@pytest.mark.parametrize("subject,action,obj,purpose,env,expected", TABLE)
def test_policy_table(guard, subject, action, obj, purpose, env, expected):
    g, _ = guard
    assert g.policy.decide(subject, obj, action, purpose, env).allowed is expected


def _req(g, who, action, obj, purpose, env=None):
    return who.request(g.kb.kb_id, action, obj, purpose, env)


def test_guarded_operations_are_audited(guard):
    g, p = guard
    alice, bob, carol = p["alice"], p["bob"], p["carol"]
    n0 = len(g.audit(_req(g, carol, "read_audit", "audit", "oversight")))
    g.publish(alice, {"codecs/adjscc": b"weights"}, purpose="maintenance", env={"clearance": 2, "hour": 10})
    assert g.read(_req(g, alice, "read", "codecs/adjscc", "operations")) == b"weights"
    with pytest.raises(AccessDenied, match="default-deny"):
        g.read(_req(g, bob, "read", "codecs/adjscc", "operations"))
    with pytest.raises(AccessDenied, match="deny"):
        g.grant(alice, "alice", "admin", purpose="administration")
    rows = g.audit(_req(g, carol, "read_audit", "audit", "oversight"))[n0:]
    assert [(r.subject, r.action, r.allowed) for r in rows] == [
        ("alice", "publish", True), ("alice", "read", True), ("bob", "read", False),
        ("alice", "grant", False), ("carol", "read_audit", True)]
    assert '"default-deny"' in rows[2].rule
    # reopen: policy persisted in the signed history
    g2 = Guard(KnowledgeBase(g.kb.path))
    assert g2.policy.decide("carol", "codecs/x", "read", "operations").allowed
    c = sqlite3.connect(g.kb.path)
    c.execute("UPDATE audit_log SET allowed = 1 WHERE seq = ?", (n0 + 3,))  # hide the denied read
    c.commit()
    with pytest.raises(IntegrityError, match=f"audit log row {n0 + 3}"):
        g.verify_audit()


def test_forged_or_replayed_request_refused(guard):
    g, p = guard
    req = _req(g, p["alice"], "read", "codecs/x", "operations")
    forged = req.__class__(**{**req.__dict__, "subject": "carol"})      # alice's signature, carol's name
    with pytest.raises(AuthenticationError, match="not signed by its key"):
        g.read(forged)
    stranger = Principal("mallory", generate_key())
    with pytest.raises(AuthenticationError, match="not a member"):
        g.read(_req(g, stranger, "read", "codecs/x", "operations"))
    g.kb.publish(p["owner"].key, {"codecs/x": b"1"})
    assert g.read(req) == b"1"
    with pytest.raises(IntegrityError, match="replayed"):
        g.read(req)


def test_restricted_entries_encrypted_per_role(guard):
    g, p = guard
    alice = p["alice"]
    keys = {"engineer": new_role_key(), "analyst": new_role_key()}
    g.publish(alice, {"codecs/secret": b"top secret weights"}, purpose="maintenance",
              env={"clearance": 2, "hour": 10}, restricted={"codecs/secret": {"engineer": keys["engineer"]}})
    stored = g.kb.get("codecs/secret")
    assert b"top secret" not in stored
    assert g.read(_req(g, alice, "read", "codecs/secret", "operations"),
                  role_keys={"engineer": keys["engineer"]}) == b"top secret weights"
    with pytest.raises(AccessDenied, match="holds no key"):
        g.read(_req(g, alice, "read", "codecs/secret", "operations"), role_keys={"analyst": keys["analyst"]})
    with pytest.raises(AccessDenied, match="wrong key"):
        decrypt_entry("codecs/secret", stored, "engineer", keys["analyst"])
    env = encrypt_entry("a", b"data", {"engineer": keys["engineer"]})
    with pytest.raises(IntegrityError, match="GCM"):
        decrypt_entry("b", env, "engineer", keys["engineer"])  # moved to another name


def test_guard_attributes_override_self_asserted_claims(guard):
    g, p = guard
    alice = p["alice"]
    strict = Guard(g.kb, operator=p["owner"].key, attributes=lambda req: {"clearance": 1})
    with pytest.raises(AccessDenied, match="may not publish"):   # alice claims clearance 3; the Guard says 1
        strict.publish(alice, {"codecs/x": b"1"}, purpose="maintenance", env={"clearance": 3, "hour": 12})
    assert g.kb.version == 5
    strict.attributes = {"clearance": 2}
    strict.publish(alice, {"codecs/x": b"1"}, purpose="maintenance", env={"clearance": 0, "hour": 12})
    assert g.kb.version == 6
