"""``semguard kb`` actions end to end through argparse."""

import argparse
import sqlite3

from semguard.cli import kb as cli


def _run(*argv):
    ap = argparse.ArgumentParser()
    cli.add_parser(ap.add_subparsers(dest="cmd"))
    return cli.run(ap.parse_args(["kb", *argv]))


def test_cli_round_trip(tmp_path, capsys):
    db, key, f = str(tmp_path / "kb.db"), str(tmp_path / "owner.pem"), tmp_path / "w.bin"
    f.write_bytes(b"weights")
    assert _run("init", db, "--key", key) == 0
    assert _run("publish", db, "--key", key, "--put", f"codec/w={f}", "--note", "first") == 0
    assert _run("verify", db) == 0
    assert _run("sync", str(tmp_path / "reader.db"), db) == 0
    assert _run("grant", db, "alice", "engineer", "--key", key) == 0
    assert _run("log", db) == 0
    out = capsys.readouterr().out
    assert "published version 1: 1 entries" in out and "handshake: behind" in out and "first" in out
    c = sqlite3.connect(db)
    c.execute("UPDATE blobs SET data = ?", (b"weightz",))
    c.commit()
    assert _run("verify", db) == 1
    assert "IntegrityError" in capsys.readouterr().out
    assert _run("grant", db, "bob", "admin", "--as", "alice") == 1  # deny by default
    assert "AccessDenied" in capsys.readouterr().out
