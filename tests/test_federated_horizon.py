"""bench/federated_horizon.py: reading a horizon off a per-round learning curve (hand-computed)."""

from __future__ import annotations

import json

import pytest
from bench_module import load_bench


def test_at_round_is_one_based_and_none_past_the_end() -> None:
    b = load_bench("federated_horizon")
    curve = [0.1, 0.4, 0.55]
    assert b.at_round(curve, 1) == 0.1
    assert b.at_round(curve, 3) == 0.55
    assert b.at_round(curve, 4) is None
    with pytest.raises(ValueError, match="round must be >= 1"):
        b.at_round(curve, 0)


def test_first_within_needs_every_later_round_inside_the_tolerance() -> None:
    b = load_bench("federated_horizon")
    clean = [0.50, 0.60, 0.70, 0.80, 0.80]
    # gaps .20 .01 .05 .015 .00: round 2 is inside .02 but round 3 falls out again, so the answer is 4
    other = [0.30, 0.59, 0.65, 0.785, 0.80]
    assert b.first_within(clean, other, 0.02) == 4
    assert b.first_within(clean, other, 0.05) == 2
    assert b.first_within(clean, other, 0.0) == 5
    assert b.first_within(clean, [0.1] * 5, 0.02) is None
    # above the reference counts as within
    assert b.first_within(clean, [0.9] * 5, 0.0) == 1


def test_merge_keeps_the_longer_run_and_refuses_disagreeing_prefixes(tmp_path) -> None:
    b = load_bench("federated_horizon")
    short = {"runs": {"clean|fedavg|0": {"accuracy": 0.5, "accuracy_by_round": [0.1, 0.5]}}}
    long = {"runs": {"clean|fedavg|0": {"accuracy": 0.7, "accuracy_by_round": [0.1, 0.5, 0.7]}}}
    (tmp_path / "a.json").write_text(json.dumps(short))
    (tmp_path / "b.json").write_text(json.dumps(long))
    runs = b.merge_runs([tmp_path / "a.json", tmp_path / "b.json"])
    assert runs["clean|fedavg|0"]["accuracy_by_round"] == [0.1, 0.5, 0.7]
    # the longer file first: the shorter one is its prefix, not a disagreement
    assert b.merge_runs([tmp_path / "b.json", tmp_path / "a.json"])["clean|fedavg|0"]["accuracy_by_round"] \
        == [0.1, 0.5, 0.7]
    assert b.check_prefix(runs, short["runs"], 2) == []
    assert b.check_prefix(runs, {"clean|fedavg|0": {"accuracy": 0.51, "accuracy_by_round": [0.1, 0.51]}}, 2) \
        == ["clean|fedavg|0"]
    bad = {"runs": {"clean|fedavg|0": {"accuracy": 0.7, "accuracy_by_round": [0.2, 0.5, 0.7]}}}
    (tmp_path / "c.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="differs between the files"):
        b.merge_runs([tmp_path / "a.json", tmp_path / "c.json"])


def test_window_mean_averages_the_rounds_ending_at_h() -> None:
    b = load_bench("federated_horizon")
    curve = [0.1, 0.4, 0.55, 0.65]
    assert b.window_mean(curve, 4, 1) == 0.65
    assert b.window_mean(curve, 4, 3) == pytest.approx((0.4 + 0.55 + 0.65) / 3)
    assert b.window_mean(curve, 2, 3) is None
    assert b.window_mean(curve, 5, 1) is None
    with pytest.raises(ValueError, match="--window must be >= 1"):
        b.window_mean(curve, 4, 0)
