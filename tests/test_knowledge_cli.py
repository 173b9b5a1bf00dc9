"""``semguard kb`` actions end to end through the real entry point: round trip, bad files, keys."""

import gc
import os
import sqlite3
import subprocess

import pytest

from semguard.cli.main import main


@pytest.fixture(autouse=True)
def _trust_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMGUARD_TRUST_FILE", str(tmp_path / "known.json"))
    monkeypatch.delenv("SEMGUARD_KEY_PASSPHRASE", raising=False)


def _run(capsys, *argv):
    rc = main(["kb", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_round_trip(tmp_path, capsys):
    db, key, f = str(tmp_path / "kb.db"), str(tmp_path / "owner.pem"), tmp_path / "w.bin"
    alice = str(tmp_path / "alice.pem")
    f.write_bytes(b"weights")
    assert _run(capsys, "init", db, "--key", key)[0] == 0
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert _run(capsys, "publish", db, "--key", key, "--put", f"codec/w={f}", "--note", "first")[0] == 0
    assert _run(capsys, "member", db, "alice", "--new-key", alice, "--key", key)[0] == 0
    assert oct(os.stat(alice).st_mode & 0o777) == "0o600"
    assert _run(capsys, "policy", db, "--key", key, "--allow", "engineer", "codecs/*", "read", "operations",
                "--allow", "admin", "role:*", "grant", "administration")[0] == 0
    rc, _, err = _run(capsys, "grant", db, "alice", "nosuchrole", "--key", key)
    assert rc == 2 and "unknown role 'nosuchrole'" in err
    rc, out, _ = _run(capsys, "grant", db, "alice", "engineer", "--key", key)
    assert rc == 0 and "as 'owner'" in out
    rc, _, err = _run(capsys, "grant", db, "alice", "admin", "--as", "alice", "--key", alice)
    assert rc == 2 and "default-deny" in err                         # alice may not grant
    assert _run(capsys, "verify", db)[0] == 0
    rc, _, err = _run(capsys, "audit", db, "--key", alice)          # alice may not read the audit log
    assert rc == 2 and "read_audit" in err
    rc, out, _ = _run(capsys, "audit", db, "--key", key)            # the owner: no read_audit rule either
    assert rc == 2
    assert _run(capsys, "policy", db, "--key", key, "--allow", "user:owner", "audit", "read_audit", "oversight")[0] == 0
    rc, out, _ = _run(capsys, "audit", db, "--key", key)
    assert rc == 0 and "DENY  alice grant role:admin for administration  rule default-deny" in out
    assert "ALLOW owner grant role:engineer" in out and "rule owner" in out
    assert _run(capsys, "audit", db, "--key", key, "--checkpoint")[0] == 0
    n = int(sqlite3.connect(db).execute("SELECT MAX(seq) FROM audit_log").fetchone()[0])
    c = sqlite3.connect(db)
    c.execute("DELETE FROM audit_log WHERE seq = ?", (n,))        # drop the newest row: bound, so found
    c.commit()
    rc, _, err = _run(capsys, "verify", db)
    assert rc == 2 and "truncated" in err
    rc, out, _ = _run(capsys, "sync", str(tmp_path / "reader.db"), db)
    assert rc == 0 and "handshake: behind" in out
    rc, out, _ = _run(capsys, "log", db)
    assert rc == 0 and "first" in out and "grant:administration" in out
    c = sqlite3.connect(db)
    c.execute("UPDATE blobs SET data = ? WHERE data = ?", (b"weightz", b"weights"))
    c.commit()
    rc, out, err = _run(capsys, "verify", db)
    assert rc == 2 and out == "" and "IntegrityError" in err and len(err.strip().splitlines()) == 1


def test_bad_files_are_one_line_errors_and_reads_change_nothing(tmp_path, capsys):
    text, empty, folder = tmp_path / "t.txt", tmp_path / "e.db", tmp_path / "d"
    text.write_text("hello, not a database\n")
    empty.write_bytes(b"")
    folder.mkdir()
    db, key = str(tmp_path / "kb.db"), str(tmp_path / "owner.pem")
    assert _run(capsys, "init", db, "--key", key)[0] == 0
    for i in range(3):
        assert _run(capsys, "publish", db, "--key", key, "--put", f"e{i}={text}")[0] == 0
    corrupt = tmp_path / "corrupt.db"
    raw = bytearray(open(db, "rb").read())
    raw[4096:8192] = os.urandom(4096)          # smash page 2
    corrupt.write_bytes(bytes(raw))
    def state(path):
        return [os.path.exists(f"{path}{s}") and os.stat(f"{path}{s}").st_size for s in ("", "-wal", "-shm")]

    for path in (text, empty, folder, corrupt, tmp_path / "missing.db"):
        before = state(path)
        for cmd in ("verify", "log"):
            rc, out, err = _run(capsys, cmd, str(path))
            assert rc == 2, (cmd, path, out, err)
            assert len(err.strip().splitlines()) == 1 and str(path) in err and "Traceback" not in err
        assert state(path) == before, path
    rc, _, err = _run(capsys, "verify", str(tmp_path / "missing.db"))
    assert "semguard kb init" in err
    # a read of a healthy base leaves no -wal/-shm behind and does not touch the file
    gc.collect()  # close the publishers' connections (the last close removes -wal/-shm)
    st, before = os.stat(db), state(db)
    assert _run(capsys, "verify", db)[0] == 0 and _run(capsys, "log", db)[0] == 0
    gc.collect()
    assert state(db) == before and before[1:] == [False, False] and os.stat(db).st_mtime_ns == st.st_mtime_ns


def test_encrypted_key_without_passphrase_and_git_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEMGUARD_KEY_PASSPHRASE", "correct horse")
    db, key = str(tmp_path / "kb.db"), str(tmp_path / "owner.pem")
    assert _run(capsys, "init", db, "--key", key)[0] == 0
    monkeypatch.delenv("SEMGUARD_KEY_PASSPHRASE")
    rc, _, err = _run(capsys, "publish", db, "--key", key, "--put")
    assert rc == 2 and "SEMGUARD_KEY_PASSPHRASE" in err and len(err.strip().splitlines()) == 1
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    rc, _, err = _run(capsys, "init", str(repo / "kb.db"), "--key", str(repo / "k.pem"))
    assert rc == 0 and "git work tree" in err
    assert oct(os.stat(repo / "k.pem").st_mode & 0o777) == "0o600"
