"""Envelopes: Pareto fronts and the operating region, against hand-worked cases."""

from __future__ import annotations

import pytest

from semguard.evaluation.envelope import configurations, dominates, operating_region, pareto_front
from semguard.evaluation.records import Record
from semguard.evaluation.scenario import Constraint


def test_pareto_front_by_hand() -> None:
    pts = {"A": {"psnr": 30.0, "latency_ms": 10.0, "energy_mj": 5.0},
           "B": {"psnr": 28.0, "latency_ms": 5.0, "energy_mj": 5.0},
           "C": {"psnr": 27.0, "latency_ms": 6.0, "energy_mj": 6.0},     # B beats it everywhere
           "D": {"psnr": 30.0, "latency_ms": 10.0, "energy_mj": 5.0},    # ties A: neither dominates
           "E": {"psnr": 40.0}}                                           # lacks objectives: not ranked
    obj = ("psnr", "latency_ms", "energy_mj")
    assert dominates(pts["B"], pts["C"], obj) and not dominates(pts["A"], pts["D"], obj)
    assert sorted(pareto_front(pts, obj)) == ["A", "B", "D"]
    assert sorted(pareto_front(pts, ("psnr",))) == ["E"]
    with pytest.raises(ValueError, match="unknown objectives"):
        pareto_front(pts, ("speed",))


def test_configurations_and_operating_region() -> None:
    recs = [Record("c1", "awgn", 10.0, "psnr", 29.0), Record("c1", "awgn", 10.0, "latency_ms", 12.0),
            Record("c1", "rayleigh", 10.0, "psnr", 27.0),
            Record("c2", "awgn", 10.0, "psnr", 31.0), Record("c2", "awgn", 10.0, "latency_ms", 30.0),
            Record("c2", "rayleigh", 10.0, "psnr", 30.0),
            Record("c1+mixing", "awgn", 10.0, "psnr_bob", 29.1), Record("c1+mixing", "awgn", 10.0, "psnr_eve", 8.0)]
    pts = configurations(recs)
    assert pts[("c1", "rayleigh", 10.0)] == {"psnr": 27.0, "latency_ms": 12.0}    # cost attaches on every channel
    assert pts[("c1+mixing", "awgn", 10.0)] == {"psnr": 29.1, "psnr_eve": 8.0, "latency_ms": 12.0}
    rows = {r.system: r for r in operating_region(pts, [Constraint("psnr", ">=", 28.0, snr_db=10.0),
                                                         Constraint("latency_ms", "<=", 20.0)])}
    assert not rows["c1"].ok and "27.00 at rayleigh 10 dB" in rows["c1"].reason
    assert not rows["c2"].ok and rows["c2"].reason.startswith("latency_ms <= 20: 30.00")
    only_awgn = {r.system: r.ok for r in operating_region(pts, [Constraint("psnr", ">=", 28.0, channel="awgn"),
                                                                 Constraint("psnr_eve", "<=", 10.0)])}
    assert only_awgn == {"c1": False, "c1+mixing": True, "c2": False}       # psnr_eve unmeasured fails them
