"""Commit-reveal (network/commit.py): SHA-256 commitments against hashlib, tampered reveals dropped, the
rushing attacker caught, the predictive attacker blind to the round, the byte cost by hand."""

import hashlib
import json

import pytest
import torch

from semguard.data.shipped import shipped_fashion_mnist
from semguard.network import commit as cm
from semguard.network import multiagent as ma
from semguard.network.attackers import predict_honest
from semguard.network.byzantine import ByzantineThreat
from semguard.network.node import FusionNode

NONCE = bytes(range(32))


def test_commitment_is_sha256_of_domain_nonce_message():
    msg = b"\x01\x02\x03"
    c = cm.commit(msg, NONCE)
    assert c == hashlib.sha256(b"semguard/commit-reveal/v1" + NONCE + msg).digest() and len(c) == 32
    assert cm.verify(c, msg, NONCE)
    assert cm.commit(msg, cm.fresh_nonce()) != c  # a fresh nonce hides a repeated message


def test_tampered_reveal_is_dropped():
    x = torch.randn(20, 16, dtype=torch.complex64)
    msgs = [cm.block_bytes(x * (k + 1)) for k in range(4)]
    nonces = [cm.fresh_nonce() for _ in msgs]
    coms = [cm.commit(m, n) for m, n in zip(msgs, nonces)]
    flipped = bytearray(msgs[1])
    flipped[100] ^= 0x01  # one bit of one symbol
    bad_nonce = bytearray(nonces[2])
    bad_nonce[0] ^= 0x80
    openings = [
        cm.Opening(msgs[0], nonces[0]),
        cm.Opening(bytes(flipped), nonces[1]),
        cm.Opening(msgs[2], bytes(bad_nonce)),
        None,
    ]
    assert cm.open_round(coms, openings).tolist() == [True, False, False, False]
    assert not cm.verify(coms[0], msgs[0], nonces[1])


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        cm.commit(b"m", b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        cm.verify(b"\x00" * 31, b"m", NONCE)
    with pytest.raises(ValueError, match="commitments but"):
        cm.open_round([b"\x00" * 32], [])
    with pytest.raises(ValueError, match="complex"):
        cm.block_bytes(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="has 48 bytes"):
        cm.bytes_block(b"\x00" * 40, (2, 3))
    with pytest.raises(ValueError, match="sees the round's honest messages"):
        ma.MultiAgentConfig(agents=10, byzantine=3, protocol="commit-reveal", threat=ByzantineThreat("crafted"))
    with pytest.raises(ValueError, match="base attack"):
        ByzantineThreat("predictive", base="stale")


def test_byte_cost_matches_a_hand_count():
    x = torch.randn(20, 16, dtype=torch.complex64)
    b = cm.block_bytes(x)
    assert len(b) == 20 * 16 * 8 and torch.equal(cm.bytes_block(b, (20, 16)), x)
    per_agent = len(cm.commit(b, NONCE)) + len(cm.fresh_nonce()) + len(b)  # commitment + opening
    cost = cm.round_cost(10, 20, 16)
    assert per_agent == 32 + 32 + 2560 and cost.up_bytes == 10 * 2624 == 26240
    assert cost.broadcast_bytes == len(cm.close_digest([cm.commit(b, NONCE)] * 10)) == 32
    assert (cost.round_trips, cost.extra_round_trips, cost.message_bytes) == (2, 1, 2560)


def test_air_check_is_calibrated_and_catches_a_changed_block():
    g = torch.Generator().manual_seed(0)
    B, n, n0 = 4000, 16, 0.1
    x = torch.randn(B, n, dtype=torch.complex64, generator=g)
    w = torch.randn(B, n, dtype=torch.complex64, generator=g) * n0**0.5  # CN(0, n0)
    nv = torch.full((B, n), n0)
    p = cm.air_pvalues(x + w, nv, x)
    assert abs(float((p < 0.05).double().mean()) - 0.05) < 0.012  # uniform under the hypothesis
    other = torch.randn(B, n, dtype=torch.complex64, generator=g)
    assert float(cm.air_pvalues(other + w, nv, x).max()) < 1e-12  # 10 dB, another block: caught
    # a deep fade (|h|^2 = 1e-3): the zero-forced noise swamps the change, so the wrong block passes
    assert float((cm.air_pvalues(other + w / 0.001**0.5, nv / 1e-3, x) > 1e-3).double().mean()) > 0.5


def test_ban_lowers_f_and_keeps_the_cap_over_the_agents_left():
    node = FusionNode("trust-median", 3, 10)
    assert node.max_excluded == 3
    ban = torch.zeros(10, dtype=torch.bool)
    ban[[1, 4]] = True
    node.ban(ban)
    assert node.f == 1 and node.max_excluded == 1 and node.banned.tolist() == ban.tolist()
    node.reputation = torch.full((10,), 0.9)
    node.reputation[[1, 4, 7]] = 0.1  # banned two, and two under the threshold
    node.reputation[6] = 0.2
    w = node.weights(node.reputation)
    # the banned take no slot: of the two distrusted, the lower (7) stays out, 6 is let back in
    assert w[[1, 4]].tolist() == [0, 0] and int((w[~ban] == 0).sum()) == 1 and w[7] == 0 and w[6] == 1


def test_predictor_uses_the_attackers_own_messages_and_the_past_only():
    bad = torch.tensor([False, True, False, True])
    own = torch.log_softmax(torch.randn(5, 2, 3), -1)
    v, lp = predict_honest(own, own, bad, None, logprob=True)
    assert torch.equal(v[:, 0], own[:, 0]) and torch.equal(v[:, 2], own[:, 0]) and torch.equal(v[:, 3], own[:, 1])
    past = torch.zeros(5, 4, 3)
    v, _ = predict_honest(own, own, bad, (past, past), logprob=True)
    assert torch.allclose(v[:, 0], torch.log_softmax(own.mean(1), -1)) and torch.equal(v[:, bad], own)


@pytest.fixture(scope="module")
def data():
    return shipped_fashion_mnist(30)


def _cfg(attack, protocol, rule="median", **kw):
    return ma.MultiAgentConfig(
        agents=10,
        byzantine=3,
        fusion=rule,
        rounds=3,
        batch=10,
        seed=0,
        protocol=protocol,
        threat=ByzantineThreat(attack, steps=3, eot=1, **kw),
    )


def test_rushing_attacker_is_caught_every_time(data):
    x, y = data
    res = ma.run_multiagent(_cfg("rushing", "commit-reveal"), x, y)
    bad = res["byzantine_agents"]
    for r in res["rounds"]:
        assert r["changed"] == bad  # it replied to the seen round, every round
        assert r["failed_openings"] == bad and r["dropped_honest"] == 0 and r["banned"] == bad
    assert res["cost"]["up_bytes"] == 10 * (32 + 32 + 8 * 10 * 16)
    # the same attacker on the plain protocol is never checked, and its reply costs accuracy
    plain = ma.run_multiagent(_cfg("rushing", "plain"), x, y)
    assert "failed_openings" not in plain["rounds"][0] and plain["accuracy"] < res["accuracy"]


def test_predictive_attacker_never_sees_the_current_round(data, monkeypatch):
    """Change only the honest agents' views in round 1: what the attackers commit to in round 1 stays the
    same under commit-reveal, and changes for the omniscient attacker of the plain protocol."""
    x, y = data
    bad = ma.run_multiagent(_cfg("none", "plain"), x, y)["byzantine_agents"]
    orig = ma.agent_views

    def run(cfg, perturb):
        calls = []

        def views(xb, n, **kw):
            out = orig(xb, n, **kw)
            calls.append(1)
            if perturb and len(calls) == 2:  # round 1
                honest = [i for i in range(n) if i not in bad]
                out = out.clone() if isinstance(out, torch.Tensor) else list(out)
                for i in honest:
                    out[i] = out[i].roll(1, dims=0)  # they see each other's objects
            return out

        monkeypatch.setattr(ma, "agent_views", views)
        return [r["byzantine_block_sha256"] for r in ma.run_multiagent(cfg, x, y)["rounds"]]

    for rule in ("median", "trust-median"):
        for attack, kw in (("predictive", {}), ("predictive", {"base": "adaptive"}), ("rushing-air", {})):
            a, b = (
                run(_cfg(attack, "commit-reveal", rule, **kw), False),
                run(_cfg(attack, "commit-reveal", rule, **kw), True),
            )
            assert a[:2] == b[:2], (rule, attack)
    # control: the omniscient attacker's round-1 reply changes with the honest messages (under trust-median it
    # is out of the fusion after round 0 and sends its honest block, so the median is the test)
    a, b = run(_cfg("crafted", "plain"), False), run(_cfg("crafted", "plain"), True)
    assert a[0] == b[0] and a[1] != b[1]


def test_bench_writes_every_scenario_with_the_cost(tmp_path):
    from bench_module import load_bench

    out = tmp_path / "c.json"
    bench = load_bench("network_commit")
    argv = [
        "--byzantine",
        "0",
        "3",
        "--rules",
        "median",
        "--rounds",
        "2",
        "--batch",
        "5",
        "--steps",
        "2",
        "--bases",
        "crafted",
        "--out",
        str(out),
    ]
    assert bench.main(argv) == 0
    doc = json.loads(out.read_text())
    rows = {(r["byzantine"], r["scenario"]): r for r in doc["rows"]}
    assert set(rows) == {
        (0, "omniscient"),
        (0, "predictive"),
        (3, "omniscient"),
        (3, "predictive"),
        (3, "rushing"),
        (3, "rushing-air"),
        (3, "rushing-fade"),
    }
    assert doc["cost"]["commit-reveal"]["up_bytes"] == 10 * (32 + 32 + 8 * 5 * 16)
    assert rows[(3, "rushing")]["failed_openings"] == 3 * 2 and rows[(3, "rushing")]["caught_rounds"] == 2
    assert set(rows[(3, "predictive")]["search"]) == {"crafted predictor=residual", "crafted predictor=own"}
    assert bench.main(argv) == 0 and len(json.loads(out.read_text())["rows"]) == 7  # resumes: nothing rerun


def test_air_check_catches_a_blind_rushing_air_attacker_and_misses_a_fade_aware_one(data):
    """Opening the committed block but sending the reply: every changed block far outside the noise is
    proof (banned in its first round); the attacker that changes only what its fade hides is never caught,
    and every block it changed passed (the loophole)."""
    x, y = data
    blind = ma.run_multiagent(_cfg("rushing-air", "commit-reveal"), x, y)
    bad = blind["byzantine_agents"]
    assert blind["rounds"][0]["changed"] == bad and blind["rounds"][0]["banned"] == bad
    assert blind["rounds"][0]["failed_openings"] == [] and blind["rounds"][0]["dropped_honest"] == 0
    fade = ma.run_multiagent(_cfg("rushing-air", "commit-reveal", fade_aware=True), x, y)
    wrong = sum(r["wrong_blocks"] for r in fade["rounds"])
    assert wrong > 0 and sum(r["wrong_blocks_passed"] for r in fade["rounds"]) == wrong
    assert all(r["banned"] == [] and r["air_rejected"] == [] for r in fade["rounds"])


def test_unseen_change_is_the_deep_fades():
    thr = cm.air_threshold(16, 1e-3 / 20)
    from scipy.stats import gamma

    assert abs(gamma.sf(thr, 16) - 5e-5) < 1e-9
    # ||change||^2 = 4 at N0 = 0.1: lam = 40 |h|^2, kept where 16 + lam + 3 sqrt(16 + 2 lam) < 36.4
    change = torch.full((3, 16), 0.5 + 0j, dtype=torch.complex64)
    h = torch.tensor([1.0, 0.5, 0.1]).unsqueeze(-1).expand(3, 16).to(torch.complex64)
    assert cm.unseen_change(change, h, torch.full((3, 1), 0.1), thr).tolist() == [False, False, True]


def test_decoding_the_opened_bytes_ignores_what_was_sent_over_the_air(data):
    """``decode="opened"``: the fade-aware rushing-air attacker's changes go nowhere, so it scores exactly
    what its committed (predictive) block scores; ``opened`` needs commit-reveal."""
    x, y = data
    kw = {"steps": 3, "eot": 1}
    runs = [
        ma.run_multiagent(
            ma.MultiAgentConfig(
                agents=10,
                byzantine=3,
                fusion="median",
                rounds=3,
                batch=10,
                seed=0,
                protocol="commit-reveal",
                decode="opened",
                threat=ByzantineThreat(a, **kw, **extra),
            ),
            x,
            y,
        )
        for a, extra in (("rushing-air", {"fade_aware": True}), ("predictive", {}))
    ]
    assert sum(r["wrong_blocks"] for r in runs[0]["rounds"]) > 0
    assert runs[0]["accuracy"] == runs[1]["accuracy"]
    with pytest.raises(ValueError, match="'opened' with protocol commit-reveal"):
        ma.MultiAgentConfig(decode="opened")
