"""``semguard kb init | publish | verify | log | sync | grant | anchor`` — the knowledge base from the shell."""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

from semguard.knowledge import (
    Guard, KnowledgeBase, KnowledgeError, generate_key, load_private_key, public_bytes, save_private_key, sync,
)
from semguard.knowledge.keys import key_id


def _passphrase(args: argparse.Namespace) -> bytes | None:
    env = os.environ.get("SEMGUARD_KEY_PASSPHRASE")
    return env.encode() if env else None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``kb`` subcommand with its seven actions."""
    p = subparsers.add_parser("kb", help="signed, Merkle-proofed knowledge base of shared priors")
    sub = p.add_subparsers(dest="kb_cmd", required=True)
    a = sub.add_parser("init", help="create a knowledge base (and an owner key if --key does not exist)")
    a.add_argument("db")
    a.add_argument("--key", required=True, help="owner Ed25519 key (PEM, 0600; passphrase from "
                   "$SEMGUARD_KEY_PASSPHRASE if set)")
    a = sub.add_parser("publish", help="publish a new version: --put NAME=FILE ..., --delete NAME ...")
    a.add_argument("db")
    a.add_argument("--key", required=True)
    a.add_argument("--put", nargs="*", default=[], metavar="NAME=FILE")
    a.add_argument("--delete", nargs="*", default=[], metavar="NAME")
    a.add_argument("--note", default="")
    a = sub.add_parser("verify", help="verify every signature, chain link, Merkle root and blob")
    a.add_argument("db")
    a = sub.add_parser("log", help="list versions")
    a.add_argument("db")
    a = sub.add_parser("sync", help="bring READER up to SOURCE (handshake, fetch with proofs)")
    a.add_argument("reader")
    a.add_argument("source")
    a = sub.add_parser("grant", help="give USER a ROLE (as owner with --key, or as --as SUBJECT by policy)")
    a.add_argument("db")
    a.add_argument("user")
    a.add_argument("role")
    a.add_argument("--key", help="owner key: bootstrap grants without a policy check")
    a.add_argument("--as", dest="subject", help="subject whose 'grant' permission is checked and audited")
    a.add_argument("--purpose", default="administration")
    a = sub.add_parser("anchor", help="check DB against a ledger; with --key, anchor its unanchored versions")
    a.add_argument("db")
    a.add_argument("--ledger", help="local ledger file (SQLite; created if absent)")
    a.add_argument("--register", action="store_true", help="register DB and its publishers in --ledger")
    a.add_argument("--rpc", help="EVM JSON-RPC URL (with --contract, --account; needs semguard[ledger])")
    a.add_argument("--contract")
    a.add_argument("--account", help="EVM account bound to the publisher key, unlocked at the node (or "
                   "sign locally with the hex key in $SEMGUARD_EVM_PRIVATE_KEY)")
    a.add_argument("--key", help="publisher Ed25519 key: anchor the versions not yet anchored")


def run(args: argparse.Namespace) -> int:
    """Run one ``kb`` action; prints results, returns a process exit code (1 on any check failure)."""
    try:
        return _ACTIONS[args.kb_cmd](args)
    except (KnowledgeError, ValueError, KeyError, FileExistsError, FileNotFoundError) as exc:
        print(f"error: {type(exc).__name__}: {exc}")
        return 1


def _init(args: argparse.Namespace) -> int:
    kp = Path(args.key)
    if kp.exists():
        key = load_private_key(kp, _passphrase(args))
    else:
        key = generate_key()
        save_private_key(key, kp, _passphrase(args))
        print(f"created owner key {key_id(public_bytes(key))} at {kp} (mode 0600)")
    kb = KnowledgeBase.init(args.db, key)
    print(f"initialised {args.db}: kb_id {kb.kb_id}, owner {key_id(kb.owner)}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    kb, key = KnowledgeBase(args.db), load_private_key(args.key, _passphrase(args))
    put = {}
    for item in args.put:
        name, sep, file = item.partition("=")
        if not sep:
            raise ValueError(f"--put expects NAME=FILE, got {item!r}")
        put[name] = Path(file).read_bytes()
    rec = kb.publish(key, put, args.delete, note=args.note)
    print(f"published version {rec.version}: {rec.n_entries} entries, root {rec.root.hex()}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    h = KnowledgeBase(args.db).verify()
    print(f"OK {args.db}: kb_id {h.kb_id}, {h.version} versions verified; root {h.root.hex()}, "
          f"log root {h.log_root.hex()}")
    return 0


def _log(args: argparse.Namespace) -> int:
    kb = KnowledgeBase(args.db)
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
    source = KnowledgeBase(args.source)
    reader = (KnowledgeBase(args.reader) if Path(args.reader).exists()
              else KnowledgeBase.init_replica(args.reader, source.genesis()))
    before = sync(reader, source)
    print(f"handshake: {before.state} (reader v{before.local.version}, source v{before.remote.version}); "
          f"reader now at v{reader.version}")
    return 0


def _grant(args: argparse.Namespace) -> int:
    guard = Guard(KnowledgeBase(args.db))
    if args.subject:
        guard.grant(args.subject, args.user, args.role, purpose=args.purpose)
    elif args.key:
        if public_bytes(load_private_key(args.key, _passphrase(args))) != guard.kb.owner:
            raise ValueError("--key is not the owner key of this knowledge base")
        guard.policy.assign(args.user, args.role)
    else:
        raise ValueError("give --as SUBJECT (policy-checked) or --key OWNER_KEY (bootstrap)")
    print(f"granted role {args.role!r} to {args.user!r}")
    return 0


def _anchor(args: argparse.Namespace) -> int:
    from semguard.knowledge.ledger import anchor_pending, check_against_ledger, open_ledger
    kb, led = KnowledgeBase(args.db), open_ledger(args.ledger, rpc=args.rpc, contract=args.contract,
                                                  account=args.account,
                                                  private_key=os.environ.get("SEMGUARD_EVM_PRIVATE_KEY"))
    if args.register:
        if args.ledger is None:
            raise ValueError("--register works on a local --ledger; on a contract use EvmLedger.bind_publisher")
        led.register_kb(kb.kb_id, sorted(kb.publishers(kb.version)))
    for r in anchor_pending(kb, led, load_private_key(args.key, _passphrase(args))) if args.key else []:
        print(f"anchored v{r.record.version}: root {r.record.root.hex()[:16]}  tx {r.tx_hash[:18]}")
    c = check_against_ledger(kb, led)
    print(f"OK {args.db}: local v{c.local_version} agrees with the ledger (anchored v{c.anchored_version})")
    return 0


_ACTIONS = {"init": _init, "publish": _publish, "verify": _verify, "log": _log, "sync": _sync, "grant": _grant,
            "anchor": _anchor}
