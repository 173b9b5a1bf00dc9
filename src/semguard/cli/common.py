"""Options shared by several commands, and the argument checks every command uses.

Nothing here imports torch or a component family at import time: ``semguard --help`` and each
command's ``--help`` stay fast.  Registry names are checked when a value is parsed
(:func:`registry_name` imports that family then), so the registry stays the one table of names.
Every check raises :class:`argparse.ArgumentTypeError` (argparse names the flag) or ValueError
(the command line turns it into ``semguard CMD: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["SemguardParser", "DefaultsFormatter", "add_device_seed", "finite_float", "positive_float", "non_negative_float", "int_at_least", "float_list",
           "device_name", "registry_name", "registry_list", "lazy_choice", "check_out_dir", "check_out_file",
           "check_in_file", "print_error"]


class SemguardParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (``PROG: error: MSG``), exit 2.

    Subcommand parsers are made with the same class, so every command's errors look alike.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        # argparse (3.11) drops the value of ``--opt=--`` and passes the option an empty list
        for a in sys.argv[1:] if args is None else args:
            if a.startswith("-") and a.endswith("=--"):
                self.error(f"argument {a[:-3]}: expected a value, got '--'")
        return super().parse_known_args(args, namespace)


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with its default, unless the text already says it or
    there is none to say (None, a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if "(default" in text or d is None or d is False or d is argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_device_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--seed", type=int_at_least(0, 2**63 - 1), default=0,
                   help="the one seed of the run, 0 to 2^63-1 (default: 0)")
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="torch CPU threads, at least 1 (default: torch's choice)")


# -- value checks (argparse ``type=``) ----------------------------------------------------------

def finite_float(text: str) -> float:
    """A finite number (no nan, no inf)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = finite_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    v = finite_float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer ``>= low`` (and ``<= high`` when given)."""
    want = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"

    def check(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return v
    check.__name__ = f"int_at_least_{low}"
    return check


def float_list(text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers, at least one (``0,10,20``)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,10,20, got {text!r}")
    out = []
    for p in parts:
        try:
            out.append(finite_float(p))
        except argparse.ArgumentTypeError:
            where = f" in {text!r}" if len(parts) > 1 else ""
            raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers such as 0,10,20, "
                                             f"got {p!r}{where}") from None
    return tuple(out)


_DEVICE = re.compile(r"(cpu|cuda|mps)(:\d+)?")


def device_name(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked without importing torch; availability is
    checked when the command starts)."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def _required_kwargs(factory: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return []
    return [p.name for p in params if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def registry_name(family: str, *, buildable: bool = False) -> Callable[[str], str]:
    """A name registered in ``family``; with ``buildable``, one whose factory needs no arguments
    (so a command can build it from its own options)."""
    def check(text: str) -> str:
        from semguard.registry import available, get

        names = available(family)
        if text not in names:
            raise argparse.ArgumentTypeError(f"no {family} named {text!r}; available: {', '.join(names)}")
        if buildable:
            ok = [n for n in names if not _required_kwargs(get(family, n))]
            need = _required_kwargs(get(family, text))
            if need:
                raise argparse.ArgumentTypeError(
                    f"{family} {text!r} is built from other components (it needs {', '.join(need)}), so it cannot "
                    f"be made from this command's options; build it in Python, or use one of: {', '.join(ok)}")
        return text
    check.__name__ = f"{family}_name"
    return check


def registry_list(family: str) -> Callable[[str], tuple[str, ...]]:
    """Comma-separated names registered in ``family``, at least one."""
    one = registry_name(family)

    def check(text: str) -> tuple[str, ...]:
        names = tuple(p.strip() for p in text.split(",") if p.strip())
        if not names:
            raise argparse.ArgumentTypeError(f"expected comma-separated {family} names, got {text!r}")
        return tuple(one(n) for n in names)
    check.__name__ = f"{family}_list"
    return check


def lazy_choice(choices: Callable[[], Sequence[str]], what: str) -> Callable[[str], str]:
    """One of ``choices()``, looked up only when a value is parsed (the table lives in the library)."""
    def check(text: str) -> str:
        allowed = list(choices())
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"expected {what} {' or '.join(map(repr, allowed))}, got {text!r}")
        return text
    check.__name__ = what
    return check


# -- path checks (before any work starts; nothing is created) ---------------------------------

def _exists(p: Path, flag: str, shown: Path) -> bool:
    try:
        p.stat()
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    except OSError as e:  # e.g. a folder on the way that this user may not enter
        raise ValueError(f"{flag} {shown}: cannot look at {p} ({e.strerror or e})") from None
    return True


def _existing_ancestor(p: Path, flag: str, shown: Path) -> Path:
    a = p.absolute()
    while not _exists(a, flag, shown) and a != a.parent:
        a = a.parent
    return a


def _check_creatable(p: Path, flag: str, shown: Path | None = None) -> None:
    """Folder ``p`` can be made: its nearest existing ancestor must be a writable folder."""
    shown = shown or p
    a = _existing_ancestor(p, flag, shown)
    if not a.is_dir():
        raise ValueError(f"{flag} {shown}: {a} is a file, so no folder can be made under it; give another path")
    if not os.access(a, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {shown}: cannot create it, {a} is not writable (permission denied)")


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """An output folder: an existing writable folder, or a path where one can be created."""
    p = Path(path)
    if _exists(p, flag, p):
        if not p.is_dir():
            raise ValueError(f"{flag} {p}: exists and is a file, not a folder; give a folder path")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {p}: the folder is not writable (permission denied)")
        return p
    _check_creatable(p, flag)
    return p


def check_out_file(path: str | Path, flag: str) -> Path:
    """An output file: writable if it exists (and not a folder), else creatable."""
    p = Path(path)
    if _exists(p, flag, p) and p.is_dir():
        raise ValueError(f"{flag} {p}: is a folder; give a file path such as {p / 'weights.safetensors'}")
    if p.exists():
        if not os.access(p, os.W_OK):
            raise ValueError(f"{flag} {p}: the file is not writable (permission denied)")
        return p
    _check_creatable(p.parent, flag, shown=p)
    return p


def check_in_file(path: str | Path, flag: str) -> Path:
    """An input file that exists and can be read."""
    p = Path(path)
    if not _exists(p, flag, p):
        raise ValueError(f"{flag} {p}: no such file")
    if not p.is_file():
        raise ValueError(f"{flag} {p}: is not a file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{flag} {p}: the file is not readable (permission denied)")
    return p


def print_error(prog: str, message: str) -> None:
    """The one-line error every command gives."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
