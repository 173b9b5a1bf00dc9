"""``semguard kb ...`` — the knowledge base from the shell.

Actions: init, member, policy, grant, audit, publish, verify, log, sync, anchor, challenge, prove.
Reading actions open the database read-only.  Errors are one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import sys
from pathlib import Path

from semguard.knowledge import (
    Guard, KnowledgeBase, KnowledgeError, generate_key, load_private_key, public_bytes, save_private_key, sync,
)
from semguard.knowledge.keys import key_id
from semguard.knowledge.principals import Principal
from semguard.knowledge.reserved import OWNER


def _passphrase() -> bytes | None:
    env = os.environ.get("SEMGUARD_KEY_PASSPHRASE")
    return env.encode() if env else None


def _key(path: str):
    return load_private_key(path, _passphrase())


def _git_worktree(path: Path) -> Path | None:
    for d in [path.resolve().parent, *path.resolve().parent.parents]:
        if (d / ".git").exists():
            return d
    return None


def _write_secret_file(path: Path, write) -> None:
    write(path)
    os.chmod(path, 0o600)
    top = _git_worktree(path)
    if top is not None:
        print(f"semguard kb: warning: {path} holds secret key material inside the git work tree {top}; "
              "keep it out of version control", file=sys.stderr)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``kb`` subcommand and its actions."""
    p = subparsers.add_parser("kb", help="signed, Merkle-proofed knowledge base of shared priors")
    sub = p.add_subparsers(dest="kb_cmd", required=True)
    a = sub.add_parser("init", help="create a knowledge base (and an owner key if --key does not exist)")
    a.add_argument("db")
    a.add_argument("--key", required=True, help="owner Ed25519 key (PEM, 0600; passphrase from "
                   "$SEMGUARD_KEY_PASSPHRASE if set)")
    a = sub.add_parser("member", help="owner: add (or --remove) a principal NAME with its public key")
    a.add_argument("db")
    a.add_argument("name")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--pub", help="the member's raw Ed25519 public key (64 hex)")
    g.add_argument("--new-key", help="generate the member's key pair and write the private key here (0600)")
    a.add_argument("--key", required=True, help="owner key")
    a.add_argument("--publisher", action="store_true", help="also let the member sign versions")
    a.add_argument("--remove", action="store_true")
    a = sub.add_parser("policy", help="owner: add policy lines (allow/deny WHO OBJECT ACTION PURPOSE, ...)")
    a.add_argument("db")
    a.add_argument("--key", required=True, help="owner key")
    a.add_argument("--allow", nargs=4, action="append", default=[], metavar=("WHO", "OBJ", "ACTION", "PURPOSE"))
    a.add_argument("--deny", nargs=4, action="append", default=[], metavar=("WHO", "OBJ", "ACTION", "PURPOSE"))
    a.add_argument("--cond", default="True", help="ABAC condition of the --allow/--deny lines")
    a.add_argument("--inherit", nargs=2, action="append", default=[], metavar=("ROLE", "PARENT"))
    a.add_argument("--sub-purpose", nargs=2, action="append", default=[], metavar=("PURPOSE", "PARENT"))
    a = sub.add_parser("grant", help="give member USER a ROLE, as principal --as NAME signing with --key")
    a.add_argument("db")
    a.add_argument("user")
    a.add_argument("role")
    a.add_argument("--key", help="the requesting principal's private key (required: requests are signed)")
    a.add_argument("--as", dest="subject", help="principal name (default: owner if --key is the owner key)")
    a.add_argument("--purpose", default="administration")
    a = sub.add_parser("publish", help="publish a new version: --put NAME=FILE ..., --delete NAME ...")
    a.add_argument("db")
    a.add_argument("--key", required=True)
    a.add_argument("--put", nargs="*", default=[], metavar="NAME=FILE")
    a.add_argument("--delete", nargs="*", default=[], metavar="NAME")
    a.add_argument("--note", default="")
    a = sub.add_parser("verify", help="verify every signature, chain link, Merkle root, blob and the audit log")
    a.add_argument("db")
    a.add_argument("--kb-id", help="pinned knowledge-base id: refuse any other")
    a.add_argument("--owner", help="pinned owner public key (64 hex): refuse any other")
    a.add_argument("--ledger", help="also check against this local ledger; a stale copy is an error")
    a = sub.add_parser("log", help="list versions")
    a.add_argument("db")
    a = sub.add_parser("sync", help="bring READER up to SOURCE (handshake, fetch with proofs)")
    a.add_argument("reader")
    a.add_argument("source")
    a.add_argument("--pin", metavar="KB_ID[:OWNER_HEX]", help="refuse a source with another identity")
    a.add_argument("--trust-file", help="trust-on-first-use file (default $SEMGUARD_TRUST_FILE or "
                   "~/.semguard/known_kbs.json)")
    a = sub.add_parser("anchor", help="check DB against a ledger; with --key, anchor its unanchored versions")
    a.add_argument("db")
    a.add_argument("--ledger", help="local ledger file (SQLite; created if absent)")
    a.add_argument("--register", action="store_true", help="register DB and its publishers in --ledger")
    a.add_argument("--rpc", help="EVM JSON-RPC URL (with --contract, --account; needs semguard[ledger])")
    a.add_argument("--contract")
    a.add_argument("--account", help="EVM account bound to the publisher key, unlocked at the node (or "
                   "sign locally with the hex key in $SEMGUARD_EVM_PRIVATE_KEY)")
    a.add_argument("--key", help="publisher Ed25519 key: anchor the versions not yet anchored")
    a = sub.add_parser("audit", help="show the verified audit log (read_audit request), or --checkpoint it")
    a.add_argument("db")
    a.add_argument("--key", help="the requesting principal's private key (required: requests are signed)")
    a.add_argument("--as", dest="subject", help="principal name (default: found from --key)")
    a.add_argument("--purpose", default="oversight")
    a.add_argument("--checkpoint", action="store_true", help="publish a version that binds the current head")
    a = sub.add_parser("challenge", help="PDP client: --setup DB, issue a challenge (-c), or --check a proof")
    a.add_argument("client", help="client state file (JSON with a secret; mode 0600)")
    a.add_argument("--setup", metavar="DB", help="create the client state from DB's head (read-only)")
    a.add_argument("-c", type=int, default=64, help="entries per challenge")
    a.add_argument("--out", help="write the challenge here")
    a.add_argument("--check", nargs=2, metavar=("CHALLENGE", "PROOF"), help="verify PROOF for CHALLENGE")
    a.add_argument("--log", help="append the outcome to this ledger file's signed challenge log (with --key)")
    a.add_argument("--key", help="client Ed25519 key that signs --log rows")
    a = sub.add_parser("prove", help="PDP store: answer CHALLENGE from DB (read-only)")
    a.add_argument("db")
    a.add_argument("challenge")
    a.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    """Run one ``kb`` action; a failed check or bad input is one line on stderr and exit 2."""
    try:
        return _ACTIONS[args.kb_cmd](args)
    except sqlite3.DatabaseError as exc:
        where = getattr(args, "db", None) or getattr(args, "reader", None) or "database"
        print(f"semguard kb: error: {where}: not a readable semguard knowledge base ({exc})", file=sys.stderr)
    except (KnowledgeError, ValueError, KeyError, OSError) as exc:
        print(f"semguard kb: error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def _init(args: argparse.Namespace) -> int:
    kp = Path(args.key)
    if kp.exists():
        key = _key(args.key)
    else:
        key = generate_key()
        _write_secret_file(kp, lambda p: save_private_key(key, p, _passphrase()))
        print(f"created owner key {key_id(public_bytes(key))} at {kp} (mode 0600)")
    kb = KnowledgeBase.init(args.db, key)
    print(f"initialised {args.db}: kb_id {kb.kb_id}, owner {key_id(kb.owner)}")
    return 0


def _owner(guard: Guard, keyfile: str) -> Principal:
    key = _key(keyfile)
    if public_bytes(key) != guard.kb.owner:
        raise ValueError(f"--key {keyfile} is not the owner key of this knowledge base")
    return Principal(OWNER, key)


def _member(args: argparse.Namespace) -> int:
    guard = Guard(KnowledgeBase(args.db))
    owner = _owner(guard, args.key)
    if args.remove:
        pub = bytes(32)
    elif args.new_key:
        k = generate_key()
        _write_secret_file(Path(args.new_key), lambda p: save_private_key(k, p, _passphrase()))
        pub = public_bytes(k)
    elif args.pub:
        try:
            pub = bytes.fromhex(args.pub)
        except ValueError as exc:
            raise ValueError(f"--pub: expected 64 hex characters, got {args.pub!r}") from exc
    else:
        raise ValueError("give --pub HEX or --new-key FILE (or --remove)")
    rec = guard.add_member(owner, args.name, pub, publisher=args.publisher, remove=args.remove)
    print(f"{'removed' if args.remove else 'added'} member {args.name!r}"
          + ("" if args.remove else f" (key {key_id(pub)})") + f" in version {rec.version}")
    return 0


def _policy(args: argparse.Namespace) -> int:
    from semguard.knowledge.access import allow, deny, inherit, sub_purpose
    guard = Guard(KnowledgeBase(args.db))
    owner = _owner(guard, args.key)
    new = ([allow(*a, args.cond) for a in args.allow] + [deny(*a, args.cond) for a in args.deny]
           + [inherit(*a) for a in args.inherit] + [sub_purpose(*a) for a in args.sub_purpose])
    if not new:
        raise ValueError("give at least one --allow, --deny, --inherit or --sub-purpose")
    rec = guard.set_policy(owner, [*guard.policy.lines, *new], note=f"policy +{len(new)} lines")
    print(f"policy now {len(guard.policy.lines)} lines (version {rec.version})")
    return 0


def _principal(guard: Guard, keyfile: str | None, subject: str | None) -> Principal:
    if not keyfile:
        raise ValueError(f"--as {subject or '?'}: requests are signed; give the principal's private key with --key")
    key = _key(keyfile)
    gov = guard.kb.governance()
    name = subject or gov.member_name(public_bytes(key))
    if name is None:
        raise ValueError(f"--key {keyfile} is neither the owner key nor a member's key; give --as NAME")
    if gov.member_key(name) != public_bytes(key):
        raise ValueError(f"--as {name}: --key {keyfile} is not that principal's key "
                         f"({'no such member' if gov.member_key(name) is None else 'key mismatch'})")
    return Principal(name, key)


def _grant(args: argparse.Namespace) -> int:
    guard = Guard(KnowledgeBase(args.db))
    who = _principal(guard, args.key, args.subject)
    rec = guard.grant(who, args.user, args.role, purpose=args.purpose)
    print(f"granted role {args.role!r} to {args.user!r} as {who.name!r} (version {rec.version})")
    return 0


def _audit(args: argparse.Namespace) -> int:
    guard = Guard(KnowledgeBase(args.db))
    who = _principal(guard, args.key, args.subject)
    if args.checkpoint:
        rec = guard.checkpoint(who)
        print(f"audit head bound into version {rec.version}")
        return 0
    for r in guard.audit(who.request(guard.kb.kb_id, "read_audit", "audit", args.purpose), principal=who):
        t = datetime.datetime.fromtimestamp(r.ts).isoformat(timespec="seconds")
        print(f"{r.seq:>5} {t} v{r.version:<4} {'ALLOW' if r.allowed else 'DENY '} {r.subject} {r.action} "
              f"{r.obj} for {r.purpose}  rule {', '.join(json.loads(r.rule))}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    key = _key(args.key)                      # every input checked before the database is opened for writing
    put = {}
    for item in args.put:
        name, sep, file = item.partition("=")
        if not sep:
            raise ValueError(f"--put expects NAME=FILE, got {item!r}")
        put[name] = Path(file).read_bytes()
    kb = KnowledgeBase(args.db)
    rec = kb.publish(key, put, args.delete, note=args.note)
    print(f"published version {rec.version}: {rec.n_entries} entries, root {rec.root.hex()}")
    return 0


def _owner_hex(text: str | None, flag: str) -> bytes | None:
    if text is None:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{flag}: expected the owner's public key as 64 hex characters, got {text!r}")
    return raw


def _verify(args: argparse.Namespace) -> int:
    kb = KnowledgeBase(args.db, readonly=True)
    h = kb.verify(expected_kb_id=args.kb_id, expected_owner=_owner_hex(args.owner, "--owner"))
    n_audit = Guard(kb).verify_audit()
    msg = f"OK {args.db}: kb_id {h.kb_id}, {h.version} versions verified; root {h.root.hex()}, " \
          f"log root {h.log_root.hex()}; audit log {n_audit} rows"
    if args.ledger:
        from semguard.knowledge._ledger_local import LocalLedger
        from semguard.knowledge.ledger import check_against_ledger
        if not Path(args.ledger).exists():
            raise FileNotFoundError(f"--ledger {args.ledger}: no such ledger file")
        c = check_against_ledger(kb, LocalLedger(args.ledger), require_current=True)
        msg += f"; current with the ledger (anchored v{c.anchored_version})"
    print(msg)
    return 0


def _log(args: argparse.Namespace) -> int:
    kb = KnowledgeBase(args.db, readonly=True)
    print(f"kb_id {kb.kb_id} (owner {key_id(kb.owner)})")
    for r in kb.records:
        t = datetime.datetime.fromtimestamp(r.timestamp).isoformat(timespec="seconds")
        print(f"v{r.version:<4} {t}  {r.n_entries:>7} entries  root {r.root.hex()[:16]}  "
              f"by {key_id(r.publisher)}  {r.note}")
    for t, pub, reason in kb.quarantined():
        print(f"quarantined {datetime.datetime.fromtimestamp(t).isoformat(timespec='seconds')} "
              f"by {pub[:16]}: {reason}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from semguard.knowledge.trust import check_or_pin, default_trust_file
    source = KnowledgeBase(args.source, readonly=True)
    kb_id = owner = None
    if args.pin:
        kb_id, _, own = args.pin.partition(":")
        owner = _owner_hex(own, "--pin") if own else None
    trust = Path(args.trust_file) if args.trust_file else default_trust_file()
    label = str(Path(args.source).resolve())
    if not args.pin:
        first = check_or_pin(trust, label, source.kb_id, source.owner)
        if first:
            print(f"trust on first use: pinned {label} to kb_id {source.kb_id}, owner {key_id(source.owner)} "
                  f"in {trust}")
    reader = (KnowledgeBase(args.reader) if Path(args.reader).exists()
              else None)
    if reader is None:
        from semguard.knowledge.verify import check_identity
        check_identity(source.kb_id, source.owner, expected_kb_id=kb_id, expected_owner=owner, where=args.source)
        reader = KnowledgeBase.init_replica(args.reader, source.genesis())
    before = sync(reader, source, expected_kb_id=kb_id, expected_owner=owner)
    print(f"handshake: {before.state} (reader v{before.local.version}, source v{before.remote.version}); "
          f"reader now at v{reader.version}")
    return 0


def _anchor(args: argparse.Namespace) -> int:
    from semguard.knowledge.ledger import anchor_pending, check_against_ledger, open_ledger
    kb = KnowledgeBase(args.db, readonly=not (args.key or args.register))
    led = open_ledger(args.ledger, rpc=args.rpc, contract=args.contract, account=args.account,
                      private_key=os.environ.get("SEMGUARD_EVM_PRIVATE_KEY"))
    if args.register:
        if args.ledger is None:
            raise ValueError("--register works on a local --ledger; on a contract use EvmLedger.bind_publisher")
        led.register_kb(kb.kb_id, sorted(kb.publishers(kb.version)))
    for r in anchor_pending(kb, led, _key(args.key)) if args.key else []:
        print(f"anchored v{r.record.version}: root {r.record.root.hex()[:16]}  tx {r.tx_hash[:18]}")
    c = check_against_ledger(kb, led, require_current=True)
    print(f"OK {args.db}: local v{c.local_version} is current with the ledger (anchored v{c.anchored_version})")
    return 0


def _challenge(args: argparse.Namespace) -> int:
    from semguard.knowledge.pdp import Challenge, PdpClient, PossessionError, PossessionProof
    cp = Path(args.client)
    if args.setup:
        client = PdpClient.setup(KnowledgeBase(args.setup, readonly=True))
        _write_secret_file(cp, lambda p: p.write_text(json.dumps(client.to_json())))
        print(f"PDP client for {client.kb_id} v{client.version}: {client.n} entries, root {client.root.hex()[:16]}")
        return 0
    client = PdpClient.from_json(json.loads(cp.read_text()))
    if args.check:
        ch = Challenge.from_json(json.loads(Path(args.check[0]).read_text()))
        proof = PossessionProof.from_json(json.loads(Path(args.check[1]).read_text()))
        try:
            client.check(ch, proof)
            ok, err = True, None
        except PossessionError as exc:
            ok, err = False, exc
        if args.log:
            from semguard.knowledge.pdp_log import ChallengeLog
            if not args.key:
                raise ValueError("--log needs --key (the client key that signs the log row)")
            seq = ChallengeLog(args.log).record(_key(args.key), ch, ok, proof.digest())
            print(f"logged challenge outcome as row {seq} of {args.log}")
        if err is not None:
            raise err
        print(f"OK: the store proved possession of {len(ch.indices())} challenged entries of {ch.kb_id} v{ch.version}")
        return 0
    if not args.out:
        raise ValueError("give --out FILE for the challenge (or --setup / --check)")
    client, ch = client.challenge(args.c)
    Path(args.out).write_text(json.dumps(ch.to_json()))
    _write_secret_file(cp, lambda p: p.write_text(json.dumps(client.to_json())))
    print(f"challenge {client.counter} for {ch.kb_id} v{ch.version}: {len(ch.indices())} entries -> {args.out}")
    return 0


def _prove(args: argparse.Namespace) -> int:
    from semguard.knowledge.pdp import Challenge, proof_size, prove
    ch = Challenge.from_json(json.loads(Path(args.challenge).read_text()))
    proof = prove(KnowledgeBase(args.db, readonly=True), ch)
    Path(args.out).write_text(json.dumps(proof.to_json()))
    print(f"proof of {len(proof.items)} entries ({proof_size(proof)} bytes) -> {args.out}")
    return 0


_ACTIONS = {"init": _init, "member": _member, "policy": _policy, "grant": _grant, "publish": _publish,
            "verify": _verify, "log": _log, "sync": _sync, "anchor": _anchor, "audit": _audit, "challenge": _challenge,
            "prove": _prove}
