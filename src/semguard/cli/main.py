"""``semguard`` entry point: a thin argparse shell over the library.

Each command is a module in this package exposing ``add_parser(subparsers)`` and ``run(args)``.
Only the module of the command being run is imported (``semguard --help`` imports none of them
and no torch): the other commands get a placeholder sub-parser carrying their one-line help
from :data:`HELP`, which ``tests/test_cli_startup.py`` checks against each module's own.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from semguard.cli.common import SemguardParser, print_error

__all__ = ["main", "build_parser", "COMMANDS", "HELP"]

# command modules, in the order ``semguard --help`` lists them
COMMANDS = ("run_cmd", "list_cmd", "train_cmd", "keygen", "kb", "net", "attack", "certify", "runtime", "fl")

# command -> (module, the one-line help its module's add_parser gives it)
HELP: dict[str, tuple[str, str]] = {
    "run": ("run_cmd", "the main job: shipped codecs vs separation baselines over the channels"),
    "list": ("list_cmd", "list registered components and shipped weights"),
    "train": ("train_cmd", "train a codec (resumable)"),
    "keygen": ("keygen", "physical-layer key generation: KGR, KDR, Eve's KDR, NIST tests"),
    "kb": ("kb", "signed, Merkle-proofed knowledge base of shared priors"),
    "net": ("net", "multi-agent fusion with Byzantine agents, emergency priority, offloading"),
    "attack": ("attack", "attack a codec over a budget grid (PSR in dB, or eps on the input)"),
    "certify": ("certify", "certificate of a codec: smoothing (accuracy, or PSNR bound) or CROWN (PSR)"),
    "tx": ("runtime", "transmitter process: blocks -> sealed frames -> ZeroMQ"),
    "channel": ("runtime", "channel emulator: relay, faults, registered channel, Eve's tap"),
    "rx": ("runtime", "receiver process: ZeroMQ -> open -> deliver once, with metrics"),
    "fl": ("fl", "federated training under poisoning and free riders (Flower)"),
}

ALL = "*"  # build_parser(ALL): every command's full parser (tests, docs)


def _command_in(argv: list[str]) -> str | None:
    """The command word of ``argv`` (the first word that is not an option), if any."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def build_parser(command: str | None = ALL) -> argparse.ArgumentParser:
    """The parser; full sub-parsers for ``command`` only (every command with ``ALL``)."""
    parser = SemguardParser(
        prog="semguard", description="Build, attack, defend and certify semantic communication systems.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv: debug); also shows the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {m for m, _ in HELP.values()}
    for name in COMMANDS:
        cmds = [c for c, (m, _) in HELP.items() if m == name] if name in modules else []
        if command == ALL or command in cmds or not cmds:
            mod = importlib.import_module(f"semguard.cli.{name}")
            before = set(sub.choices)
            mod.add_parser(sub)
            for cmd in set(sub.choices) - before:  # each module's run() handles its command
                if sub.choices[cmd].get_default("func") is None:
                    sub.choices[cmd].set_defaults(func=mod.run)
        else:
            for c in cmds:
                sub.add_parser(c, help=HELP[c][1], add_help=False)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:  # "[Errno 13] ..." -> "FILE: Permission denied"
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        # expected user errors: one line that says what to do, no traceback
        if args.verbose:
            raise
        print_error(f"semguard {args.command}", _one_line(e))
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
