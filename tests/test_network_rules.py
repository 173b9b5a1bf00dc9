"""Fusion rules, W-MSR and graph robustness against hand-computed numbers and their guarantees."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semguard.network import consensus, fusion, graph, trust
from semguard.registry import available, build


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_rules_hand_computed():
    x = t([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [100.0, -50.0]])
    assert fusion.fuse_mean(x).tolist() == [26.5, 2.5]
    assert fusion.coordinate_median(x).tolist() == [2.5, 15.0]           # even N: mean of middle two
    assert fusion.coordinate_median(x[:3]).tolist() == [2.0, 20.0]
    assert fusion.trimmed_mean(x, 1).tolist() == [2.5, 15.0]              # drop 1 and 100 / -50 and 30
    assert fusion.weighted_mean(x, t([1, 1, 2, 0])).tolist() == [2.25, 22.5]


def test_geometric_median_matches_known_points():
    # three collinear points: the geometric median is the middle one
    x = t([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    assert torch.allclose(fusion.geometric_median(x, iters=200), t([1.0, 0.0]), atol=1e-4)
    # the four corners of a square plus one far outlier: the median stays inside the square
    x = t([[0, 0], [0, 1], [1, 0], [1, 1], [1e6, 1e6]])
    z = fusion.geometric_median(x, iters=300)
    assert (z >= 0).all() and (z <= 1.2).all()
    # the mean is dragged away by the same outlier
    assert fusion.fuse_mean(x)[0] > 1e5


def test_rules_batched_and_differentiable():
    x = torch.randn(3, 7, 4, dtype=torch.float64, requires_grad=True)
    assert set(available("fusion")) == {"mean", "median", "trimmed-mean", "geomed", "trust", "trust-median",
                                        "trust-trimmed", "trust-aligned", "trust-capped"}
    tm = build("fusion", "trust-median")
    v = t([[1.0], [2.0], [9.0], [100.0]])
    assert tm(v, torch.tensor([1.0, 1.0, 1.0, 0.0])).tolist() == [2.0]     # median of the trusted three
    assert torch.equal(build("fusion", "trimmed-mean", f=2)(x), fusion.trimmed_mean(x, 2))
    w = torch.tensor([1.0, 0, 0, 0, 0, 0, 1.0])
    assert torch.allclose(build("fusion", "trust")(x, w), 0.5 * (x[:, 0] + x[:, 6]))
    for rule in (fusion.fuse_mean, fusion.coordinate_median, fusion.geometric_median):
        z = rule(x)
        assert z.shape == (3, 4)
        z.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        x.grad = None
    assert fusion.trimmed_mean(x, 2).shape == (3, 4)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="f < N/2"):
        fusion.trimmed_mean(torch.zeros(4, 3), 2)
    with pytest.raises(ValueError, match="f < N/2"):
        fusion.check_byzantine_fraction(10, 5, "median")
    fusion.check_byzantine_fraction(10, 5, "mean")                       # the mean needs no bound
    with pytest.raises(ValueError, match="agent vectors"):
        fusion.fuse_mean(torch.zeros(3))
    with pytest.raises(ValueError, match="weights must have shape"):
        fusion.weighted_mean(torch.zeros(4, 2), torch.ones(3))
    with pytest.raises(ValueError, match="not connected"):
        graph.check_graph(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=bool))
    with pytest.raises(ValueError, match="graph must be one of"):
        graph.make_graph("star", 5)


def test_robustness_of_known_graphs():
    # K_n is ceil(n/2)-robust and no more; a ring is 1-robust; a disconnected graph 0
    for n in (3, 4, 7, 10):
        assert graph.robustness(graph.complete(n)) == (n + 1) // 2
    assert graph.robustness(graph.ring(8)) == 1
    two = np.zeros((4, 4), dtype=bool)
    two[0, 1] = two[1, 0] = two[2, 3] = two[3, 2] = True
    assert graph.robustness(two) == 0
    # a path 0-1-2: S1={0}, S2={2} are each 1-reachable; {0,1} vs {2}: 2 has one outside neighbour
    path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=bool)
    assert graph.robustness(path) == 1
    # the ring with two neighbours a side on 8 nodes is 2-robust but not 3-robust
    assert graph.robustness(graph.ring(8, 2)) == 2


def test_average_and_wmsr_hand_computed():
    adj = graph.complete(3)
    x = t([[0.0], [3.0], [9.0]])
    assert consensus.average_step(x, adj).flatten().tolist() == [4.0, 4.0, 4.0]
    # W-MSR f=1 on K_3: node 0 (value 0) drops 9 (largest above), keeps 3 -> (0+3)/2
    # node 1 (value 3) drops 9 above and 0 below -> 3; node 2 drops 0 (smallest below) -> (9+3)/2
    assert consensus.wmsr_step(x, adj, 1).flatten().tolist() == [1.5, 3.0, 6.0]
    # f=0 is plain averaging
    assert torch.allclose(consensus.wmsr_step(x, adj, 0), consensus.average_step(x, adj))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(7, 10))
def test_wmsr_never_leaves_the_honest_range_on_a_robust_graph(seed, n):
    # K_n is ceil(n/2)-robust: the largest f with 2f+1 <= ceil(n/2) meets the guarantee's condition
    f = ((n + 1) // 2 - 1) // 2
    adj = graph.complete(n)
    assert graph.robustness(adj) >= 2 * f + 1
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=g, dtype=torch.float64)
    bad = torch.zeros(n, dtype=torch.bool)
    bad[torch.randperm(n, generator=g)[:f]] = True
    evil = torch.where(torch.rand(n, 3, generator=g) > 0.5, 1e3, -1e3).to(torch.float64)
    traj = consensus.gossip(x, adj, 30, rule="wmsr", f=f, byzantine=bad, byzantine_values=evil)
    lo, hi = x[~bad].min(0).values, x[~bad].max(0).values
    honest = traj[:, ~bad]
    assert (honest >= lo - 1e-12).all() and (honest <= hi + 1e-12).all()
    spread = honest[-1].max(0).values - honest[-1].min(0).values
    assert (spread < 1e-3).all()                                        # and they agree
    # plain averaging on the same graph leaves the honest range at once
    plain = consensus.gossip(x, adj, 3, rule="average", byzantine=bad, byzantine_values=evil.abs())
    assert (plain[1:, ~bad].abs() > 1.0).any()


def test_trust_functions():
    rep = trust.update_reputation(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]), gain=0.25, loss=0.5)
    assert rep.tolist() == [0.625, 0.25]                                 # slow to earn, quick to lose
    assert trust.trust_weights(torch.tensor([0.75, 0.25]), threshold=0.5).tolist() == [0.75, 0.0]
    assert trust.trust_weights(torch.tensor([0.1, 0.2]), threshold=0.5).tolist() == [1.0, 1.0]
    y = torch.tensor([[1 + 1j, 0j], [1 + 0j, 1 + 0j]])
    hist = torch.stack([y + torch.tensor([[0.1, 0.0], [3.0, 0.0]]), y + 5])
    nz = torch.full((2, 2), 0.01)
    s = trust.replay_statistic(y, nz, hist, torch.full((2, 2, 2), 0.01))

    def llr(d2, v=0.02):
        return -d2 / v - math.log(v) + d2 / (2 + v) + math.log(2 + v)
    # agent 0 replays (d^2 = 0.01 and 0 on its two symbols), agent 1 is a fresh block (d^2 = 9, 0)
    assert torch.allclose(s, torch.tensor([llr(0.01) + llr(0.0), llr(9.0) + llr(0.0)]), rtol=1e-5)
    assert s[0] > 0 > s[1]
    # a history block received in a deep fade (huge noise) says nothing either way
    deep = trust.replay_statistic(y, nz, hist[:1] + 3, torch.full((1, 2, 2), 1e6))
    assert deep.abs().max() < 1e-3
    with pytest.raises(ValueError, match="gain"):
        trust.update_reputation(rep, rep, gain=0.0)
