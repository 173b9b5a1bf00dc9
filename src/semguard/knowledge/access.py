"""Access control over knowledge operations with casbin: RBAC + ABAC + purpose, deny by default.

Request: ``(subject, object, action, purpose, env)``; ``subject`` is an authenticated principal
name (:mod:`semguard.knowledge.principals`).  Policy lines (JSON lists, kept in the signed entry
``_policy`` of the version history, :mod:`semguard.knowledge.reserved`):

* ``["p", who, object_pattern, action, purpose, condition, "allow"|"deny"]`` — ``who`` is a role
  name, or ``user:NAME`` for one principal; ``object_pattern`` uses casbin ``keyMatch``
  (``codecs/*``); ``condition`` is a casbin ``eval`` expression over ``r.env`` (ABAC, e.g.
  ``r.env.clearance >= 2``; ``True`` for none).
* ``["g", user, role]`` — principal ``user`` holds ``role`` (RBAC).
* ``["gr", role, parent]`` — ``role`` inherits ``parent``'s rules.
* ``["g2", purpose, parent]`` — a ``purpose`` request is also a ``parent`` request.

Principals and roles live in separate namespaces (``user:`` and ``role:`` inside casbin), so a
principal named like a role holds nothing unless granted.  Any deny wins; no allow -> deny.
Actions: ``read``, ``publish``, ``grant``, ``read_audit``.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import casbin
from simpleeval import AttributeDoesNotExist

__all__ = ["ACTIONS", "MODEL", "Decision", "AccessPolicy", "parse_policy", "allow", "deny", "assign",
           "inherit", "sub_purpose", "policy_blob"]

ACTIONS = ("read", "publish", "grant", "read_audit")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

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


@dataclass(frozen=True)
class Decision:
    """One access decision: ``allowed`` and the policy line that decided it.

    ``rule`` is the matched allow line, the deny line that fired, or ``("default-deny",)`` when
    no line matched (or ``("owner",)`` for the owner's unconditional rights).
    """

    subject: str
    obj: str
    action: str
    purpose: str
    allowed: bool
    rule: tuple[str, ...]


def _name(what: str, v: object) -> str:
    if not isinstance(v, str) or not _NAME.fullmatch(v):
        raise ValueError(f"policy {what} {v!r}: expected a name matching {_NAME.pattern}")
    return v


def _check_line(i: int, line: object) -> tuple[str, ...]:
    if not isinstance(line, list | tuple) or not line or not all(isinstance(x, str) for x in line):
        raise ValueError(f"policy line {i}: expected a list of strings, got {line!r}")
    kind, *vals = line
    want = {"p": 6, "g": 2, "gr": 2, "g2": 2}
    if kind not in want or len(vals) != want[kind]:
        raise ValueError(f"policy line {i}: expected one of p (6 fields), g, gr, g2 (2 fields); got {line!r}")
    if kind == "p":
        who, obj, act, purpose, cond, eft = vals
        _name("subject", who[5:] if who.startswith("user:") else who)
        if act not in ACTIONS:
            raise ValueError(f"policy line {i}: action must be one of {ACTIONS}, got {act!r}")
        if eft not in ("allow", "deny"):
            raise ValueError(f"policy line {i}: effect must be allow or deny, got {eft!r}")
        if not obj or not cond:
            raise ValueError(f"policy line {i}: object pattern and condition must be non-empty")
        _name("purpose", purpose)
    else:
        for v in vals:
            _name("name", v)
    return (kind, *vals)


def parse_policy(blob: bytes) -> tuple[tuple[str, ...], ...]:
    """Validated policy lines from a ``_policy`` blob (ValueError naming the bad line)."""
    try:
        data = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"entry '_policy': not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError("entry '_policy': expected a JSON list of policy lines")
    lines = tuple(_check_line(i, x) for i, x in enumerate(data))
    if len(set(lines)) != len(lines):
        raise ValueError("entry '_policy': duplicate lines")
    return lines


def allow(who: str, obj: str, action: str, purpose: str, cond: str = "True") -> tuple[str, ...]:
    """An allow line (``who``: role name or ``user:NAME``)."""
    return _check_line(0, ["p", who, obj, action, purpose, cond, "allow"])


def deny(who: str, obj: str, action: str, purpose: str, cond: str = "True") -> tuple[str, ...]:
    """A deny line (deny overrides any allow)."""
    return _check_line(0, ["p", who, obj, action, purpose, cond, "deny"])


def assign(user: str, role: str) -> tuple[str, ...]:
    """Principal ``user`` holds ``role``."""
    return _check_line(0, ["g", user, role])


def inherit(role: str, parent: str) -> tuple[str, ...]:
    """``role`` inherits every rule of ``parent``."""
    return _check_line(0, ["gr", role, parent])


def sub_purpose(purpose: str, parent: str) -> tuple[str, ...]:
    """A ``purpose`` request also counts as a ``parent`` request."""
    return _check_line(0, ["g2", purpose, parent])


def policy_blob(lines: Iterable[Iterable[str]]) -> bytes:
    """Canonical ``_policy`` bytes (lines validated, de-duplicated, in a stable order)."""
    checked = sorted({_check_line(i, list(x)) for i, x in enumerate(lines)})
    return json.dumps([list(x) for x in checked], separators=(",", ":")).encode()


def _sub(who: str) -> str:
    return who if who.startswith("user:") else f"role:{who}"


class AccessPolicy:
    """Casbin enforcer over validated policy lines (one version's ``_policy``)."""

    def __init__(self, lines: Iterable[tuple[str, ...]] = ()) -> None:
        self.lines = tuple(lines)
        model = casbin.Model()
        model.load_model_from_text(MODEL)
        self.enforcer = casbin.Enforcer(model)
        for kind, *v in self.lines:
            if kind == "p":
                self.enforcer.add_policy(_sub(v[0]), *v[1:])
            elif kind == "g":
                self.enforcer.add_named_grouping_policy("g", f"user:{v[0]}", f"role:{v[1]}")
            elif kind == "gr":
                self.enforcer.add_named_grouping_policy("g", f"role:{v[0]}", f"role:{v[1]}")
            else:
                self.enforcer.add_named_grouping_policy("g2", *v)

    def known_roles(self) -> set[str]:
        """Roles some line gives rules to or that another role inherits."""
        roles = {v[0] for k, *v in self.lines if k == "p" and not v[0].startswith("user:")}
        return roles | {v[1] for k, *v in self.lines if k == "gr"} | {v[0] for k, *v in self.lines if k == "gr"}

    def roles(self, user: str) -> list[str]:
        """All roles of principal ``user`` (transitively), without the namespace prefix."""
        return sorted(r[5:] for r in self.enforcer.get_implicit_roles_for_user(f"user:{user}")
                      if r.startswith("role:"))

    def decide(self, subject: str, obj: str, action: str, purpose: str,
               env: Mapping[str, Any] | None = None) -> Decision:
        """Evaluate one request by principal ``subject``; ``env`` holds ABAC attributes (``r.env.<name>``)."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        ns = types.SimpleNamespace(**dict(env or {}))
        if not self.enforcer.get_policy():  # no rule at all: deny by default
            return Decision(subject, obj, action, purpose, False, ("default-deny",))
        try:
            ok, rule = self.enforcer.enforce_ex(f"user:{subject}", obj, action, purpose, ns)
        except (AttributeError, AttributeDoesNotExist) as exc:  # condition reads an attribute not supplied
            return Decision(subject, obj, action, purpose, False, ("missing-attribute", str(exc)))
        return Decision(subject, obj, action, purpose, bool(ok), tuple(rule) if rule else ("default-deny",))
