"""bench/attacks_digital.py's equal-damage arithmetic: the PSR where a grid crosses the damage level,
the strongest jammer, and the learned / digital power ratio with its bound, against numbers by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench_module import load_bench


def test_crossing_interpolates_between_the_bracketing_budgets() -> None:
    b = load_bench("attacks_digital")
    # 24 dB at -20, 16 dB at -10: 20 dB is half way, -15 dB; the -25 point (30 dB) is above the level
    pts = [(-10.0, 16.0), (-25.0, 30.0), (-20.0, 24.0)]
    assert b.damage_crossing(pts, 20.0) == (pytest.approx(-15.0), "=")
    # 30 -> 24 over -25 .. -20 crosses 27 dB at -22.5
    assert b.damage_crossing(pts, 27.0) == (pytest.approx(-22.5), "=")
    assert b.psr_for_damage(pts, 20.0) == pytest.approx(-15.0)


def test_crossing_outside_the_grid_is_a_bound() -> None:
    b = load_bench("attacks_digital")
    pts = [(-25.0, 19.6), (-20.0, 15.9), (-5.0, 6.2)]
    assert b.damage_crossing(pts, 20.0) == (-25.0, "<=")  # already damaged at the weakest budget
    assert b.psr_for_damage(pts, 20.0) == -25.0
    assert b.damage_crossing(pts, 5.0) == (-5.0, ">")  # never down to 5 dB
    assert b.psr_for_damage(pts, 5.0) is None
    assert b.damage_crossing([], 20.0) == (None, None)


def test_power_ratio_and_its_bound() -> None:
    b = load_bench("attacks_digital")
    # -15.5 against -23.6: 8.1 dB, 10^0.81 = 6.457x
    assert b.power_ratio((-15.5, "="), (-23.6, "=")) == (pytest.approx(10 ** 0.81), "=")
    # learned already damaged at -25 (<= -25) against an exact -20: at most 10^-0.5
    assert b.power_ratio((-25.0, "<="), (-20.0, "=")) == (pytest.approx(10 ** -0.5), "<=")
    # learned exact -11.8 against a digital link not down by -5 dB: at most 10^-0.68 = 0.209x
    r, k = b.power_ratio((-11.8, "="), (-5.0, ">"))
    assert (round(r, 3), k) == (0.209, "<=")
    # learned not reached by -5 against digital exact -6.7: at least 10^0.17 = 1.479x
    r, k = b.power_ratio((-5.0, ">"), (-6.7, "="))
    assert (round(r, 3), k) == (1.479, ">=")
    # digital already down at the weakest budget: its true PSR is lower, so the ratio is a lower bound
    assert b.power_ratio((-15.0, "="), (-40.0, "<="))[1] == ">="
    # bounds pointing opposite ways (both already damaged, both not reached) say nothing
    assert b.power_ratio((-25.0, "<="), (-40.0, "<=")) == (None, None)
    assert b.power_ratio((-5.0, ">"), (-5.0, ">")) == (None, None)
    assert b.power_ratio((None, None), (-5.0, "=")) == (None, None)


def test_strongest_prefers_the_lowest_reaching_psr() -> None:
    b = load_bench("attacks_digital")
    assert b.strongest([(-12.1, "="), (-23.6, "="), (-5.0, ">")]) == (-23.6, "=")
    assert b.strongest([(-25.0, "="), (-25.0, "<=")]) == (-25.0, "<=")
    assert b.strongest([(-5.0, ">"), (-5.0, ">")]) == (-5.0, ">")
    assert b.strongest([]) == (None, None)


def test_learned_records_fall_back_to_the_running_records(tmp_path: Path) -> None:
    b = load_bench("attacks_digital")
    out = tmp_path / "grid.json"
    assert b.learned_records(out) == []
    (tmp_path / "grid.d").mkdir()
    rec = {"codec": "c", "attack": "pgd", "budget": -10.0, "attacked": 12.0}
    (tmp_path / "grid.d" / "records.jsonl").write_text(json.dumps(rec) + "\n")
    assert b.learned_records(out) == [rec]
    out.write_text(json.dumps({"records": [rec, rec]}))
    assert len(b.learned_records(out)) == 2  # the finished JSON wins


def test_ratio_records_from_a_digital_and_a_learned_grid(tmp_path: Path) -> None:
    """main --reuse: the digital records in --out, a learned grid in --learned, the ratios by hand."""
    b = load_bench("attacks_digital")
    digital = [{"attack": "clean", "psr_db": None, "psnr": 33.0}]
    for psr, g, burst in ((-30.0, 33.0, 33.0), (-20.0, 33.0, 11.0), (-10.0, 11.0, 11.0)):
        digital += [{"attack": "gaussian", "psr_db": psr, "psnr": g}, {"attack": "burst-0.25", "psr_db": psr, "psnr": burst}]
    out = tmp_path / "digital.json"
    out.write_text(json.dumps({"records": digital, "seconds": 100.0}))
    learned = [{"codec": "c", "attack": "pgd", "budget": -20.0, "attacked": 24.0},
               {"codec": "c", "attack": "pgd", "budget": -10.0, "attacked": 16.0},
               {"codec": "c", "attack": "universal", "budget": -20.0, "attacked": 28.0},
               {"codec": "c", "attack": "universal", "budget": -10.0, "attacked": 22.0}]
    lp = tmp_path / "learned.json"
    lp.write_text(json.dumps({"records": learned}))
    assert b.main(["--reuse", "--out", str(out), "--learned", str(lp)]) == 0
    d = json.loads(out.read_text())
    assert d["seconds_total"] - d["seconds"] == pytest.approx(100.0)  # the kept records' time carried on
    # 33 -> 11 dB crosses 20 dB 13/22 of the way: Gaussian over -20 .. -10, the burst over -30 .. -20
    g, burst = -20 + 10 * 13 / 22, -30 + 10 * 13 / 22
    assert d["digital_psr_db_for_damage"]["gaussian"] == pytest.approx(g)
    assert d["digital_psr_db_for_damage"]["boundary"] == pytest.approx(burst)  # the strongest white-box jammer
    pgd = d["learned_vs_digital"]["c/pgd"]  # 24 -> 16 over -20 .. -10: -15 dB, against the burst's
    assert pgd["psr_db_for_damage"] == pytest.approx(-15.0)
    assert pgd["power_ratio"] == pytest.approx(10 ** ((-15.0 - burst) / 10)) and pgd["power_ratio_bound"] == "="
    assert pgd["learned_over_digital_power"] == pytest.approx(10 ** 0.909090909)  # 9.09 dB: 8.11x
    uni = d["learned_vs_digital"]["c/universal"]  # never down to 20 by -10 dB, against Gaussian's -14.09
    assert uni["learned_crossing"] == [-10.0, ">"] and uni["psr_db_for_damage"] is None
    assert uni["power_ratio"] == pytest.approx(10 ** ((-10.0 - g) / 10)) and uni["power_ratio_bound"] == ">="
    # a second learned grid with PGD at -30 dB (30 dB: above the level) is pooled with the first; the
    # crossing stays -15; one that is at 19 dB already at -30 dB makes PGD's crossing "at most -30"
    more = tmp_path / "more.json"
    more.write_text(json.dumps({"records": [{"codec": "c", "attack": "pgd", "budget": -30.0, "attacked": 30.0}]}))
    b.main(["--reuse", "--out", str(out), "--learned", str(lp), str(more)])
    pgd = json.loads(out.read_text())["learned_vs_digital"]["c/pgd"]
    assert pgd["learned_crossing"] == [pytest.approx(-15.0), "="] and pgd["budgets"] == [-30.0, -20.0, -10.0]
    more.write_text(json.dumps({"records": [{"codec": "c", "attack": "pgd", "budget": -30.0, "attacked": 19.0}]}))
    b.main(["--reuse", "--out", str(out), "--learned", str(lp), str(more)])
    pgd = json.loads(out.read_text())["learned_vs_digital"]["c/pgd"]
    assert pgd["learned_crossing"] == [-30.0, "<="] and pgd["power_ratio_bound"] == "<="
    assert pgd["power_ratio"] == pytest.approx(10 ** ((-30.0 - burst) / 10))
    assert uni["learned_over_digital_power"] is None and math.isfinite(uni["power_ratio"])


def test_tables_print_bounds_as_bounds() -> None:
    t = load_bench("attacks_tables")
    assert t._crossing([-15.53, "="], -15.53) == "-15.5"
    assert t._crossing([-25.0, "<="], -25.0) == "<= -25"
    assert t._crossing([-5.0, ">"], None) == "> -5"
    assert t._crossing(None, None) == "not reached"  # a session-10/12 record without the crossing
    assert t._crossing(None, -12.05) == "-12.1"
    assert t._ratio({"power_ratio": 6.4319, "power_ratio_bound": "="}) == "6.4x"
    assert t._ratio({"power_ratio": 0.2089, "power_ratio_bound": "<="}) == "<= 0.21x"
    assert t._ratio({"power_ratio": None, "power_ratio_bound": None, "learned_over_digital_power": None}) == "-"
    assert t._ratio({"learned_over_digital_power": 1.4341}) == "1.4x"  # the older records
