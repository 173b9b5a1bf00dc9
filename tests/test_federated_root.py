"""``reputation-root``: our rule with the server's root update as a trusted reference (federated/root.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from semguard.federated import aggregate as A
from semguard.federated import reputation as R
from semguard.federated import root as T
from semguard.federated.attacks import AdaptiveBias, AttackView
from semguard.federated.strategy import ServerAggregator

OFF = R.ReputationConfig(root_gate=False, root_progress=False, root_radius=math.inf, root_centre=False)


def test_root_cos_and_trust_hand():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    g0 = torch.tensor([2.0, 0.0])
    assert torch.allclose(T.root_cos(X, g0), torch.tensor([1.0, 0.0, 1 / math.sqrt(2), -1.0]))
    # positive cosines of the pool: 1 and 0.7071; torch's median of two is the lower, 0.7071, so both reach 1
    everyone = torch.ones(4, dtype=torch.bool)
    assert torch.allclose(T.root_trust(X, g0, everyone), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    # the reference comes from the pool only: pool {0} -> median 1, row 2 keeps 0.7071
    pool = torch.tensor([True, False, False, False])
    assert torch.allclose(T.root_trust(X, g0, pool), torch.tensor([1.0, 0.0, 1 / math.sqrt(2), 0.0]))
    # nobody in the pool agrees with the root: every trust is 0
    assert T.root_trust(X, -g0, torch.tensor([True, False, True, False])).eq(0).all()


def test_root_radius_and_check_hand():
    assert T.root_radius(torch.tensor([3.0, 4.0]), 2.0) == 10.0
    assert T.root_radius(torch.tensor([3.0, 4.0]), math.inf) == math.inf
    with pytest.raises(ValueError, match="> 0"):
        T.root_radius(torch.tensor([3.0, 4.0]), 0.0)
    T.check_root(torch.tensor([1.0, 0.0]), 2)
    for bad, why in ((torch.zeros(2), "non-zero"), (torch.tensor([1.0, math.nan]), "finite"),
                     (torch.ones(3), r"\[2\]"), (torch.ones(2, dtype=torch.long), r"\[2\]")):
        with pytest.raises(ValueError, match=why):
            T.check_root(bad, 2)
    with pytest.raises(ValueError, match="root_radius"):
        R.ReputationConfig(root_radius=-1.0)


def _updates(seed: int, d: int = 400, k: int = 10):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(d, generator=g)
    X = base + 1.5 * torch.randn(k, d, generator=g)
    return X, base + 0.5 * torch.randn(d, generator=g)


def test_root_switched_off_is_the_root_free_rule():
    X, g0 = _updates(1)
    ids = torch.arange(10)
    st = R.ReputationState.init(10, 400)
    a, s1, _ = R.reputation_aggregate(X, ids, st)
    b, s2, _ = R.reputation_aggregate(X, ids, st, OFF, g0)
    assert torch.equal(a, b) and torch.equal(s1.scores, s2.scores)
    with pytest.raises(ValueError, match="root update"):
        R.reputation_aggregate(X, ids, st, R.ReputationConfig(), torch.zeros(400))


def test_gate_zeroes_a_client_against_the_root():
    # the root leans along a direction e orthogonal to the clients' common direction; client 9 moves 60 units
    # against e: still positive cosine with the other clients' median (about 0.2), so the root-free rule scores
    # it, but negative cosine with the root (about 20 - 30 along g0), so the gate scores it 0
    X, _ = _updates(2)
    g = torch.Generator().manual_seed(12)
    b = X[:9].mean(0) / X[:9].mean(0).norm()
    e = torch.randn(400, generator=g)
    e = e - (e @ b) * b
    e = e / e.norm()
    g0 = b + 0.5 * e
    X[9] = X[9] - 60.0 * e
    assert float(T.root_cos(X[9:], g0)) < 0 < float(T.root_cos(X[:9], g0).min())
    ids, st = torch.arange(10), R.ReputationState.init(10, 400)
    _, _, free = R.reputation_aggregate(X, ids, st, OFF)
    assert float(free.round_score[9]) > 0
    _, _, gated = R.reputation_aggregate(X, ids, st, replace(OFF, root_gate=True), g0)
    assert float(gated.round_score[9]) == 0.0 and float(gated.weights[9]) == 0.0
    assert (gated.round_score[:9] > 0).all()


def test_component_along_the_root_is_the_weighted_median():
    X, g0 = _updates(3)
    cfg = R.ReputationConfig()
    agg, _, info = R.reputation_aggregate(X, torch.arange(10), R.ReputationState.init(10, 400), cfg, g0)
    Xc = A.clip_norm(X, X.norm(dim=1).median())
    u = g0 / g0.norm()
    keep = info.weights > 0
    want = R.weighted_median((Xc @ u)[keep], info.weights[keep])
    assert abs(float(agg @ u) - want) < 1e-4


@pytest.mark.parametrize("centre", [False, True])
def test_radius_caps_the_move_from_the_centre(centre):
    # three centered-clipping steps each move the aggregate by at most sum(w) x tau = tau, so the aggregate is
    # within 3 tau of where it starts: the median of the kept rows, or the root update itself
    X, g0 = _updates(4)
    g0 = 1e-3 * g0 / g0.norm()
    cfg = replace(OFF, root_radius=1.0, root_centre=centre, directional=False)
    agg, _, _ = R.reputation_aggregate(X, torch.arange(10), R.ReputationState.init(10, 400), cfg, g0)
    start = g0 if centre else A.coordinate_median(A.clip_norm(X, X.norm(dim=1).median()))
    assert float((agg - start).norm()) <= 3 * 1e-3 + 1e-6
    free, _, _ = R.reputation_aggregate(X, torch.arange(10), R.ReputationState.init(10, 400), replace(
        OFF, directional=False))
    assert float((free - A.coordinate_median(A.clip_norm(X, X.norm(dim=1).median()))).norm()) > 0.1


def test_strategy_needs_the_root_and_previews_the_root_rule():
    X, g0 = _updates(5)
    ids = torch.arange(10)
    agg = ServerAggregator("reputation-root", 10, 3, 400)
    assert agg.needs_root and not ServerAggregator("reputation", 10, 3, 400).needs_root
    with pytest.raises(ValueError, match="reputation-root needs"):
        agg.step(X, ids)
    pv = agg.preview(ids, root=g0)(X)
    want, _, _ = R.reputation_aggregate(X, ids, R.ReputationState.init(10, 400), R.ReputationConfig(), g0)
    assert torch.equal(pv, want)
    free = ServerAggregator("reputation", 10, 3, 400).preview(ids)(X)
    assert not torch.allclose(pv, free)
    out, info = agg.step(X, ids, root=g0)
    assert torch.equal(out, pv) and agg.state.rounds == 1 and set(info["reputation"]) == set(range(10))


def _error_under_adaptive_bias(root: bool, rounds: int = 4, d: int = 500) -> float:
    """Mean ``||aggregate - base|| / ||base||`` over the rounds: 7 honest ``base + 1.5 N(0, 1)``, a root update
    ``base + 0.7 N(0, 1)`` and 3 attackers running adaptive_bias against the rule's own aggregate."""
    g = torch.Generator().manual_seed(31)
    state, atk, err = R.ReputationState.init(10, d), AdaptiveBias(), []
    for _ in range(rounds):
        base = torch.randn(d, generator=g)
        H = base + 1.5 * torch.randn(7, d, generator=g)
        g0 = (base + 0.7 * torch.randn(d, generator=g)) if root else None
        fn = (lambda X, s=state: R.reputation_aggregate(X, torch.arange(10), s, R.ReputationConfig(), g0)[0])
        X = torch.cat([H, atk.craft(H[:3], AttackView(d, honest=H, aggregate=fn))])
        agg, state, _ = R.reputation_aggregate(X, torch.arange(10), state, R.ReputationConfig(), g0)
        err.append(float((agg - base).norm() / base.norm()))
    return sum(err) / len(err)


@pytest.mark.slow
def test_root_holds_better_against_the_rule_aware_search():
    # measured: 0.742 without the root, 0.717 with it.  Only a direction check: this synthetic setting does not
    # predict training (the session-14 v1 settings, root_centre=True and radius 2, gave 0.685 here and a model at
    # chance under adaptive_bias in training; docs/federated.md, session 14)
    free, rooted = _error_under_adaptive_bias(False), _error_under_adaptive_bias(True)
    assert rooted < free, (free, rooted)
