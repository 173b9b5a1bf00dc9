"""The sweep engine: cells seeded by (seed, channel, SNR) alone, so a resumed run, a run in two
processes and a run on a local Ray instance end with the records of one uninterrupted run."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from semguard.evaluation.job import run_scenario
from semguard.evaluation.records import ResultStore, config_key
from semguard.evaluation.scenario import parse_scenario
from semguard.evaluation.sweep import cell_seed, execute, plan

TASK_ONLY = {"scenario": {"name": "task-only"}, "images": {"codec": "", "baselines": ["jpeg_capacity"],
                                                           "link_baseline": "jpeg_capacity",
                                                           "limit_baselines": ["jpeg_capacity"]},
             "channels": {"names": ["awgn", "rayleigh"], "snr_db": [0, 10]}, "task": {"images": 200},
             "text": {"codec": ""}}


def _values(store: ResultStore) -> dict:
    return {(r.codec, r.channel, r.snr_db, r.metric): r.value for r in store.current()}


def test_cell_seeds_are_fresh_per_cell_and_shared_by_systems() -> None:
    s = parse_scenario(TASK_ONLY)
    cells = plan(s)
    assert len(cells) == 4 and {c["kind"] for c in cells} == {"task"}
    assert len({c["seed"] for c in cells}) == 4
    assert cell_seed(0, "awgn", 10.0) == cell_seed(0, "awgn", 10) != cell_seed(1, "awgn", 10.0)


def test_interrupted_run_resumes_to_the_same_records(tmp_path) -> None:
    s = parse_scenario(TASK_ONLY)
    whole = ResultStore(tmp_path / "a" / "records.jsonl")
    assert execute(plan(s), whole) == 4
    part = ResultStore(tmp_path / "b" / "records.jsonl")
    assert execute(plan(s)[:2], part) == 2                                    # "killed" after two cells
    resumed = ResultStore(tmp_path / "b" / "records.jsonl")
    assert execute(plan(s), resumed) == 2 and execute(plan(s), resumed) == 0
    assert _values(resumed) == _values(whole)


def test_two_processes_give_the_serial_records(tmp_path) -> None:
    s = parse_scenario(TASK_ONLY)
    serial = ResultStore(tmp_path / "s" / "records.jsonl")
    execute(plan(s), serial)
    par = ResultStore(tmp_path / "p" / "records.jsonl")
    assert execute(plan(s), par, executor="process", workers=2) == 4
    assert _values(par) == _values(serial)
    with pytest.raises(ValueError, match="executor must be one of"):
        execute(plan(s), par, executor="dask")


@pytest.mark.slow
def test_ray_gives_the_serial_records_and_stops(tmp_path) -> None:
    pytest.importorskip("ray")
    s = parse_scenario(TASK_ONLY)
    serial = ResultStore(tmp_path / "s" / "records.jsonl")
    execute(plan(s), serial)
    on_ray = ResultStore(tmp_path / "r" / "records.jsonl")
    assert execute(plan(s), on_ray, executor="ray", workers=2) == 4
    assert _values(on_ray) == _values(serial)
    import ray

    assert not ray.is_initialized()
    left = subprocess.run(["pgrep", "-f", "ray::|raylet|gcs_server"], capture_output=True, text=True).stdout
    assert left.strip() == ""


def test_job_writes_strict_json_csv_and_report(tmp_path) -> None:
    res = run_scenario(parse_scenario({**TASK_ONLY, "constraints": {"acc": {"metric": "accuracy", "min": 0.5}}}),
                       tmp_path)
    body = json.loads((tmp_path / "results.json").read_text())
    assert body["meta"]["cells"] == 4 and len(body["records"]) == 4
    assert (tmp_path / "results.csv").read_text().splitlines()[0] == "system,channel,snr_db,metric,value,attack,psr_db,defense"
    assert "<html" in res["paths"]["html"].read_text()
    if shutil.which("jq"):
        assert subprocess.run(["jq", ".", str(tmp_path / "results.json")], capture_output=True).returncode == 0


def test_store_killed_mid_unit_drops_its_records_and_ends_the_partial_line(tmp_path) -> None:
    from semguard.evaluation.records import Record

    path = tmp_path / "records.jsonl"
    store = ResultStore(path)
    a, b = {"cell": "a"}, {"cell": "b"}
    assert not store.done(config_key(a))
    store.add([Record("x", "awgn", 0.0, "psnr", 1.0, a)], config_key(a))
    with open(path, "a") as f:                            # unit b killed: its record but no marker, then
        f.write(json.dumps(Record("x", "awgn", 1.0, "psnr", 2.0, b).to_json()) + "\n")
        f.write('{"codec": "x", "chan')                   # a line cut off mid-write
    again = ResultStore(path)
    assert [r.config for r in again.records] == [a]        # b's orphan record is dropped: b runs again
    assert again.done(config_key(a)) and not again.done(config_key(b))
    again.add([Record("x", "awgn", 1.0, "psnr", 3.0, b)], config_key(b))
    third = ResultStore(path)
    assert sorted(r.value for r in third.records) == [1.0, 3.0]
    third.done(config_key(a)), third.done(config_key(b))
    assert sorted(r.value for r in third.current()) == [1.0, 3.0]
