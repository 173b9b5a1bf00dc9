"""Access control over knowledge operations with casbin: RBAC + ABAC + purpose, deny by default.

Request: ``(subject, object, action, purpose, env)``.  A policy line is
``p, role_or_user, object_pattern, action, purpose, condition, allow|deny`` where
``object_pattern`` uses casbin ``keyMatch`` (``codecs/*``), ``condition`` is a casbin ``eval``
expression over ``r.env`` attributes (ABAC, e.g. ``r.env.clearance >= 2``; ``True`` for none),
and purposes form a hierarchy (``g2, link-setup, operations``: a link-setup purpose is an
operations purpose).  ``g, user, role`` assigns roles (RBAC).  Any deny wins; no allow -> deny.
Actions: ``read``, ``publish``, ``grant``, ``read_audit``.  Policies persist in the KB's SQLite file.
"""

from __future__ import annotations

import sqlite3
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casbin
from simpleeval import AttributeDoesNotExist

__all__ = ["ACTIONS", "MODEL", "Decision", "AccessPolicy"]

ACTIONS = ("read", "publish", "grant", "read_audit")

MODEL = """
[request_definition]
r = sub, obj, act, purpose, env

[policy_definition]
p = sub, obj, act, purpose, cond, eft

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act && g2(r.purpose, p.purpose) && eval(p.cond)
"""

_TABLE = "CREATE TABLE IF NOT EXISTS policies (ptype TEXT, v0 TEXT, v1 TEXT, v2 TEXT, v3 TEXT, v4 TEXT, v5 TEXT)"


@dataclass(frozen=True)
class Decision:
    """One access decision: ``allowed`` and the policy line that decided it (empty: default deny)."""

    subject: str
    obj: str
    action: str
    purpose: str
    allowed: bool
    rule: tuple[str, ...]


class AccessPolicy:
    """Casbin enforcer whose policy lines live in table ``policies`` of ``conn``'s database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute(_TABLE)
        model = casbin.Model()
        model.load_model_from_text(MODEL)
        self.enforcer = casbin.Enforcer(model)
        for ptype, *vals in conn.execute("SELECT * FROM policies ORDER BY rowid"):
            self._load(ptype, [v for v in vals if v is not None])

    def _load(self, ptype: str, vals: list[str]) -> None:
        if ptype == "p":
            self.enforcer.add_policy(*vals)
        else:
            self.enforcer.add_named_grouping_policy(ptype, *vals)

    def _store(self, ptype: str, vals: list[str]) -> None:
        row = (ptype, *vals, *([None] * (6 - len(vals))))
        self.conn.execute("INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        self._load(ptype, vals)

    def allow(self, who: str, obj: str, action: str, purpose: str, cond: str = "True") -> None:
        """Add an allow rule (``who`` is a user or role)."""
        self._rule(who, obj, action, purpose, cond, "allow")

    def deny(self, who: str, obj: str, action: str, purpose: str, cond: str = "True") -> None:
        """Add a deny rule (deny overrides any allow)."""
        self._rule(who, obj, action, purpose, cond, "deny")

    def _rule(self, who: str, obj: str, action: str, purpose: str, cond: str, eft: str) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        if not all(isinstance(x, str) and x for x in (who, obj, purpose, cond)):
            raise ValueError("policy fields who, obj, purpose and cond must be non-empty strings")
        self._store("p", [who, obj, action, purpose, cond, eft])

    def assign(self, user: str, role: str) -> None:
        """RBAC: ``user`` gets ``role`` (roles may nest: assign(role, parent_role))."""
        self._store("g", [user, role])

    def sub_purpose(self, purpose: str, parent: str) -> None:
        """Purpose hierarchy: ``purpose`` is a kind of ``parent``."""
        self._store("g2", [purpose, parent])

    def roles(self, user: str) -> list[str]:
        """All roles of ``user`` (transitively)."""
        return self.enforcer.get_implicit_roles_for_user(user)

    def decide(self, subject: str, obj: str, action: str, purpose: str,
               env: Mapping[str, Any] | None = None) -> Decision:
        """Evaluate one request; ``env`` holds ABAC attributes read by conditions as ``r.env.<name>``."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        ns = types.SimpleNamespace(**dict(env or {}))
        if not self.enforcer.get_policy():  # no rule at all: deny by default
            return Decision(subject, obj, action, purpose, False, ())
        try:
            ok, rule = self.enforcer.enforce_ex(subject, obj, action, purpose, ns)
        except (AttributeError, AttributeDoesNotExist):  # a condition reads an attribute the request did not supply: deny
            ok, rule = False, []
        return Decision(subject, obj, action, purpose, bool(ok), tuple(rule) if ok else ())
