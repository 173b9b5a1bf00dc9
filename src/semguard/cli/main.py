"""``semguard`` entry point: a thin argparse shell over the library.

Each command is a module in this package exposing ``add_parser(subparsers)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["main", "COMMANDS"]

# command modules, in the order ``semguard --help`` lists them
COMMANDS = ("run_cmd", "list_cmd", "train_cmd", "keygen", "kb", "fl")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semguard", description="Build, attack, defend and certify semantic communication systems.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        mod = importlib.import_module(f"semguard.cli.{name}")
        before = set(sub.choices)
        mod.add_parser(sub)
        for cmd in set(sub.choices) - before:  # each module's run() handles its command
            if sub.choices[cmd].get_default("func") is None:
                sub.choices[cmd].set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as e:
        # expected user errors: one line that says what to do, no traceback
        if args.verbose:
            raise
        print(f"semguard {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
