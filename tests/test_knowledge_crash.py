"""Crash safety (SIGKILL mid-write) and concurrent publishers, with real subprocesses."""

import os
import signal
import subprocess
import sys
import time

import pytest

from semguard.knowledge import KnowledgeBase, generate_key, save_private_key

CHILD = r"""
import os, sys, time
from semguard.knowledge import KnowledgeBase, load_private_key
path, keyfile, tag, n, hang = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
kb, key = KnowledgeBase(path), load_private_key(keyfile)
for i in range(n):
    kb.publish(key, {f"{tag}/{i}": os.urandom(2000), "shared": f"{tag}{i}".encode()})
    print("committed", kb.version, flush=True)
if hang:
    def stall():
        print("in-transaction", flush=True)
        time.sleep(60)
    kb.before_commit = stall
    kb.publish(key, {f"{tag}/big{j}": os.urandom(4000) for j in range(300)})
"""


def _spawn(tmp_path, kb, tag, n, hang):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(kb.path), str(tmp_path / "key.pem"), tag,
                             str(n), "1" if hang else "0"], stdout=subprocess.PIPE, text=True)


def _setup(tmp_path):
    key = generate_key()
    save_private_key(key, tmp_path / "key.pem")
    assert oct(os.stat(tmp_path / "key.pem").st_mode & 0o777) == "0o600"
    return KnowledgeBase.init(tmp_path / "kb.db", key)


def test_sigkill_mid_write_keeps_last_commit(tmp_path):
    kb = _setup(tmp_path)
    p = _spawn(tmp_path, kb, "a", 3, hang=True)
    lines = []
    while not lines or lines[-1] != "in-transaction":
        line = p.stdout.readline().strip()
        assert line, f"child ended early: {lines}"
        lines.append(line)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL
    assert lines[:3] == ["committed 1", "committed 2", "committed 3"]
    kb2 = KnowledgeBase(kb.path)
    assert kb2.verify().version == 3
    assert kb2.get("shared") == b"a2" and "a/big0" not in kb2.manifest(3)
    assert kb2.conn.execute("SELECT COUNT(*) FROM blobs WHERE length(data) = 4000").fetchone()[0] == 0


def test_concurrent_publishers_lose_nothing(tmp_path):
    kb = _setup(tmp_path)
    n = 12
    procs = [_spawn(tmp_path, kb, tag, n, hang=False) for tag in ("p", "q")]
    t = time.time()
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    kb2 = KnowledgeBase(kb.path)
    assert kb2.verify().version == 2 * n
    names = set(kb2.manifest(kb2.version))
    assert {f"{tag}/{i}" for tag in "pq" for i in range(n)} <= names
    assert time.time() - t < 60


BIG = r"""
import os, sys
from semguard.knowledge import KnowledgeBase, load_private_key
from semguard.knowledge.access import allow
from semguard.knowledge.guard import Guard
from semguard.knowledge.principals import Principal
path, keyfile, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
kb, key = KnowledgeBase(path), load_private_key(keyfile)
g, owner = Guard(kb, operator=key), Principal("owner", key)
print("ready", flush=True)
i = 0
while True:
    i += 1
    kb.publish(key, {f"big{i % 3}": os.urandom(mib << 20)})
    g.set_policy(owner, [allow("r" + str(i % 5), "x/*", "read", "ops")])   # governance + audit writes too
"""


@pytest.mark.slow
def test_repeated_sigkill_during_large_and_governance_publishes(tmp_path):
    """SIGKILL at random moments while publishing 16 MiB entries and policy versions: every restart
    verifies, the audit chain verifies, and the version count never goes back."""
    import random
    kb = _setup(tmp_path)
    rng, last = random.Random(0), 0
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-c", BIG, str(kb.path), str(tmp_path / "key.pem"), "16"],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 2.5))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        kb2 = KnowledgeBase(kb.path)
        assert kb2.verify().version >= last
        from semguard.knowledge.guard import Guard
        Guard(kb2).verify_audit()
        last = kb2.version
        kb2.close()
    assert last > 0
