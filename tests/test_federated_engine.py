"""The in-process engine: determinism, faults, bad updates, free riders, config errors."""

from __future__ import annotations

import pytest
import torch

from semguard.federated.client import ClientReply, LocalConfig
from semguard.federated.engine import FLConfig, Federation, run_inprocess, server_round

torch.set_num_threads(1)
SMALL = dict(clients=4, rounds=2, width=8, n_symbols=8, local=LocalConfig(steps=2, batch=16), test_size=200,
             root_size=50)


def test_deterministic_and_learns_something():
    a = run_inprocess(FLConfig(**SMALL))
    b = run_inprocess(FLConfig(**SMALL))
    assert torch.equal(a["final_vector"], b["final_vector"])
    assert [r["accuracy"] for r in a["rounds"]] == [r["accuracy"] for r in b["rounds"]]
    c = run_inprocess(FLConfig(**{**SMALL, "seed": 1}))
    assert not torch.equal(a["final_vector"], c["final_vector"])


def test_crashing_client_does_not_stall_the_round():
    r = run_inprocess(FLConfig(**{**SMALL, "crash": (1,)}))
    assert all(1 in rr["failures"] and rr["replies"] == 3 and not rr.get("skipped") for rr in r["rounds"])
    # below the minimum-clients rule the round is logged and the model left unchanged
    fed = Federation(FLConfig(**{**SMALL, "crash": (0, 1, 2), "rounds": 1}))
    r = run_inprocess(fed.cfg, fed=fed)
    assert r["rounds"][0]["skipped"] and torch.equal(r["final_vector"], fed.initial)


def test_bad_updates_rejected_with_client_named():
    fed = Federation(FLConfig(**SMALL))
    agg = fed.aggregator()
    D = fed.dim
    good = [ClientReply(c, torch.zeros(D), 10, 0.0, True) for c in (0, 1)]
    bad = [ClientReply(2, torch.full((D,), float("nan")), 10, 0.0, True),
           ClientReply(3, torch.zeros(D + 1), 10, 0.0, True)]
    new, rec = server_round(fed, agg, fed.initial, good + bad, {}, 1, None)
    assert "client 2" in rec["rejected"][2] and "NaN" in rec["rejected"][2]
    assert "shape" in rec["rejected"][3] and rec["replies"] == 2 and torch.equal(new, fed.initial)
    _, rec = server_round(fed, agg, fed.initial, [ClientReply(0, torch.zeros(D, dtype=torch.float64), 1, 0.0, True)],
                          {}, 1, None)
    assert "dtype" in rec["rejected"][0] and rec["skipped"]


def test_free_riders_send_without_training_and_are_caught():
    cfg = FLConfig(**{**SMALL, "clients": 6, "malicious": 2, "attack": "free_zero", "strategy": "reputation"})
    r = run_inprocess(cfg)
    assert r["free_rider_first_round"] == {m: 1 for m in r["malicious_ids"]}
    assert r["free_rider_false_positive_rate"] == 0.0


@pytest.mark.parametrize("kw,msg", [
    (dict(clients=4, malicious=4, attack="alie"), "--malicious"),
    (dict(alpha=0.0), "--alpha"),
    (dict(strategy="nope"), "--strategy"),
    (dict(malicious=1), "needs an --attack"),
    (dict(attack="nope", malicious=1), "--attack"),
])
def test_bad_config(kw, msg):
    with pytest.raises(ValueError, match=msg):
        FLConfig(**{**SMALL, **kw})
