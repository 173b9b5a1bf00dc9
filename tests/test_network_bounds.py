"""The honest-range bounds of bounds.py against hand-computed numbers and a brute-force attacker."""

import itertools

import pytest
import torch

from semguard.network import bounds, fusion


def test_median_range_hand_computed():
    h = torch.arange(1.0, 8.0).view(7, 1)                      # honest 1..7, f = 3, n = 10
    lo, hi = bounds.median_range(h, 3)
    assert (lo.item(), hi.item()) == (2.5, 5.5)                # (s2 + s3) / 2 and (s5 + s6) / 2
    lo, hi = bounds.median_range(h[:4], 3)                     # n = 7: the whole honest range
    assert (lo.item(), hi.item()) == (1.0, 4.0)
    lo, hi = bounds.median_range(h[:6], 1)                     # n = 7, f = 1: s3 and s4
    assert (lo.item(), hi.item()) == (3.0, 4.0)
    with pytest.raises(ValueError, match="f < n/2"):
        bounds.median_range(h[:3], 3)


def test_median_range_is_what_an_attacker_reaches():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(7, 1, generator=g, dtype=torch.float64)
    lo, hi = bounds.median_range(h, 3)
    grid = torch.linspace(-4, 4, 9, dtype=torch.float64)
    reached = [fusion.coordinate_median(torch.cat([h, torch.stack(a).view(3, 1)])).item()
               for a in itertools.product(grid, repeat=3)]
    assert min(reached) == pytest.approx(lo.item()) and max(reached) == pytest.approx(hi.item())


def test_worst_case_decisions_hand_computed():
    # 7 honest agents, 2 classes, f = 3.  Object 0: every honest agent sure of class 0 -> safe.
    # Object 1: 4 agents lean to class 0, 3 to class 1 -> class 1's upper end reaches class 0's lower end.
    safe = torch.tensor([[0.0, -5.0]] * 7)
    split = torch.tensor([[0.0, -1.0]] * 4 + [[-1.0, 0.0]] * 3)
    ok = bounds.median_worst_case_correct(torch.stack([safe, split]), torch.tensor([0, 0]), 3)
    assert ok.tolist() == [True, False]
    # votes, 4 classes: 7 for the label -> safe; 5 v 2 -> 5 > 2 + 3 fails (tie to the attacker); 6 v 1 -> safe
    d = torch.tensor([[0] * 7, [0] * 5 + [1] * 2, [0] * 6 + [3]])
    assert bounds.vote_worst_case_correct(d, torch.zeros(3, dtype=torch.long), 3, 4).tolist() == [True, False, True]


def test_median_bound_matches_a_brute_force_attacker():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(40, 7, 3, generator=g, dtype=torch.float64)
    h[..., 0] += 1.5                                            # the label leads, by more on some objects
    y = torch.zeros(40, dtype=torch.long)
    ok = bounds.median_worst_case_correct(h, y, 3)
    # the attacker's best: all three agents send "class c high, the rest low", for each wrong c
    broken = torch.zeros(40, dtype=torch.bool)
    for c in (1, 2):
        a = torch.full((40, 3, 3), -100.0, dtype=torch.float64)
        a[..., c] = 100.0
        dec = fusion.coordinate_median(torch.cat([h, a], 1)).argmax(-1)
        broken |= dec != y
    assert torch.equal(ok, ~broken) and 0 < int(ok.sum()) < 40
