"""Helpers for the runtime process tests: free loopback ports, bounded subprocesses stopped by pid."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ep(port: int) -> str:
    return f"tcp://127.0.0.1:{port}"


def start(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "semguard.cli.runtime", *args], env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop ``proc`` by its pid (SIGTERM, then SIGKILL after ``timeout``)."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextmanager
def running() -> Iterator[list[subprocess.Popen]]:
    """A list to append started processes to; each is stopped by its pid (:func:`stop`) on the way out,
    whatever the block raised."""
    procs: list[subprocess.Popen] = []
    try:
        yield procs
    finally:
        for p in procs:
            stop(p)


def wait_file(path: Path, timeout: float) -> dict:
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear within {timeout} s")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
