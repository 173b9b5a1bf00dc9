"""The two session-13 defences: the per-agent influence cap (centred clipping) with its guarantee, and the
long-horizon consistency check (leave-group-out reference), by hand and on a node."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semguard.network import consistency as cons
from semguard.network import fusion
from semguard.network.byzantine import ByzantineThreat
from semguard.network.node import FusionNode


def test_capped_mean_hand_computed():
    x = torch.tensor([[0.0, 5.0], [1.0, 5.0], [10.0, -7.0]], dtype=torch.float64)
    c = torch.tensor([1.0, 5.0], dtype=torch.float64)
    # deviations (-1, 0, 9 -> 2) and (0, 0, -12 -> -2): 1 + 1/3 and 5 - 2/3
    assert torch.allclose(fusion.capped_mean(x, c, 2.0), torch.tensor([4 / 3, 13 / 3], dtype=torch.float64))
    assert torch.equal(fusion.capped_mean(x, c, 0.0), c)                                  # cap 0: the centre
    assert torch.allclose(fusion.capped_mean(x, c, math.inf), x.mean(0))                  # no cap: the mean
    keep = torch.tensor([True, True, False])
    assert torch.allclose(fusion.capped_mean(x, c, 2.0, keep), torch.tensor([0.5, 5.0], dtype=torch.float64))
    rule = fusion.FusionRule("trust-capped", f=1)
    # the centre is the median of the kept agents (0, 1) -> (0.5, 5); deviations (-0.5, 0.5) and (0, 0)
    assert torch.allclose(rule(x, torch.tensor([1.0, 1.0, 0.0]), cap=2.0), torch.tensor([0.5, 5.0], dtype=torch.float64))
    # all kept: centre (1, 5), as above
    assert torch.allclose(rule(x, torch.ones(3), cap=2.0), torch.tensor([4 / 3, 13 / 3], dtype=torch.float64))
    with pytest.raises(ValueError, match="cap must be >= 0"):
        fusion.capped_mean(x, c, -1.0)
    with pytest.raises(ValueError, match="centre must have shape"):
        fusion.capped_mean(x, c[:1], 1.0)
    with pytest.raises(ValueError, match="one weight per agent"):
        rule(x)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.floats(0.0, 3.0))
def test_f_agents_move_the_capped_mean_by_at_most_f_cap_over_k(seed, f, cap):
    """For a given centre, f agents sending anything (here up to 1e6 nats away) move every fused coordinate by
    at most 2 f cap / K from what it is with their honest vectors, and by at most f cap / K from what it is
    when they send the centre; the bound is reached by agents at +-infinity."""
    g = torch.Generator().manual_seed(seed)
    n, d = 10, 6
    x = torch.randn(3, n, d, generator=g, dtype=torch.float64)
    center = fusion.coordinate_median(x)
    bad = torch.randperm(n, generator=g)[:f]
    y = x.clone()
    y[:, bad] = 1e6 * torch.randn(3, f, d, generator=g, dtype=torch.float64)
    base = fusion.capped_mean(x, center, cap)
    moved = (fusion.capped_mean(y, center, cap) - base).abs()
    assert (moved <= 2 * f * cap / n + 1e-9).all()
    z = x.clone()
    z[:, bad] = center.unsqueeze(1)
    assert ((fusion.capped_mean(y, center, cap) - fusion.capped_mean(z, center, cap)).abs() <= f * cap / n + 1e-9).all()
    y[:, bad] = 1e9
    assert torch.allclose(fusion.capped_mean(y, center, cap) - fusion.capped_mean(z, center, cap),
                          torch.full((3, d), f * cap / n, dtype=torch.float64))


def test_leave_group_out_reference_and_excess_gap_hand_computed():
    # agents 0, 1 sure of class 1 together; agents 2, 3 lean to class 0, agent 4 slightly to class 1
    p = torch.tensor([[[0.01, 0.99], [0.02, 0.98], [0.6, 0.4], [0.7, 0.3], [0.45, 0.55]]], dtype=torch.float64)
    logp = p.log()
    # agent 0's nearest is 1: the median of 2, 3, 4 decides class 0 (0.6 over 0.4); agent 2's nearest is 3:
    # the median of 0, 1, 4 decides class 1 (0.98 over 0.02); 3's nearest is 2, 4's nearest is 2: class 1
    ref = cons.leave_group_out_reference(logp, 1)
    assert ref.tolist() == [[0, 0, 1, 1, 1]]
    gap = cons.group_gap(logp, ref)[0]
    assert torch.allclose(gap, torch.tensor([math.log(99), math.log(49), math.log(1.5), math.log(7 / 3), 0.0],
                                            dtype=torch.float64))
    # the plurality (3 votes for class 1) is what the pair swung: their gap to it is 0, the excess all theirs
    assert cons.plurality(logp).tolist() == [1]
    assert torch.allclose(cons.excess_gap(logp, 1)[0], torch.tensor([math.log(99), math.log(49), 0.0, 0.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="leave-group-out"):
        cons.leave_group_out_reference(logp, 4)


def test_horizon_z_hand_computed():
    total = torch.tensor([0.1, 0.2, 0.3, 0.4, 2.0, 7.0])
    count = torch.tensor([1.0, 1, 1, 1, 1, 0])
    inc = torch.tensor([True, True, True, True, True, False])
    # median 0.3, MAD 0.1 -> 0.14826; agent 4: 1.7 / 0.14826; agent 5 has no history
    z = cons.horizon_z(total, count, inc)
    assert torch.allclose(z, torch.tensor([-0.2, -0.1, 0.0, 0.1, 1.7, 0.0]) / 0.14826 * (count > 0), atol=1e-5)
    # the floor: equal means give (mean - median) / floor
    assert cons.horizon_z(torch.tensor([1.0, 1, 1, 1.5]), torch.ones(4), torch.ones(4, dtype=torch.bool),
                          floor=0.25).tolist() == [0.0, 0.0, 0.0, 2.0]


def _round(g, B, colluders, split):
    """As in test_network_collusion: 10 agents, 4 classes, truth 0; honest agents err alone on ~15 % of
    objects; on the first ``split`` objects three honest agents see class 1 and the colluders say 1."""
    n, c = 10, 4
    p = torch.full((B, n, c), 0.02)
    p[..., 0] = 0.94
    err = torch.rand(B, n, generator=g) < 0.15
    cls = torch.randint(1, c, (B, n), generator=g)
    p = torch.where(err.unsqueeze(-1), torch.nn.functional.one_hot(cls, c) * 0.7 + 0.1, p)
    for b in range(split):
        p[b, torch.randperm(7, generator=g)[:3]] = torch.tensor([0.2, 0.7, 0.05, 0.05])
    p[:split, colluders] = torch.tensor([0.001, 0.997, 0.001, 0.001])
    return (p / p.sum(-1, keepdim=True)).log()


def test_horizon_check_flags_colluders_under_the_collusion_threshold_and_no_honest_agent():
    """Two swung objects a round: the colluders side with the plurality they swing (decision gap 0) and stay
    under the collusion threshold, but their gap to the reference their group cannot move stands out."""
    g = torch.Generator().manual_seed(1)
    bad = [7, 8, 9]
    node = FusionNode("trust-median", 3, 10, z_horizon=7.0)
    blind = FusionNode("trust-median", 3, 10)
    kept = torch.ones(10, dtype=torch.bool)
    for r in range(6):
        logp = _round(g, 20, bad, split=2)
        for nd in (node, blind):
            ref = nd.reference(logp, fusion.weighted_median(logp, nd.reference_weights(kept)), kept)
            nd.step(logp, logp, ref, None, kept)
        assert not node.last.strong[:7].any(), (r, node.last.horizon)
        assert not blind.last.strong[bad].any(), (r, blind.last.collusion)
        if r >= 2:
            assert (node.last.horizon[bad] > 7.0).all(), (r, node.last.horizon)
    assert (node.weights(node.reputation)[bad] == 0).all()
    assert (blind.weights(blind.reputation)[bad] > 0).all()


def test_stealth_is_a_declared_parameter():
    assert ByzantineThreat("adaptive", stealth=1.0).record()["stealth"] == 1.0
    with pytest.raises(ValueError, match="stealth"):
        ByzantineThreat("adaptive", stealth=-1.0)
