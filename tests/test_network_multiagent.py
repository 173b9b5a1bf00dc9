"""Multi-agent fusion with Byzantine agents on the shipped task codec (small, seconds)."""

import logging

import pytest
import torch

from semguard.data.shipped import shipped_fashion_mnist
from semguard.network.byzantine import ByzantineThreat, project_cap
from semguard.network.multiagent import (
    MultiAgentConfig,
    collect_messages,
    run_multiagent,
)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return shipped_fashion_mnist(48)


def test_project_cap_keeps_power_and_budget():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, dtype=torch.complex64, generator=g)
    x = x / x.abs().square().mean(1, keepdim=True).sqrt()
    z = 5 * torch.randn(4, 16, dtype=torch.complex64, generator=g)
    for rho in (0.1, 0.5, 1.0, 2.0):
        p = project_cap(z, x, rho)
        assert torch.allclose(p.abs().square().mean(1), torch.ones(4), atol=1e-5)       # unit power
        rel = (p - x).norm(dim=1) / x.norm(dim=1)
        assert (rel <= rho + 1e-5).all()
    # a point already inside the cap only gets scaled onto the sphere
    inside = x * 1.3 + 0.01 * z
    assert torch.allclose(project_cap(inside, x, 1.0), inside / inside.abs().square().mean(1, keepdim=True).sqrt(),
                          atol=1e-5)


def test_crafted_attack_breaks_the_mean_not_trust(data):
    x, y = data
    kw = dict(agents=5, rounds=3, batch=16, seed=1)
    th = ByzantineThreat("crafted", steps=8, eot=1)
    clean = run_multiagent(MultiAgentConfig(byzantine=0, fusion="mean", **kw), x, y)
    mean = run_multiagent(MultiAgentConfig(byzantine=2, fusion="mean", threat=th, **kw), x, y)
    trust = run_multiagent(MultiAgentConfig(byzantine=2, fusion="trust", threat=th, **kw), x, y)
    assert clean["accuracy"] > 0.7
    assert mean["accuracy"] < clean["accuracy"] - 0.25          # two crafted agents of five steer the mean
    assert trust["accuracy"] > mean["accuracy"] + 0.2
    # the crafted agents are flagged once their reputation has been updated
    assert trust["rounds"][-1]["recall"] == 1.0
    assert clean["config"]["threat"]["threat_model"]["budget"] == pytest.approx(6.0206, abs=1e-3)
    assert clean["config"]["threat"]["threat_model"]["unit"] == "psr_db"


def test_stale_replay_is_caught_by_the_consistency_check(data):
    x, y = data
    res = run_multiagent(MultiAgentConfig(agents=5, byzantine=1, fusion="median", rounds=3, batch=16,
                                          threat=ByzantineThreat("stale")), x, y)
    assert [r["recall"] for r in res["rounds"]][1:] == [1.0, 1.0]


def test_bad_configurations_are_clear_errors(data):
    with pytest.raises(ValueError, match="f < N/2"):
        MultiAgentConfig(agents=6, byzantine=3, fusion="median")
    MultiAgentConfig(agents=6, byzantine=3, fusion="mean")          # the mean takes any f
    with pytest.raises(ValueError, match="fusion must be one of"):
        MultiAgentConfig(fusion="krum")
    with pytest.raises(ValueError, match="attack must be one of"):
        ByzantineThreat("poison")
    with pytest.raises(ValueError, match="psr_db must be <="):
        ByzantineThreat(psr_db=10.0)
    with pytest.raises(ValueError, match="need 400 images"):
        run_multiagent(MultiAgentConfig(rounds=16, batch=25), *data)


def test_mismatched_features_are_dropped_and_logged(caplog):
    good = torch.zeros(3, 16, dtype=torch.complex64)
    with caplog.at_level(logging.WARNING):
        stacked, kept = collect_messages([good, torch.zeros(3, 8, dtype=torch.complex64), good,
                                          torch.zeros(3, 16)], 16)
    assert stacked.shape == (2, 3, 16)
    assert kept.tolist() == [True, False, True, False]
    assert "dropping agent 1" in caplog.text and "dropping agent 3" in caplog.text
    with pytest.raises(ValueError, match="no agent sent"):
        collect_messages([torch.zeros(3, 8, dtype=torch.complex64)], 16)


def test_running_fusion_drops_a_malformed_agent(data, caplog):
    x, y = data
    with caplog.at_level(logging.WARNING):
        res = run_multiagent(MultiAgentConfig(agents=5, byzantine=0, fusion="trust", rounds=2, batch=16,
                                              malformed=(2,)), x, y)
    assert "dropping agent 2" in caplog.text
    assert res["accuracy"] > 0.6
    with pytest.raises(ValueError, match="well-formed"):
        run_multiagent(MultiAgentConfig(agents=3, byzantine=1, fusion="median", rounds=1, batch=16, malformed=(0,),
                                        threat=ByzantineThreat("none")), x, y)
    with pytest.raises(ValueError, match="malformed agents"):
        MultiAgentConfig(agents=3, malformed=(5,))


def test_camouflage_keeps_reputation_and_trust_median_still_holds(data):
    x, y = data
    kw = dict(agents=5, byzantine=1, rounds=3, batch=16, seed=1)
    crafted = ByzantineThreat("crafted", steps=6, eot=1)
    camo = ByzantineThreat("camouflage", steps=6, eot=1, camouflage=0.2)
    r_crafted = run_multiagent(MultiAgentConfig(fusion="trust", threat=crafted, **kw), x, y)
    r_camo = run_multiagent(MultiAgentConfig(fusion="trust", threat=camo, **kw), x, y)
    # attacking a fifth of the objects keeps the attacker's agreement above the threshold
    assert sum(r["recall"] for r in r_camo["rounds"]) < sum(r["recall"] for r in r_crafted["rounds"])
    with pytest.raises(ValueError, match="camouflage fraction"):
        ByzantineThreat("camouflage", camouflage=0.0)
