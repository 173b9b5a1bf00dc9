"""The bundled default scenario under --quick, end to end: killed halfway (SIGTERM to the CLI's
process, by its pid) and run again, it resumes and ends with the records of an uninterrupted
run; on a local Ray instance (stopped afterwards) it gives the same records too.  Measured
latencies are wall times, so they are the one thing left out of the comparison."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import semguard
from semguard.evaluation.job import run_scenario
from semguard.evaluation.scenario import load_scenario
from semguard.evaluation.sweep import plan

pytestmark = pytest.mark.slow


def _values(records) -> dict:
    """Every measured value but the wall-clock latencies, keyed by what it measures."""
    return {(r.codec, r.channel, r.snr_db, r.metric, r.config.get("psr_db"), r.config.get("attack")):
            (r.value, r.samples) for r in records if not r.metric.startswith("latency")}


def _done(path: Path) -> int:
    return path.read_text().count('"_done"') if path.is_file() else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    res = run_scenario(load_scenario("default").quick(), tmp_path_factory.mktemp("whole"), executor="serial")
    assert res["meta"]["cells_run"] == res["meta"]["cells"]
    return _values(res["store"].current())


def test_quick_default_killed_halfway_resumes_to_the_uninterrupted_records(tmp_path, reference) -> None:
    total = len(plan(load_scenario("default").quick()))
    src = str(Path(semguard.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "import sys; from semguard.cli.main import main; sys.argv[0] = 'semguard'; "
           "sys.exit(main())", "run", "--quick", "--executor", "serial", "--threads", "1", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while _done(tmp_path / "records.jsonl") < total // 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed halfway"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    killed_at = _done(tmp_path / "records.jsonl")
    assert total // 2 <= killed_at < total
    res = run_scenario(load_scenario("default").quick(), tmp_path, executor="serial")   # the second call resumes
    assert res["meta"]["cells_run"] == total - killed_at and res["meta"]["cells"] == total
    assert _values(res["store"].current()) == reference


def _ray_pids() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "raylet|gcs_server|ray::"], capture_output=True, text=True).stdout
    return set(out.split())


def test_quick_default_on_local_ray_gives_the_serial_records_and_stops(tmp_path, reference) -> None:
    pytest.importorskip("ray")
    import ray

    before = _ray_pids()                      # Ray processes of anyone else on this machine are not ours
    res = run_scenario(load_scenario("default").quick(), tmp_path, executor="ray", workers=2)
    assert res["meta"]["cells_run"] == res["meta"]["cells"]
    assert _values(res["store"].current()) == reference
    assert not ray.is_initialized()
    deadline = time.monotonic() + 30
    while _ray_pids() - before and time.monotonic() < deadline:   # shutdown reaps its processes shortly
        time.sleep(0.5)
    assert not _ray_pids() - before
