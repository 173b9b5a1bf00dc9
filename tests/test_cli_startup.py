"""``semguard --help`` imports no command module and no torch; the help table stays the modules' own."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semguard.cli.main import ALL, COMMANDS, HELP, build_parser

SRC = Path(__file__).resolve().parents[1] / "src"
PROBE = ("import sys, contextlib, io\nfrom semguard.cli.main import main\n"
         "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
         "    try:\n        main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
         "heavy = sorted(m for m in ('torch', 'numpy', 'semguard.codecs', 'semguard.knowledge', 'semguard.keys') "
         "if m in sys.modules)\n"
         "print(repr(heavy)); print(out.getvalue())\n")


def _probe(*argv: str) -> tuple[list[str], str]:
    p = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    assert p.returncode == 0, p.stderr
    first, _, rest = p.stdout.partition("\n")
    return eval(first), rest  # noqa: S307 - our own repr of a list of str


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["run", "--help"], ["nosuch"]])
def test_help_imports_no_torch(argv: list[str]) -> None:
    heavy, out = _probe(*argv)
    assert heavy == [], f"semguard {' '.join(argv)} imported {heavy}"
    if argv == ["--help"]:
        for cmd, (_, text) in HELP.items():
            assert cmd in out and text.split(":")[0] in " ".join(out.split())


def _sub_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub._choices_actions}


def test_help_table_is_each_modules_own() -> None:
    full = _sub_helps(build_parser(ALL))  # every module imported and asked for its parser
    assert {c: h for c, (_, h) in HELP.items()} == {c: full[c] for c in HELP}
    assert {m for m, _ in HELP.values()} <= set(COMMANDS)
    lazy = build_parser(None)  # placeholders only
    assert _sub_helps(lazy) == full and list(_sub_helps(lazy)) == list(full)


def test_only_the_chosen_command_gets_its_full_parser() -> None:
    p = build_parser("train")
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert "--snr-min" in sub.choices["train"]._option_string_actions
    assert "--quick" not in sub.choices["run"]._option_string_actions  # a placeholder


@pytest.mark.parametrize("command", ["run", "list", "train"])
def test_every_option_has_help_and_says_its_default(command: str) -> None:
    p = build_parser(command)
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    text = " ".join(sub.format_help().split())
    for a in sub._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        assert a.help, f"semguard {command} {a.option_strings or a.dest} has no help text"
        if a.option_strings and a.default not in (None, False):
            d = ",".join(a.default) if isinstance(a.default, tuple) else str(a.default)
            assert f"default: {d}" in text or "(default:" in a.help, (a.option_strings, a.default)
