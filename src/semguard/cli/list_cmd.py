"""``semguard list [family]``: what the registry holds."""

from __future__ import annotations

import argparse

from semguard.registry import FAMILIES, available


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("family", nargs="?", choices=sorted(FAMILIES), help="one family (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    families = [args.family] if args.family else sorted(FAMILIES)
    for fam in families:
        print(f"{fam}: {', '.join(available(fam))}")
    return 0
