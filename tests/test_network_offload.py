"""Offloading mechanisms: hand-computed costs, the Nash split's KKT conditions, stability of
deferred acceptance, and the audit catching an untrusted edge node."""

import numpy as np
import pytest

from semguard.network import offload as of
from semguard.network.offload_sim import FidelityModel, compare_mechanisms, draw_system


def _sys(**kw):
    return of.OffloadSystem(f_local=np.array([1e9, 0.5e9]), capacity=np.array([8e9]),
                            uplink_snr_db=np.array([[20.0], [10.0]]), quota=np.array([1]), **kw)


def test_costs_hand_computed():
    s = _sys()
    c = of.costs(s, np.array([-1, 0]))
    # local: 4e8 / 1e9 s compute + 1600 / 1e6 s features; energy 1e-27 * 4e8 * 1e18 + 0.2 * 1.6e-3
    assert c["latency"][0] == pytest.approx(0.4 + 0.0016)
    assert c["energy"][0] == pytest.approx(0.4 + 0.00032)
    # offloaded alone on an 8 GHz node: 39200 / 1e6 s upload + 4e8 / 8e9 s; energy 0.2 * 0.0392
    assert c["latency"][1] == pytest.approx(0.0392 + 0.05)
    assert c["energy"][1] == pytest.approx(0.00784)
    with pytest.raises(ValueError, match="assignment must be"):
        of.costs(s, np.array([0, 1]))
    with pytest.raises(ValueError, match="shapes disagree"):
        of.OffloadSystem(f_local=np.ones(3), capacity=np.ones(1), uplink_snr_db=np.ones((2, 1)), quota=np.ones(1))


def test_nash_split_meets_kkt_and_symmetry():
    c = of.nash_split(np.array([0.5, 0.5]), 4e8, 8e9)
    assert np.allclose(c, [4e9, 4e9])
    a = np.array([0.3, 0.5, 0.9])
    c = of.nash_split(a, 4e8, 8e9)
    assert c.sum() == pytest.approx(8e9)
    u = a - 4e8 / c
    assert (u > 0).all()
    ratio = (4e8 / c ** 2) / u                      # d log u / dc equal for every device
    assert np.allclose(ratio, ratio[0], rtol=1e-6)
    with pytest.raises(ValueError, match="positive surplus"):
        of.nash_split(np.array([0.1, -0.1]), 4e8, 8e9)


def test_deferred_acceptance_is_stable():
    rng = np.random.default_rng(3)
    s, _ = draw_system(rng, devices=15, edges=3)
    opt = of.deferred_acceptance(s)
    for j in range(s.edges):
        assert (opt == j).sum() <= s.quota[j]
    local = s.local_latency() + s.lam * s.local_energy()
    est = of._offload_cost(s, s.capacity / s.quota)
    # no blocking pair: a device preferring node j to its match is ranked below all of j's holders, j full
    for i in range(s.devices):
        mine = local[i] if opt[i] < 0 else est[opt[i]]
        for j in range(s.edges):
            if est[j] < mine and est[j] < local[i]:
                held = np.flatnonzero(opt == j)
                assert len(held) == s.quota[j]
                assert (s.uplink_snr_db[held, j] >= s.uplink_snr_db[i, j]).all()


def test_mechanisms_beat_all_local_and_audit_catches_tampering():
    grid = (-5.0, 5.0, 25.0)
    fid = FidelityModel(grid, [0.7, 0.87, 0.92], [0.1, 0.45, 0.91], [0.9, 0.5, 0.02], 0.1, 0.9)
    plain = {r["mechanism"]: r for r in compare_mechanisms(fid, scenarios=4, episodes=200, rounds=4)["rows"]}
    assert plain["greedy"]["latency_s"] < plain["all-local"]["latency_s"]
    assert plain["stable-matching"]["energy_j"] < plain["all-local"]["energy_j"]
    bad = {r["mechanism"]: r for r in compare_mechanisms(fid, scenarios=4, episodes=200, rounds=4, untrusted=1)["rows"]}
    audited = {r["mechanism"]: r for r in compare_mechanisms(fid, scenarios=4, episodes=200, rounds=4, untrusted=1,
                                                              audit=0.05)["rows"]}
    for m in ("greedy", "stable-matching", "nash-bargaining"):
        assert audited[m]["tampered_share"] < bad[m]["tampered_share"]
        assert audited[m]["accuracy"] > bad[m]["accuracy"]
    assert audited["greedy"]["untrusted_caught"] == 1.0
    with pytest.raises(ValueError, match="untrusted"):
        compare_mechanisms(fid, untrusted=5)


def test_measured_delivery_runs_the_codec_over_the_chosen_path():
    import torch

    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.network.offload_measured import MeasuredDelivery

    torch.set_num_threads(1)
    x, y = shipped_fashion_mnist(200)
    d = MeasuredDelivery(x, y, per_device=50, seed=0)
    D = 4
    local, edge = -np.ones(D, dtype=int), np.zeros(D, dtype=int)
    no = np.zeros(D, dtype=bool)
    acc_local = d(local, np.full(D, 20.0), np.zeros(D), no).mean()
    acc_clean_up = d(edge, np.zeros(D), np.full(D, 40.0), no).mean()     # raw uplink nearly noiseless
    acc_bad_up = d(edge, np.zeros(D), np.full(D, -10.0), no).mean()      # raw pixels buried in noise
    acc_tampered = d(edge, np.zeros(D), np.full(D, 40.0), np.ones(D, dtype=bool)).mean()
    assert acc_local > 0.8 and abs(acc_clean_up - acc_local) < 0.08      # same codec, same 20 dB link
    assert acc_bad_up < acc_clean_up - 0.2
    assert acc_tampered < 0.3                                             # random blocks: near chance (0.1)
    assert d.deliveries == 4 * D * 50
    res = compare_mechanisms(FidelityModel([0, 10], [0.8, 0.9], [0.7, 0.9], [0.2, 0.1], 0.1, 0.9), scenarios=1,
                             devices=5, edges=2, rounds=1, episodes=5, delivery=MeasuredDelivery(x, y, per_device=4))
    assert res["settings"]["fidelity"] == "measured per delivery"
    assert res["settings"]["images_delivered"] == 6 * 5 * 4              # mechanisms x devices x images
