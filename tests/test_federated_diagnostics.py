"""Per-round diagnostics of a federated run (engine.round_diagnostics, bench/federated.py's ``diagnostics``)."""

from __future__ import annotations

import math

import torch
from bench_module import load_bench

from semguard.federated.engine import round_diagnostics


def test_round_diagnostics_hand():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    d = round_diagnostics(X, torch.tensor([4, 7, 9]), torch.tensor([1.0, 0.0]), honest=[4, 7])
    # honest mean (0.5, 0.5), norm 0.7071; aggregate (1, 0): shift |(0.5, -0.5)| / 0.7071 = 1, along 0.5 / 0.5 = 1
    assert math.isclose(d["honest_mean_norm"], 0.70711, abs_tol=1e-5)
    assert d["shift"] == 1.0 and d["along"] == 1.0
    assert d["clients"][9] == {"norm": 3.0, "cos_aggregate": 1.0, "cos_honest_mean": 0.7071, "proj_honest_mean": 3.0}
    assert d["clients"][7]["cos_aggregate"] == 0.0 and d["clients"][7]["proj_honest_mean"] == 1.0


def test_bench_diagnostics_keeps_what_the_rule_reported():
    b = load_bench("federated")
    rounds = [{"round": 1, "accuracy": 0.3, "update_norm": 0.123456789, "weights": {0: 0.5, 1: 0.5},
               "reputation": {0: 0.1234567, 1: 1.0}, "excluded": [], "diagnostics": {"shift": 0.2}},
              {"round": 2, "accuracy": 0.4, "selected": [1]}]
    d = b.diagnostics(rounds)
    assert d[0] == {"round": 1, "update_norm": 0.12346, "weights": {0: 0.5, 1: 0.5}, "reputation": {0: 0.12346, 1: 1.0},
                    "excluded": [], "shift": 0.2}
    assert d[1] == {"round": 2, "selected": [1]}  # accuracy stays in accuracy_by_round, not here
