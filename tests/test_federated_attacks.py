"""Client attacks and the Dirichlet partition: behaviour against their definitions."""

from __future__ import annotations

import pytest
import torch

from semguard.federated import aggregate as A
from semguard.federated import attacks as T
from semguard.federated.partition import dirichlet_partition
from semguard.registry import available, build


def test_registry_names():
    assert set(available("fl_attack")) == {"label_flip", "backdoor", "sign_flip", "scaling", "alie", "adaptive",
                                           "adaptive_mimic", "adaptive_decor",
                                           "adaptive_bias", "free_zero", "free_stale", "free_noise"}
    for name in available("fl_attack"):
        a = build("fl_attack", name)
        assert a.name == name and isinstance(a.threat, T.FLThreatModel)
    assert build("fl_attack", "alie").threat.collusion and build("fl_attack", "adaptive").threat.knowledge == "aggregator"


def test_data_attacks():
    x = torch.zeros(10, 1, 28, 28)
    y = torch.arange(10)
    assert T.LabelFlip().poison(x, y)[1].tolist() == list(range(9, -1, -1))
    xb, yb = T.Backdoor(target=3, rate=0.5).poison(x, y, torch.Generator().manual_seed(0))
    hit = xb[:, 0, -4:, -4:].flatten(1).eq(1).all(1)
    assert int(hit.sum()) == 5 and (yb[hit] == 3).all() and torch.equal(yb[~hit], y[~hit])
    assert xb[:, 0, :-4].abs().sum() == 0  # nothing outside the trigger changed


def test_model_attacks_hand():
    b = torch.tensor([[1.0, -2.0]])
    assert torch.equal(T.SignFlip().craft(b, T.AttackView(2)), -b)
    assert torch.equal(T.Scaling(factor=10).craft(b, T.AttackView(2)), 10 * b)
    H = torch.tensor([[0.0, 0.0], [2.0, 4.0]])  # mean (1, 2), std (sqrt2, 2 sqrt2)
    out = T.ALIE(z=1.0).craft(b.expand(2, -1), T.AttackView(2, honest=H))
    assert torch.allclose(out, torch.tensor([[1 - 2 ** 0.5, 2 - 2 * 2 ** 0.5]] * 2))
    # Baruch et al.: n = 50, m = 12 -> s = 14, z = Phi^-1(36/50) ~= 0.583
    assert abs(T.alie_z(50, 12) - 0.5828) < 1e-3


def test_adaptive_beats_fixed_against_its_aggregator():
    g = torch.Generator().manual_seed(0)
    H = torch.randn(7, 30, generator=g) * 0.3 + 1.0
    mu = H.mean(0)
    agg = lambda X: A.trimmed_mean(X, 0.3)  # noqa: E731
    view = T.AttackView(30, honest=H, aggregate=agg)
    adv = T.Adaptive().craft(H[:3], view)
    alie = T.ALIE().craft(H[:3], view)
    d_adv = (agg(torch.cat([H, adv])) - mu).norm()
    d_alie = (agg(torch.cat([H, alie])) - mu).norm()
    assert d_adv >= d_alie and d_adv > 0.1 * mu.norm()
    with pytest.raises(ValueError, match="knowledge=aggregator"):
        T.Adaptive().craft(H[:3], T.AttackView(30, honest=H))


def test_free_riders_fire_from_round_one():
    # unlike a counter that starts them late, every free rider sends its fake update in round 1 and later
    last = torch.tensor([3.0, 4.0])
    g = torch.Generator().manual_seed(0)
    assert not T.FreeRideZero().trains and torch.equal(T.FreeRideZero().craft(None, T.AttackView(2)), torch.zeros(1, 2))
    assert torch.equal(T.FreeRideStale().craft(None, T.AttackView(2, last_global_update=last)), last[None])
    n = T.FreeRideNoise().craft(None, T.AttackView(2, last_global_update=last, generator=g))
    assert abs(float(n.norm()) - 5.0) < 1e-5
    assert abs(float(T.FreeRideNoise(first_norm=0.1).craft(None, T.AttackView(1000, generator=g)).norm()) - 0.1) < 1e-6


def test_threat_model_validation():
    with pytest.raises(ValueError, match="knowledge"):
        T.FLThreatModel("model", collusion=False, knowledge="oracle")
    with pytest.raises(ValueError, match="fraction"):
        T.FLThreatModel("model", collusion=False, knowledge="own", fraction=1.0)


def test_dirichlet_partition():
    labels = torch.arange(10).repeat_interleave(100)
    parts = dirichlet_partition(labels, 10, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(1000))  # a partition: every index once
    # small alpha: most clients dominated by few classes; large alpha: near uniform
    def top_share(ps):
        return sum(float(torch.bincount(labels[p], minlength=10).max()) / len(p) for p in ps) / len(ps)
    iid = dirichlet_partition(labels, 10, 100.0, generator=torch.Generator().manual_seed(0))
    assert top_share(parts) > 0.5 and top_share(iid) < 0.25
    again = dirichlet_partition(labels, 10, 0.1, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        dirichlet_partition(labels, 10, 0.0)


def test_strategies_registry_and_explicit_state():
    assert set(available("fl_strategy")) >= {"fedavg", "krum", "bulyan", "fltrust", "reputation"}
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 20, generator=g) + 1.0
    for name in available("fl_strategy"):
        if name == "bulyan":
            with pytest.raises(ValueError, match="bulyan needs"):
                build("fl_strategy", name, n_clients=10, f=3, dim=20)
            continue
        agg = build("fl_strategy", name, n_clients=10, f=3, dim=20)
        root = X.mean(0) if agg.needs_root else None
        before = agg.state
        pv = agg.preview(torch.arange(10), root=root)(X)
        assert agg.state is before  # preview commits nothing
        out, info = agg.step(X, torch.arange(10), root=root)
        assert torch.allclose(out, pv) and out.shape == (20,) and torch.isfinite(out).all()
        if name in ("centered_clipping", "reputation"):
            assert agg.state is not before
