"""The HTML report in a real browser (Debian's headless Chromium): every figure decodes, no script
error, and a screenshot is saved.  Skipped where Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from semguard.evaluation.html_report import write_report
from semguard.evaluation.records import Record
from semguard.evaluation.scenario import load_scenario

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def _records() -> list[Record]:
    recs = []
    for ch in ("awgn", "rayleigh"):
        for snr in (0.0, 10.0, 20.0):
            for i, sys_ in enumerate(("switched-cbr1_6", "adjscc-cbr1_6", "webp_ldpc")):
                v = 20.0 + snr / 2 - i
                recs.append(Record(sys_, ch, snr, "psnr", v, {"realizations": 1}, [v - 1, v, v + 1]))
            for sys_, lat in (("switched-cbr1_6", 80.0), ("adjscc-cbr1_6", 40.0)):
                recs += [Record(sys_, ch, snr, "latency_ms", lat), Record(sys_, ch, snr, "energy_mj", lat / 10)]
            recs += [Record("switched-cbr1_6+mixing", ch, snr, "psnr_bob", 20 + snr / 2),
                     Record("switched-cbr1_6+mixing", ch, snr, "psnr_eve", 8.0)]
    return recs


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path) -> None:
    page = write_report(tmp_path, load_scenario("default"), _records(), {}, {"semguard": "test", "device": "cpu",
                                                                            "cells": 1, "seconds": 0, "session_seconds": 0})
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing to fetch
    n_fig = html.count('class="figure"')
    assert n_fig == 4                                          # fidelity, two envelopes, Bob vs Eve
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert f'data-figures-loaded="{n_fig}"' in body and 'data-errors="0"' in body, body
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,2400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000
