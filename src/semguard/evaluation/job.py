"""``semguard run`` as a library call: plan a scenario's cells, execute them, write the results,
the envelope and the report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semguard import __version__
from semguard.evaluation.envelope import configurations, operating_region, pareto_front
from semguard.evaluation.html_report import strict_json, write_report
from semguard.evaluation.records import ResultStore
from semguard.evaluation.run import run_gaps
from semguard.evaluation.scenario import Scenario
from semguard.evaluation.sweep import clear_cache, execute, plan

__all__ = ["run_scenario", "JobResult"]


class JobResult(dict):
    """What a run wrote and measured: ``store``, ``gaps``, ``envelope``, ``region``, ``paths``, ``meta``."""


def run_scenario(scenario: Scenario, out: str | Path, *, executor: str = "serial", workers: int = 2,
                 device: str = "cpu", on_progress: Callable[[str], None] | None = None) -> JobResult:
    """Measure every cell of ``scenario`` not already in ``out/records.jsonl`` and write
    ``results.json`` (strict JSON), ``results.csv`` and ``report.html`` into ``out``."""
    if device != "cpu":
        raise ValueError("the sweep engine measures on the CPU; --device applies to training and attacks")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    store = ResultStore(out / "records.jsonl")
    clear_cache()
    cells = plan(scenario)
    ran = execute(cells, store, executor=executor, workers=workers, on_progress=on_progress)
    records = store.current()
    gaps = run_gaps(records, scenario.run)
    points = configurations(records)
    # the plain links' front; a ciphered link (codec+cipher) adds secrecy, shown beside it
    envelope = {f"{ch}@{snr:g}": pareto_front({s: p for (s, c, x), p in points.items()
                                               if c == ch and x == snr and "+" not in s},
                                              ("psnr", "latency_ms", "energy_mj"))
                for ch in scenario.run.channels for snr in scenario.run.snr_db}
    region = operating_region(points, scenario.constraints)
    meta: dict[str, Any] = {"semguard": __version__, "scenario": scenario.to_json(), "device": device,
                            "executor": executor, "workers": workers, "cells": len(cells), "cells_run": ran,
                            # measuring time of every reported cell, summed (kept across resumes)
                            "seconds": store.seconds(), "session_seconds": round(time.monotonic() - t0, 1)}
    body = {"meta": meta,
            "gaps": [{"comparison": t, "channel": ch, "snr_db": snr, "metric": "psnr", **g.to_json()}
                     for t, rows in gaps.items() for ch, row in rows.items() for snr, g in row.items()],
            "envelope": envelope,
            "operating_region": [{"system": r.system, "ok": r.ok, "reason": r.reason} for r in region],
            "records": [r.to_json() for r in records]}
    (out / "results.json").write_text(json.dumps(strict_json(body), indent=1, allow_nan=False))
    page = write_report(out, scenario, records, gaps, meta)
    return JobResult(store=store, gaps=gaps, envelope=envelope, region=region, meta=meta,
                     paths={"json": out / "results.json", "csv": out / "results.csv", "html": page})
