"""A real Flower deployment on loopback: one SuperLink and one SuperNode per client, as separate
processes, and the run submitted with ``flwr run`` -- the same ``ServerApp`` / ``ClientApp`` as
the simulation.  Every process started is stopped by its id afterwards (also on error), and any
process that inherited this run's marker (the ServerApp / ClientApp subprocesses) as well.

Across machines the same apps run unchanged: start ``flower-superlink`` on the server machine,
``flower-supernode --superlink HOST:PORT --node-config "partition-id=K num-partitions=N"`` on
each client machine (with semguard installed), and ``flwr run`` the app directory written by
:func:`write_app` against a connection whose address is ``HOST:PORT``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from semguard.federated.engine import FLConfig
from semguard.federated.flower_app import config_to_json, processes_with_marker, stop_processes

__all__ = ["run_deployment", "write_app", "free_port"]

log = logging.getLogger(__name__)

APP_TOML = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "semguardfl"
version = "1.0.0"
description = "semguard federated training of semantic codecs"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "semguard"

[tool.flwr.app.components]
serverapp = "semguard.federated.flower_app:server_app"
clientapp = "semguard.federated.flower_app:client_app"

[tool.flwr.app.config]
fl-config = "{}"
out = "result.json"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_app(root: Path) -> Path:
    """The Flower app directory (``pyproject.toml`` naming semguard's apps) under ``root``."""
    app = root / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "pyproject.toml").write_text(APP_TOML)
    (app / "semguardfl.py").write_text('"""The apps live in semguard.federated.flower_app."""\n')
    return app


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid TOML basic string


def run_deployment(cfg: FLConfig, *, timeout_s: float = 900.0, workdir: str | Path | None = None) -> dict[str, Any]:
    """Run ``cfg`` on a loopback SuperLink with ``cfg.clients`` SuperNodes; returns the result record."""
    bindir = Path(sys.executable).parent
    for exe in ("flower-superlink", "flower-supernode", "flwr"):
        if not (bindir / exe).exists():
            raise RuntimeError(f"{exe} not found next to {sys.executable}; install semguard[federated]")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="semguard-fl-"))
    app = write_app(root)
    home = root / "flwr-home"
    home.mkdir(exist_ok=True)
    port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\naddress = "127.0.0.1:{port}"\ninsecure = true\n')
    out = root / "result.json"
    overrides = root / "run-config.toml"
    overrides.write_text(f"fl-config = {_toml_str(config_to_json(cfg))}\nout = {_toml_str(str(out))}\n")
    marker = uuid.uuid4().hex
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "FLWR_HOME": str(home), "SEMGUARD_FL_RUN": marker,
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": "1", "PATH": os.pathsep.join([str(bindir), os.environ.get("PATH", "")])}
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        f = open(root / f"{name}.log", "w")
        p = subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=root)
        procs.append(p)
        return p

    t0 = time.monotonic()
    try:
        start([str(bindir / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(port)],
              "superlink")
        _wait_port(port, 60)
        for k in range(cfg.clients):
            start([str(bindir / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                   "--port", str(free_port()), "--node-config", f"partition-id={k} num-partitions={cfg.clients}"],
                  f"supernode-{k}")
        sub = subprocess.run([str(bindir / "flwr"), "run", str(app), "loopback", "--run-config", str(overrides)],
                             env=env, cwd=root, capture_output=True, text=True, timeout=120)
        if sub.returncode != 0:
            raise RuntimeError(f"flwr run failed: {(sub.stdout + sub.stderr).strip()[-500:]}")
        while not out.exists():
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"the deployment gave no result in {timeout_s:.0f} s (logs in {root})")
            if procs[0].poll() is not None:
                raise RuntimeError(f"the SuperLink exited with {procs[0].returncode} (log: {root / 'superlink.log'})")
            time.sleep(0.5)
        time.sleep(0.2)
        rec = json.loads(out.read_text())
    finally:
        stop_processes([p.pid for p in procs])
        left = []
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                left.append(p.pid)
        orphans = processes_with_marker(marker)
        if orphans:
            log.info("stopping %d Flower subprocesses of this run: %s", len(orphans), orphans)
            left += stop_processes(orphans)
        if left:
            log.warning("processes still alive after stopping: %s", left)
    rec["process_marker"] = marker
    rec["pids"] = [p.pid for p in procs]
    rec["workdir"] = str(root)
    return rec


def _wait_port(port: int, timeout_s: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the SuperLink did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")
