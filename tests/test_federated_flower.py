"""The Flower ClientApp / ServerApp give the in-process results; the simulation leaves no Ray behind."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flwr")

from semguard.federated.client import LocalConfig  # noqa: E402
from semguard.federated.engine import FLConfig, run_inprocess  # noqa: E402
from semguard.federated.flower_app import processes_with_marker, run_flower_local  # noqa: E402

torch.set_num_threads(1)
SMALL = dict(clients=4, rounds=2, width=8, n_symbols=8, local=LocalConfig(steps=2, batch=16), test_size=200,
             root_size=50)


@pytest.mark.parametrize("kw", [dict(malicious=1, attack="alie", strategy="reputation", crash=(2,)),
                                dict(malicious=1, attack="adaptive", strategy="fltrust")])
def test_flower_apps_match_inprocess(kw):
    cfg = FLConfig(**{**SMALL, **kw})
    a, b = run_inprocess(cfg), run_flower_local(cfg)
    assert torch.equal(a["final_vector"], b["final_vector"])
    assert [r["accuracy"] for r in a["rounds"]] == [r["accuracy"] for r in b["rounds"]]
    if cfg.crash:  # the crashed client came back as a Flower error reply, and the round went on
        assert all(len(r["failures"]) == 1 and r["replies"] == 3 for r in b["rounds"])


@pytest.mark.slow
def test_simulation_matches_and_stops_ray():
    import os

    from semguard.federated.flower_app import run_flower_simulation

    cfg = FLConfig(**{**SMALL, "malicious": 1, "attack": "sign_flip", "strategy": "reputation"})
    a = run_inprocess(cfg)
    b = run_flower_simulation(cfg)
    assert b["engine"] == "simulation"
    assert torch.allclose(a["final_vector"], b["final_vector"], atol=1e-6)
    assert "SEMGUARD_FL_RUN" not in os.environ
    assert processes_with_marker(b["process_marker"]) == []  # no Ray worker of this run is left


@pytest.mark.slow
def test_loopback_deployment_matches_and_stops_everything():
    import os

    from semguard.federated.deployment import run_deployment

    cfg = FLConfig(**{**SMALL, "clients": 3, "malicious": 1, "attack": "sign_flip", "strategy": "reputation"})
    a = run_inprocess(cfg)
    b = run_deployment(cfg)
    assert b["engine"] == "deployment" and b["final_sha256"] == a["final_sha256"]
    assert [r["accuracy"] for r in a["rounds"]] == [r["accuracy"] for r in b["rounds"]]
    assert processes_with_marker(b["process_marker"]) == []  # ServerApp / ClientApp subprocesses gone
    for pid in b["pids"]:  # SuperLink and SuperNodes, started and stopped by their ids
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
