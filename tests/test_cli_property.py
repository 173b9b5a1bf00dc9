"""Property tests of the command line (hypothesis): malformed values for every option of every
command the parser has, and random / truncated bytes as every kind of input file.

Whatever the input: exit 2, one line on stderr naming the flag or file, no traceback, the input
file unchanged and nothing written.  Where truncated bytes can still be a valid file (an image
PIL decodes, a corpus with enough sentences) the command may also succeed (exit 0); never a
traceback.  The default variant runs a few examples per case (seconds); ``-m slow`` runs many.

The options are read from the parser itself (:func:`semguard.cli.main.build_parser`), so a new
option is covered when it is added.  Commands whose bad-input fixes are owned elsewhere are
listed in ``PENDING`` and run as non-strict xfail until those fixes land; then delete the entry.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from semguard.cli.main import ALL, build_parser, main

# leaf command -> why its cases may still fail (someone else's fix, issue 24); delete when merged
PENDING: dict[str, str] = {}

FAST = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is printed as found
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# a valid call of each leaf command, with nothing expensive to do: the malformed value is added to it
BASE = {
    "run": ["run", "--out", "{tmp}/o"],
    "list": ["list"],
    "train": ["train", "adjscc", "--data", "{tmp}/imgs", "--width", "8", "--crop", "32", "--steps", "0",
              "--batch", "2", "--channels", "awgn", "--val-snr", "10", "--no-progress", "--out", "{tmp}/run"],
    "keygen": ["keygen", "--probes", "256", "--out", "{tmp}/k.json"],
    "kb init": ["kb", "init", "{tmp}/new.sqlite", "--key", "{tmp}/new.pem"],
    "kb publish": ["kb", "publish", "{tmp}/kb.sqlite", "--key", "{tmp}/owner.pem"],
    "kb verify": ["kb", "verify", "{tmp}/kb.sqlite"],
    "kb log": ["kb", "log", "{tmp}/kb.sqlite"],
    "kb sync": ["kb", "sync", "{tmp}/r.sqlite", "{tmp}/kb.sqlite"],
    "kb grant": ["kb", "grant", "{tmp}/kb.sqlite", "u", "r"],
    "kb anchor": ["kb", "anchor", "{tmp}/kb.sqlite"],
    "kb member": ["kb", "member", "{tmp}/kb.sqlite", "bob", "--new-key", "{tmp}/bob.pem", "--key", "{tmp}/owner.pem"],
    "kb policy": ["kb", "policy", "{tmp}/kb.sqlite", "--key", "{tmp}/owner.pem"],
    "kb audit": ["kb", "audit", "{tmp}/kb.sqlite"],
    "kb challenge": ["kb", "challenge", "{tmp}/client.json", "--setup", "{tmp}/kb.sqlite"],
    "kb prove": ["kb", "prove", "{tmp}/kb.sqlite", "{tmp}/challenge.json", "--out", "{tmp}/proof.json"],
    "net": ["net", "fusion", "--agents", "5", "--byzantine", "1", "--out", "{tmp}/net"],
    "certify": ["certify", "--codec", "task-fmnist", "--psr-db", "-20", "--images", "2", "--out", "{tmp}/cert.json"],
    "tx": ["tx", "--connect", "tcp://127.0.0.1:9", "--frames", "1", "--sent-log", "{tmp}/sent.jsonl"],
    "channel": ["channel", "--listen", "tcp://127.0.0.1:9", "--forward", "tcp://127.0.0.1:9", "--max-runtime", "1"],
    "rx": ["rx", "--connect", "tcp://127.0.0.1:9", "--max-runtime", "1", "--idle-timeout", "1"],
    "fl": ["fl", "--clients", "3", "--rounds", "1", "--local-steps", "1", "--out", "{tmp}/fl.json"],
    "attack": ["attack", "--codec", "task-fmnist", "--attack", "gaussian", "--psr-db", "-10", "--images", "2",
               "--out", "{tmp}/att"],
}


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, p in subs[0].choices.items():
        yield from _leaves(p, (*path, name))


def _kind(action: argparse.Action) -> str | None:
    """number / name (a closed set: choices, registry names, devices) / None (free text, paths)."""
    if action.choices is not None:
        return "name"
    t = action.type
    if t is None or t is str or (isinstance(t, type) and issubclass(t, Path)):
        return None
    try:
        t("1")
        return "number"
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return "name"


def _option_cases() -> list:
    cases = []
    for leaf, p in _leaves(build_parser(ALL)):
        for a in p._actions:
            if not a.option_strings or a.nargs == 0 or isinstance(a, argparse._HelpAction):
                continue
            kind = _kind(a)
            if kind is None or leaf not in BASE:
                continue
            pending = PENDING.get(leaf.split()[0])
            marks = [pytest.mark.xfail(reason=pending, strict=False)] if pending else []
            cases.append(pytest.param(leaf, a.option_strings[-1], kind, a.type is int or "int" in
                                      getattr(a.type, "__name__", ""), id=f"{leaf} {a.option_strings[-1]}",
                                      marks=marks))
    return cases


def _not_a_number(s: str) -> bool:
    try:
        return not math.isfinite(float(s))
    except ValueError:
        return True


def _malformed(kind: str, integer: bool) -> st.SearchStrategy[str]:
    if kind == "number":
        fixed = ["nan", "NaN", "inf", "-inf", "1e999", "-1e999", "", " ", "abc", "0,nan", "1e", "--"]
        return st.one_of(st.sampled_from(fixed + (["1.5", "2.0e0"] if integer else [])),
                         st.text(max_size=12).filter(_not_a_number))
    return st.one_of(st.sampled_from(["", " ", "nosuch", "NaN", "cpu:x", "tpu", "awgn,,nosuch"]),
                     st.text(min_size=1, max_size=12).map(lambda s: "nosuch-" + s))


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
            for p in sorted(root.rglob("*"))}


def _call(argv: list[str]) -> tuple[int, str]:
    import contextlib

    err = io.StringIO()
    with redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return rc, err.getvalue()


def _assert_refused(argv: list[str], root: Path, names: list[str], *, may_succeed: bool = False) -> None:
    before = _tree(root)
    rc, err = _call(argv)
    assert "Traceback" not in err, err
    if may_succeed and rc == 0:
        return
    lines = err.strip().splitlines()
    assert rc == 2, (argv, rc, err)
    assert len(lines) == 1, err
    assert any(n in lines[0] for n in names), (names, lines[0])
    assert _tree(root) == before, f"{argv} wrote {set(_tree(root)) ^ set(before)}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder with one valid input of each kind (the property tests add bad ones)."""
    from semguard.knowledge import KnowledgeBase, generate_key, save_private_key

    tmp = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    (tmp / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp / "imgs" / f"{i}.png")
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "big", "red", "house", "tree", "sun"]
    lines = [" ".join(rng.choice(words, 6)) for _ in range(80)]
    (tmp / "corpus.txt").write_text("\n".join(lines) + "\n")
    key = generate_key()
    save_private_key(key, tmp / "owner.pem", None)
    KnowledgeBase.init(tmp / "kb.sqlite", key).publish(key, {"a": b"1"})
    return tmp


# -- malformed values for every option --------------------------------------------------------

OPTION_CASES = _option_cases()


def _option_property(root: Path, leaf: str, flag: str, value: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # a default output file would land here, and be caught
        argv = [a.format(tmp=root) for a in BASE[leaf]] + [f"{flag}={value}"]
        _assert_refused(argv, root, [flag])


@pytest.mark.parametrize("leaf,flag,kind,integer", OPTION_CASES)
def test_malformed_option_values(root: Path, leaf: str, flag: str, kind: str, integer: bool) -> None:
    given(_malformed(kind, integer))(FAST(lambda v: _option_property(root, leaf, flag, v)))()


@pytest.mark.slow
@pytest.mark.parametrize("leaf,flag,kind,integer", OPTION_CASES)
def test_malformed_option_values_slow(root: Path, leaf: str, flag: str, kind: str, integer: bool) -> None:
    given(_malformed(kind, integer))(SLOW(lambda v: _option_property(root, leaf, flag, v)))()


def test_every_command_with_options_is_covered() -> None:
    leaves = dict(_leaves(build_parser(ALL)))
    assert set(BASE) == set(leaves), "add a valid BASE call for each new command"
    covered = {c.values[0] for c in OPTION_CASES}
    assert {"run", "train", "keygen"} <= covered and len(OPTION_CASES) >= 30


# -- random and truncated bytes as every kind of input file ------------------------------------

def _weights(_: Path) -> bytes:
    from semguard.codecs.zoo import ZOO, resources
    return Path(str(resources.files("semguard.codecs") / "weights" / ZOO["adjscc-cbr1_6"].file)).read_bytes()


def _tokenizer(_: Path) -> bytes:
    from semguard.codecs.deepsc import TOKENIZER_FILE
    from semguard.codecs.zoo import shipped_path
    return shipped_path(TOKENIZER_FILE).read_bytes()


def _png(root: Path) -> bytes:
    return (root / "imgs" / "0.png").read_bytes()


def _checkpoint(_: Path) -> bytes:
    import torch
    buf = io.BytesIO()
    torch.save({"step": 1, "model": {"w": torch.zeros(4)}}, buf)
    return buf.getvalue()


# kind -> (a real file of that kind, where the bad file goes, argv, may a truncation still be valid)
TRAIN = BASE["train"]
FILES = {
    "weights": (_weights, "bad.safetensors", TRAIN + ["--init", "{bad}"], False),
    "checkpoint": (_checkpoint, "ck/last.pt", TRAIN[:-1] + ["{tmp}/ck", "--steps", "1"], False),
    "image": (_png, "junk/0.png", [a if a != "{tmp}/imgs" else "{tmp}/junk" for a in TRAIN], True),
    "corpus": (lambda r: (r / "corpus.txt").read_bytes(), "junk.txt",
               ["train", "deepsc", "--data", "{bad}", "--steps", "0", "--vocab", "40", "--width", "8",
                "--no-progress", "--out", "{tmp}/trun"], True),
    "tokenizer": (_tokenizer, "tok.json", ["train", "deepsc", "--data", "{tmp}/corpus.txt", "--tokenizer", "{bad}",
                                          "--steps", "0", "--width", "8", "--no-progress", "--out", "{tmp}/trun"],
                  False),
    "kb database": (lambda r: (r / "kb.sqlite").read_bytes(), "bad.sqlite", ["kb", "verify", "{bad}"], False),
    "kb key file": (lambda r: (r / "owner.pem").read_bytes(), "bad.pem",
                    ["kb", "publish", "{tmp}/kb.sqlite", "--key", "{bad}"], True),
}


def _bad_bytes(real: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048),
                     st.integers(0, max(len(real) - 1, 0)).map(lambda n: real[:n]))


def _file_property(root: Path, kind: str, data: bytes) -> None:
    real, where, argv, may_succeed = FILES[kind]
    bad = root / where
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    try:
        fill = {"tmp": str(root), "bad": str(bad)}
        ok_json = False
        if kind == "tokenizer":
            try:
                json.loads(data)
                ok_json = True
            except ValueError:
                pass
        _assert_refused([a.format(**fill) for a in argv], root, [str(bad), "--init", "--tokenizer", "--data"],
                        may_succeed=may_succeed or ok_json)
        assert hashlib.sha256(bad.read_bytes()).hexdigest() == digest, f"{bad} was changed"
    finally:
        bad.unlink()
        for d in ("run", "trun"):  # what a successful call (a still-valid truncation) wrote
            import shutil
            shutil.rmtree(root / d, ignore_errors=True)


def _file_cases() -> list:
    out = []
    for kind in FILES:
        pending = PENDING.get(kind.split()[0]) if kind.startswith("kb") else None
        out.append(pytest.param(kind, id=kind, marks=[pytest.mark.xfail(reason=pending, strict=False)] if pending
                                else []))
    return out


@pytest.mark.parametrize("kind", _file_cases())
def test_bad_input_files(root: Path, kind: str) -> None:
    real = FILES[kind][0](root)
    given(_bad_bytes(real))(FAST(lambda d: _file_property(root, kind, d)))()


@pytest.mark.slow
@pytest.mark.parametrize("kind", _file_cases())
def test_bad_input_files_slow(root: Path, kind: str) -> None:
    real = FILES[kind][0](root)
    given(_bad_bytes(real))(SLOW(lambda d: _file_property(root, kind, d)))()
