"""``semguard list [family | pretrained]``: what the registry holds, and the shipped weights."""

from __future__ import annotations

import argparse

from semguard.registry import FAMILIES, available


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered components and shipped weights")
    p.add_argument("family", nargs="?", choices=[*sorted(FAMILIES), "pretrained"],
                   help="one family, or 'pretrained' for the zoo of shipped weights (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.family == "pretrained":
        from semguard.codecs.zoo import ZOO

        for name, entry in ZOO.items():
            print(f"{name}: {entry.description}")
        return 0
    families = [args.family] if args.family else sorted(FAMILIES)
    for fam in families:
        print(f"{fam}: {', '.join(available(fam))}")
    if not args.family:
        from semguard.codecs.zoo import ZOO

        print(f"pretrained: {', '.join(ZOO)}")
    return 0
