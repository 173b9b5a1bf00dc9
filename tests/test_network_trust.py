"""Robust trust: weighted robust rules, asymmetric reputation, outlier and history checks, the
camouflage agent losing its weight, and the Byzantine threat declared as a ThreatModel."""

import math

import pytest
import torch

from semguard.attacks.threat import ThreatModel
from semguard.data.shipped import shipped_fashion_mnist
from semguard.network import fusion, trust
from semguard.network.byzantine import MAX_PSR_DB, ByzantineThreat
from semguard.network.multiagent import MultiAgentConfig, run_multiagent
from semguard.network.node import FusionNode


def col(vals):
    return torch.tensor(vals, dtype=torch.float64).unsqueeze(-1)


def test_weighted_median_and_masked_trimmed_mean_hand_computed():
    x = col([1.0, 5.0, 2.0, 100.0, 3.0])
    assert fusion.weighted_median(x, torch.ones(5)).tolist() == [3.0]
    assert fusion.weighted_median(x[:4], torch.ones(4)).tolist() == [3.5]          # even N: middle two
    # sorted 1(w3) 2 3 5 100: total 7, half 3.5, cumulative 3, 4 -> the value 2
    assert fusion.weighted_median(x, torch.tensor([3.0, 1, 1, 1, 1])).tolist() == [2.0]
    assert fusion.weighted_median(x, torch.tensor([1.0, 1, 1, 0, 0])).tolist() == [2.0]   # 1, 5, 2 only
    y = torch.randn(4, 7, 3, dtype=torch.float64)
    assert torch.equal(fusion.weighted_median(y, torch.ones(7)), fusion.coordinate_median(y))
    assert fusion.masked_trimmed_mean(x, torch.ones(5, dtype=torch.bool), 1).item() == pytest.approx(10 / 3)
    # the agent already excluded counts against f: nothing more is trimmed, mean(1, 5, 2, 3)
    keep = torch.tensor([True, True, True, False, True])
    assert fusion.masked_trimmed_mean(x, keep, 1).item() == pytest.approx(2.75)
    assert fusion.masked_trimmed_mean(x, keep, 2).item() == pytest.approx(2.5)      # k = 1: mean(2, 3)
    tt = fusion.FusionRule("trust-trimmed", 1)
    assert tt(x, torch.tensor([0.9, 0.8, 0.7, 0.0, 0.6])).item() == pytest.approx(2.75)
    with pytest.raises(ValueError, match="positive sum"):
        fusion.weighted_median(x, torch.zeros(5))


def test_asymmetric_reputation_one_strong_round_outweighs_many_agreements():
    rep = torch.tensor([0.5])
    for _ in range(3):                                   # three rounds of full agreement, gain 0.1
        rep = trust.update_reputation(rep, torch.tensor([1.0]), gain=0.1, loss=0.5)
    assert rep.item() == pytest.approx(0.63550, abs=1e-5)
    hit = trust.penalise(rep, torch.tensor([True]), cost=0.6)
    assert hit.item() == pytest.approx(0.25420, abs=1e-5)      # under the 0.5 threshold at once
    assert trust.penalise(torch.tensor([0.8, 0.8]), torch.tensor([True, False]), cost=0.6).tolist() == \
        pytest.approx([0.32, 0.8])
    with pytest.raises(ValueError, match="cost"):
        trust.penalise(rep, torch.tensor([True]), cost=0.0)


def test_gap_robust_z_and_history_hand_computed():
    logp = torch.tensor([[[-0.1, -2.5, -5.0], [-3.0, -0.2, -4.0], [-40.0, 0.0, -1.0]]])
    gap = trust.disagreement_gap(logp, torch.tensor([0]))
    assert gap.tolist() == [pytest.approx([0.0, 2.8, 30.0])]          # the third clipped at 30
    z = trust.robust_z(torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0]))     # median 3, MAD 1 * 1.4826
    assert z.tolist() == pytest.approx([-2 / 1.4826, -1 / 1.4826, 0.0, 1 / 1.4826, 97 / 1.4826], rel=1e-5)
    mean, m2, cnt = torch.zeros(2), torch.zeros(2), torch.zeros(2)
    for v in (1.0, 3.0):
        mean, m2, cnt = trust.welford(mean, m2, cnt, torch.tensor([v, v]), torch.tensor([True, False]))
    assert mean.tolist() == [2.0, 0.0] and m2.tolist() == [2.0, 0.0] and cnt.tolist() == [2.0, 0.0]
    hz = trust.history_z(torch.tensor([5.0, 5.0]), mean, m2, cnt)
    assert hz.tolist() == pytest.approx([3 / math.sqrt(2), 0.0])     # the second has no history yet


def _round(g, B, attack=False):
    """5 agents, 3 classes; the truth is class 0; honest agents are wrong on ~10 % of objects with a
    small gap; agent 4 attacks (confidently class 2) on 30 % of the objects when ``attack``."""
    logp = torch.full((B, 5, 3), -4.0)
    logp[..., 0] = -0.05
    wrong = torch.rand(B, 5, generator=g) < 0.1
    logp[..., 1] = torch.where(wrong, torch.tensor(-0.02), logp[..., 1])
    logp[..., 0] = torch.where(wrong, -0.05 - 2 * torch.rand(B, 5, generator=g), logp[..., 0])
    if attack:
        hit = torch.arange(B) < int(0.3 * B)
        logp[hit, 4] = torch.tensor([-25.0, -20.0, 0.0])
    return logp


def test_camouflage_agent_loses_its_weight_the_round_it_attacks():
    g = torch.Generator().manual_seed(0)
    node = FusionNode("trust-median", 1, 5)
    legacy = FusionNode("trust-median", 1, 5, z_cross=math.inf, z_history=math.inf)
    kept = torch.ones(5, dtype=torch.bool)
    for r in range(6):
        logp = _round(g, 20, attack=r >= 4)
        flags = [nd.step(logp, logp, nd.reference(logp, fusion.weighted_median(logp, nd.reference_weights(kept)),
                                                  kept))[1] for nd in (node, legacy)][0]
        if r == 3:                                        # honest so far: every agent trusted
            assert (node.weights(node.reputation) > 0).all()
        if r == 4:                                        # first attack: flagged and out at once
            assert flags.tolist() == [False, False, False, False, True]
            assert node.weights(node.reputation)[4] == 0
            assert node.last.strong[4] and not node.last.strong[:4].any()
    # the agreement-rate reputation alone keeps the camouflage agent (agreement 0.7 > 0.5) trusted
    assert legacy.weights(legacy.reputation)[4] > 0


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return shipped_fashion_mnist(100)


def test_sleeper_weight_drops_the_round_it_first_attacks(data):
    """Honest until trusted, then crafted: its weight is 0 from its first attacking round on."""
    x, y = data
    th = ByzantineThreat("sleeper", steps=6, eot=1, sleep_rounds=2)
    res = run_multiagent(MultiAgentConfig(agents=5, byzantine=1, fusion="trust-median", threat=th, rounds=4,
                                          batch=20, seed=0), x, y)
    rounds = res["rounds"]
    first = next(r["round"] for r in rounds if r["attacking"])
    assert first == 2
    assert all(r["byzantine_weight"] > 0 for r in rounds[:first])      # trusted while it behaves
    assert all(r["byzantine_weight"] == 0.0 for r in rounds[first:])
    rec = res["config"]["threat"]
    assert rec["threat_model"] == ThreatModel("symbols", "power", MAX_PSR_DB, "white-box", "task").to_dict()
    assert rec["sleep_rounds"] == 2 and rec["steps"] == 6


def test_every_byzantine_attack_declares_a_threat_model():
    for attack in ("crafted", "colluding", "solo", "stale", "sleeper", "camouflage", "adaptive", "none"):
        th = ByzantineThreat(attack, psr_db=-3.0)
        d = th.record()["threat_model"]
        tm = ThreatModel(**{k: v for k, v in d.items() if k != "unit"})      # a valid ThreatModel again
        assert d["unit"] == "psr_db" and tm.surface == "symbols" and tm.norm == "power"
        assert tm.targeted == (attack == "colluding")
        if attack == "stale":
            assert tm.knowledge == "none" and tm.budget == pytest.approx(MAX_PSR_DB)
        else:
            assert tm.knowledge == "white-box" and tm.budget == -3.0


def test_exclusions_are_capped_so_framed_honest_agents_stay_in():
    w = torch.tensor([0.0, 0.0, 0.0, 0.9, 0.8])
    rep = torch.tensor([0.3, 0.1, 0.2, 0.9, 0.8])
    # at most one zero: the lowest reputation (agent 1) stays out, the others get their reputation back
    assert trust.cap_exclusions(w, rep, 1).tolist() == pytest.approx([0.3, 0.0, 0.2, 0.9, 0.8])
    assert torch.equal(trust.cap_exclusions(w, rep, 3), w)
    node = FusionNode("trust-median", 4, 10)          # N = 10, f = 4: at most 10 - 9 = 1 exclusion
    assert node.max_excluded == 1
    node.reputation = torch.tensor([0.1, 0.2, 0.3, 0.4] + [0.9] * 6)
    assert node.weights(node.reputation).tolist() == [0.0] + [1.0] * 9     # inclusion weights, 9 >= 2f + 1
    assert FusionNode("trust-median", 3, 10).max_excluded == 3
    with pytest.raises(ValueError, match="trust_cost"):
        MultiAgentConfig(trust_cost=1.5)
    with pytest.raises(ValueError, match="z_cross"):
        MultiAgentConfig(z_cross=0.0)
