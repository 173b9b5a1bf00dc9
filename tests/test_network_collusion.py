"""The collusion signature: leave-one-out residuals, their running Gram matrix and the k-th most aligned
partner, by hand; the node flags agents that move together and not honest agents that err apart."""

import math

import pytest
import torch

from semguard.network import collusion as col
from semguard.network import fusion
from semguard.network.byzantine import ByzantineThreat
from semguard.network.node import FusionNode


def test_loo_residual_and_centring_hand_computed():
    p = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]], dtype=torch.float64)
    # agent 0: others (0, 1) and (0.5, 0.5), median of two = their mean (0.25, 0.75)
    r = col.loo_residual(p)
    assert r[0].tolist() == [[0.75, -0.75], [-0.75, 0.75], [0.0, 0.0]]
    assert torch.equal(col.centred_residual(p), r)          # the residuals already sum to 0 over agents
    q = torch.tensor([[[1.0], [2.0], [3.0], [10.0]]], dtype=torch.float64)
    # odd N - 1 = 3: agent 3's others 1, 2, 3 -> median 2 -> 8; agent 0's 2, 3, 10 -> 3 -> -2
    assert col.loo_residual(q)[0, :, 0].tolist() == [-2.0, -1.0, 1.0, 8.0]
    assert col.centred_residual(q)[0, :, 0].tolist() == [-3.5, -2.5, -0.5, 6.5]    # less the mean 1.5
    # agent 3 excluded: the others' medians come from the included three only, and the centring too:
    # agent 0 -> 1 - median(2, 3) = -1.5, 1 -> 2 - 2 = 0, 2 -> 3 - 1.5 = 1.5, 3 -> 10 - 2 = 8; mean of 0..2 = 0
    inc = torch.tensor([True, True, True, False])
    assert col.loo_residual(q, inc)[0, :, 0].tolist() == [-1.5, 0.0, 1.5, 8.0]
    assert col.centred_residual(q, inc)[0, :, 0].tolist() == [-1.5, 0.0, 1.5, 8.0]
    with pytest.raises(ValueError, match=">= 2 included"):
        col.loo_residual(torch.ones(2, 1, 3))


def test_gram_and_kth_cosine_hand_computed():
    res = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]], dtype=torch.float64)      # [B=1, N=3, C=2]
    g = col.gram_update(torch.zeros(3, 3, dtype=torch.float64), res)
    assert g.tolist() == [[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 9.0]]
    g2 = col.gram_update(g, res)                                                          # it accumulates
    assert torch.equal(g2, 2 * g)
    assert col.collusion_score(g, 1).tolist() == [1.0, 1.0, 0.0]        # agents 0 and 1 point the same way
    assert col.collusion_score(g, 2).tolist() == [0.0, 0.0, 0.0]        # the second partner is orthogonal
    assert col.collusion_score(g, 3).tolist() == [0.0, 0.0, 0.0]        # fewer than k + 1 agents
    assert col.threshold(3.0, 2) == 3.0 and col.threshold(3.0, 1) == pytest.approx(7.0)


def _round(g, B, colluders, split):
    """10 agents, 4 classes, truth 0.  Honest agents are right with p ~ 0.9 and, each on its own ~15 %
    of the objects, put their mass on a random wrong class.  On the first ``split`` objects three random
    honest agents see class 1 and the colluders say 1 with certainty (so they side with the plurality
    they swing)."""
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


def test_node_flags_colluders_that_side_with_the_swung_vote_and_no_honest_agent():
    g = torch.Generator().manual_seed(0)
    bad = [7, 8, 9]
    node = FusionNode("trust-median", 3, 10)
    blind = FusionNode("trust-median", 3, 10, collusion=math.inf)
    kept = torch.ones(10, dtype=torch.bool)
    for r in range(5):
        logp = _round(g, 20, bad, split=6)
        for nd in (node, blind):
            ref = nd.reference(logp, fusion.weighted_median(logp, nd.reference_weights(kept)), kept)
            nd.step(logp, logp, ref, None, kept)
        assert not node.last.strong[:7].any(), (r, node.last.collusion)       # never an honest agent
        if r >= 2:                                     # from the third round (60 objects) on, every colluder
            assert node.last.strong[bad].all(), (r, node.last.collusion)
            assert (node.last.collusion[bad] > 3.0).all() and (node.last.collusion[:7] < 1.0).all()
    assert (node.weights(node.reputation)[bad] == 0).all()
    assert not blind.last.strong[bad].any()            # the decision-gap checks alone do not see them


def test_adaptive_slack_is_a_declared_parameter():
    assert ByzantineThreat("adaptive", slack=0.95).record()["slack"] == 0.95
    assert ByzantineThreat("adaptive", split=True).record()["split"] is True
    assert "slack" not in ByzantineThreat("crafted").record()
    with pytest.raises(ValueError, match="slack"):
        ByzantineThreat("adaptive", slack=0.0)


def test_adaptive_split_attacker_runs_against_the_collusion_check():
    """The split variant (smaller groups on objects all attackers cannot push unseen) on the real codec:
    it records its parameters and costs accuracy, never adds any."""
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.network.multiagent import MultiAgentConfig, run_multiagent

    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(40)
    kw = {"agents": 7, "byzantine": 3, "fusion": "trust-median", "rounds": 2, "batch": 20, "seed": 0}
    clean = run_multiagent(MultiAgentConfig(threat=ByzantineThreat("none"), **kw), x, y)
    res = run_multiagent(MultiAgentConfig(threat=ByzantineThreat("adaptive", steps=4, eot=1, split=True), **kw), x, y)
    assert res["config"]["threat"]["split"] is True and res["config"]["threat"]["slack"] == 0.8
    assert all(r["attacking"] for r in res["rounds"])
    assert res["accuracy"] <= clean["accuracy"]


def test_most_aligned_group_and_aligned_drop_median_hand_computed():
    # 5 agents: 0, 1, 2 pairwise aligned 0.9, 0.8, 0.7 (sum 2.4); agents 3, 4 aligned 0.95 with each other only
    cos = torch.eye(5, dtype=torch.float64)
    for (i, j), v in {(0, 1): 0.9, (0, 2): 0.8, (1, 2): 0.7, (3, 4): 0.95, (2, 3): 0.1}.items():
        cos[i, j] = cos[j, i] = v
    keep = torch.ones(5, dtype=torch.bool)
    assert fusion.most_aligned(cos, keep, 3).tolist() == [True, True, True, False, False]
    # pairs: (3, 4) 0.95 beats (0, 1) 0.9; k = 1: agent 3 (its best partner 0.95; ties go to the lower index)
    assert fusion.most_aligned(cos, keep, 2).tolist() == [False, False, False, True, True]
    assert fusion.most_aligned(cos, keep, 1).tolist() == [False, False, False, True, False]
    # agent 4 not kept: the best pair is (0, 1)
    assert fusion.most_aligned(cos, torch.tensor([1, 1, 1, 1, 0], dtype=torch.bool), 2).tolist() == \
        [True, True, False, False, False]
    assert not fusion.most_aligned(cos, keep, 0).any()
    x = torch.tensor([[5.0], [6.0], [7.0], [1.0], [2.0]], dtype=torch.float64)
    # drop 0, 1, 2 -> median of (1, 2) = 1.5; drop 3, 4 -> median of (5, 6, 7) = 6
    assert fusion.aligned_drop_median(x, keep, cos, 3).tolist() == [1.5]
    assert fusion.aligned_drop_median(x, keep, cos, 2).tolist() == [6.0]
    # gated: the group's least aligned pair (1, 2) is 0.7, so over 0.65 it is dropped, under 0.75 not (median of all 5)
    assert fusion.aligned_drop_median(x, keep, cos, 3, min_cos=0.65).tolist() == [1.5]
    assert fusion.aligned_drop_median(x, keep, cos, 3, min_cos=0.75).tolist() == [5.0]
    # k = 1: agent 3's best partner is 0.95 -> dropped over 0.9 (median of 5, 6, 7, 2 = 5.5), kept under 0.96
    assert fusion.aligned_drop_median(x, keep, cos, 1, min_cos=0.9).tolist() == [5.5]
    assert fusion.aligned_drop_median(x, keep, cos, 1, min_cos=0.96).tolist() == [5.0]
    rule = fusion.FusionRule("trust-aligned", f=3)
    # agent 0 already out (weight 0): only f - 1 = 2 more are dropped, agents 3 and 4 -> median(6, 7) = 6.5
    assert rule(x, torch.tensor([0.0, 1, 1, 1, 1]), cos).tolist() == [6.5]
    with pytest.raises(ValueError, match="alignment"):
        rule(x, torch.ones(5))
    with pytest.raises(ValueError, match="cannot drop"):
        fusion.most_aligned(cos, keep, 5)


def test_trust_aligned_node_drops_the_colluders_it_never_flags():
    """Colluders that swing 2 objects a round stay far under the collusion threshold (never strong) but
    are the most aligned triple from the third round (60 objects) on, so trust-aligned then decides those
    objects without them, where trust-median is swung on every one."""
    g = torch.Generator().manual_seed(0)
    bad = [7, 8, 9]
    nodes = {r: FusionNode(r, 3, 10) for r in ("trust-median", "trust-aligned")}
    kept = torch.ones(10, dtype=torch.bool)
    wrong = {r: 0 for r in nodes}
    for r in range(6):
        logp = _round(g, 20, bad, split=2)
        for name, nd in nodes.items():
            ref = nd.reference(logp, fusion.weighted_median(logp, nd.reference_weights(kept)), kept)
            fused, _ = nd.step(logp, logp, ref, None, kept)
            assert not nd.last.strong[bad].any() and (nd.last.collusion[bad] < 1.5).all()
            if r >= 2:
                wrong[name] += int((fused.argmax(-1)[:2] != 0).sum())
        if r >= 2:
            nd = nodes["trust-aligned"]
            assert fusion.most_aligned(nd.cosines(nd.gram), kept, 3).nonzero().flatten().tolist() == bad
    assert wrong["trust-median"] == 8 and wrong["trust-aligned"] <= 2, wrong
