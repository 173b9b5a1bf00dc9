"""Aggregation rules: hand-computed numbers, and Flower's own functions as the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semguard.federated import aggregate as A
from semguard.federated import reputation as R

flwr_agg = pytest.importorskip("flwr.server.strategy.aggregate")

X3 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 10.0]])


def test_fedavg_hand():
    assert torch.allclose(A.fedavg(X3), torch.tensor([11 / 3, 10 / 3]))
    assert torch.allclose(A.fedavg(X3, torch.tensor([1.0, 1.0, 2.0])), torch.tensor([5.25, 5.0]))


def test_krum_hand():
    # squared distances: d01 = 1, d02 = 200, d12 = 181; f = 0 -> K - f - 2 = 1 nearest
    s = A.krum_scores(X3, f=0)
    assert s.tolist() == [1.0, 1.0, 181.0]
    agg, sel = A.krum(X3, f=0)
    assert int(sel[0]) in (0, 1) and torch.equal(agg, X3[int(sel[0])])
    agg, sel = A.krum(X3, f=0, m=2)
    assert sorted(sel.tolist()) == [0, 1] and torch.allclose(agg, torch.tensor([0.5, 0.0]))


def test_median_and_trimmed_hand():
    X = torch.tensor([[1.0], [2.0], [100.0], [3.0]])
    assert A.coordinate_median(X).item() == 2.5
    assert A.coordinate_median(X[:3]).item() == 2.0
    assert A.trimmed_mean(X, 0.25).item() == 2.5  # drops 1 and 100
    assert A.trimmed_mean(X, 0.0).item() == 26.5


def test_bulyan_hand_and_precondition():
    # 7 clients, f = 1: theta = 5 chosen by Krum (the 6 near 0 and 1 outlier -> outlier never chosen)
    X = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [1000.0]])
    agg, sel = A.bulyan(X, f=1)
    assert 6 not in sel.tolist() and len(sel) == 5
    with pytest.raises(ValueError, match="4f \\+ 3"):
        A.bulyan(X[:6], f=1)


def test_centered_clipping_hand():
    X = torch.tensor([[3.0, 4.0], [0.0, 0.5]])
    # from 0: clip (3,4) to norm 1 -> (0.6, 0.8); (0, 0.5) unclipped; mean (0.3, 0.65)
    v = A.centered_clipping(X, torch.zeros(2), tau=1.0)
    assert torch.allclose(v, torch.tensor([0.3, 0.65]))


def test_fltrust_hand():
    X = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    g0 = torch.tensor([1.0, 1.0])
    agg, ts = A.fltrust(X, g0)
    c = float(1 / np.sqrt(2))
    assert torch.allclose(ts, torch.tensor([c, c, 0.0]))
    # each rescaled to ||g0|| = sqrt 2: (sqrt2, 0), (0, sqrt2); trust-weighted mean
    assert torch.allclose(agg, torch.full((2,), float(np.sqrt(2) / 2)))
    assert torch.equal(A.fltrust(-X[:2], g0)[0], torch.zeros(2))


def test_bad_updates_rejected():
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        A.fedavg(torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="floating"):
        A.fedavg(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="\\[clients, params\\]"):
        A.coordinate_median(torch.ones(3))


def _as_flower(X, n):
    return [([x[:3].numpy().astype(np.float64), x[3:].numpy().astype(np.float64)], int(c)) for x, c in zip(X, n)]


@pytest.mark.parametrize("seed", [0, 1])
def test_against_flower(seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(9, 7, generator=g, dtype=torch.float64)
    X[0] *= 50  # one outlier
    n = torch.randint(1, 100, (9,), generator=g)
    cat = lambda arrs: np.concatenate([a.ravel() for a in arrs])  # noqa: E731
    np.testing.assert_allclose(A.fedavg(X, n.double()).numpy(), cat(flwr_agg.aggregate(_as_flower(X, n))), rtol=1e-10)
    np.testing.assert_allclose(A.coordinate_median(X).numpy(), cat(flwr_agg.aggregate_median(_as_flower(X, n))))
    np.testing.assert_allclose(A.trimmed_mean(X, 0.2).numpy(),
                               cat(flwr_agg.aggregate_trimmed_avg(_as_flower(X, n), 0.2)), rtol=1e-10)
    np.testing.assert_allclose(A.krum(X, f=2)[0].numpy(), cat(flwr_agg.aggregate_krum(_as_flower(X, n), 2, 0)))
    np.testing.assert_allclose(A.krum(X, f=2, m=4, weights=n.double())[0].numpy(),
                               cat(flwr_agg.aggregate_krum(_as_flower(X, n), 2, 4)), rtol=1e-10)
    np.testing.assert_allclose(
        A.bulyan(X, f=1)[0].numpy(),
        cat(flwr_agg.aggregate_bulyan(_as_flower(X, n), 1, flwr_agg.aggregate_krum, to_keep=0)), rtol=1e-10)


def _honest(g, k, d=2000):
    base = torch.randn(d, generator=g)
    return base + 0.5 * torch.randn(k, d, generator=g)


def test_reputation_flags_free_riders_and_copies():
    g = torch.Generator().manual_seed(0)
    H = _honest(g, 7)
    X = torch.cat([H, torch.zeros(1, 2000), torch.randn(1, 2000, generator=g) * 3, torch.ones(2, 2000) * -1.0])
    state = R.ReputationState.init(11, 2000)
    agg, state2, info = R.reputation_aggregate(X, torch.arange(11), state)
    assert info.free_rider.tolist() == [False] * 7 + [True, True, False, False]
    assert info.duplicate.tolist() == [False] * 9 + [True, True]
    assert (info.weights[7:] == 0).all() and (info.weights[:7] > 0).all()
    assert torch.equal(state.scores, torch.ones(11))  # the input state is untouched
    assert (state2.scores[7:] == 0.5).all() and state2.rounds == 1
    # the next round a stale replay of the previous update is a free ride
    X2 = torch.cat([_honest(g, 7), X[7:]])
    X2[8] = torch.randn(2000, generator=g) * 3
    X2[0] = X[0]
    _, state3, info2 = R.reputation_aggregate(X2, torch.arange(11), state2)
    assert bool(info2.free_rider[0]) and "stale" in info2.reasons[0]
    assert int(state3.free_rides[7]) == 2


def test_reputation_learns_against_sign_flip():
    g = torch.Generator().manual_seed(1)
    state = R.ReputationState.init(10, 2000)
    for _ in range(4):
        H = _honest(g, 7)
        X = torch.cat([H, -H[:3] * 1.1])
        agg, state, info = R.reputation_aggregate(X, torch.arange(10), state)
        honest_mean = H.mean(0)
        assert R.cos_rows(agg[None], honest_mean[None]).item() > 0.9
    assert (state.scores[7:] < 0.1).all() and (state.scores[:7] > 0.5).all()


@pytest.mark.parametrize("K", [2, 5, 6, 9])
def test_leave_one_out_median_matches_naive(K):
    g = torch.Generator().manual_seed(K)
    X = torch.randn(K, 40, generator=g)
    pool = torch.ones(K, dtype=torch.bool)
    pool[0] = K < 3
    out = R.leave_one_out_median(X, pool)
    for k in range(K):
        others = pool.clone()
        others[k] = False
        assert torch.allclose(out[k], A.coordinate_median(X[others])), k
    assert R.leave_one_out_median(torch.tensor([[1.0], [2.0], [9.0]]), torch.ones(3, dtype=torch.bool)).flatten().tolist() \
        == [5.5, 5.0, 1.5]


def test_duplicate_groups_hand_computed():
    X = torch.tensor([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0], [0.0, -1.0], [0.0, 1.0001], [0.001, 1.0]])
    assert R.duplicate_groups(X, 0.99).tolist() == [0, 0, 2, 3, 2, 2]
    active = torch.tensor([True, True, True, True, False, True])
    assert R.duplicate_groups(X, 0.99, active).tolist() == [0, 0, 2, 3, 4, 2]


def test_weighted_centered_clipping_hand_computed():
    X = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    # one step from 0: clip_1 gives (1, 0) and (0, 1), weighted 1/4 and 3/4
    assert A.centered_clipping(X, torch.zeros(2), 1.0, 1, torch.tensor([1.0, 3.0])).tolist() == [0.25, 0.75]
    assert A.centered_clipping(X, torch.zeros(2), 1.0, 1).tolist() == [0.5, 0.5]
    # second step from (0.25, 0.75): (2.75, -0.75) clipped to norm 1, (-0.25, 0.25) kept
    v = torch.tensor([0.25, 0.75])
    d0 = torch.tensor([2.75, -0.75]) / math.hypot(2.75, 0.75)
    want = v + 0.25 * d0 + 0.75 * torch.tensor([-0.25, 0.25])
    assert torch.allclose(A.centered_clipping(X, torch.zeros(2), 1.0, 2, torch.tensor([1.0, 3.0])), want)


def test_copies_share_one_vote_and_cannot_frame_an_honest_client():
    g = torch.Generator().manual_seed(3)
    H = _honest(g, 7)
    X = torch.cat([H, H[:1].expand(2, -1)])  # two attackers copy honest client 0
    agg, state, info = R.reputation_aggregate(X, torch.arange(9), R.ReputationState.init(9, 2000))
    assert info.groups.tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 0]
    assert info.duplicate.tolist() == [True] + [False] * 6 + [True, True]
    w = info.weights
    assert w[0] > 0  # the copied honest client is not excluded
    # the group of three weighs what one honest client weighs (all scores equal here)
    assert torch.allclose(w[[0, 7, 8]].sum(), w[1:7].mean(), rtol=0.05)


def _alie_distance(strategy_fn, rounds=4, seed=5):
    """Mean over rounds of ||aggregate - honest mean|| / ||honest mean|| under ALIE at 3 of 10."""
    from semguard.federated.attacks import ALIE, AttackView

    g = torch.Generator().manual_seed(seed)
    out, state = [], R.ReputationState.init(10, 2000)
    for _ in range(rounds):
        H = _honest(g, 7)
        M = ALIE().craft(H[:3], AttackView(2000, honest=H))
        X = torch.cat([H, M])
        agg, state = strategy_fn(X, state)
        out.append(float((agg - H.mean(0)).norm() / H.mean(0).norm()))
    return sum(out) / len(out)


def test_reputation_beats_fedavg_under_alie():
    ours = _alie_distance(lambda X, s: R.reputation_aggregate(X, torch.arange(10), s)[:2])
    fedavg = _alie_distance(lambda X, s: (A.fedavg(X), s))
    median = _alie_distance(lambda X, s: (A.coordinate_median(X), s))
    # ALIE moves FedAvg by 3/10 of z sigma per coordinate; copies counting once leave ours 1/8 of it
    assert ours < 0.6 * fedavg and ours < median


def test_never_more_than_half_left_out():
    g = torch.Generator().manual_seed(4)
    X = _honest(g, 6)
    st = R.ReputationState.init(6, 2000)
    st = R.ReputationState(torch.tensor([1.0, 1.0, 0.01, 0.01, 0.01, 0.01]), st.history, st.last, st.seen,
                           st.free_rides)
    cfg = R.ReputationConfig(decay=0.99)  # r ~ 0.01 < 0.2 max r for four clients: only two would stay
    _, new, info = R.reputation_aggregate(X, torch.arange(6), st, cfg)
    kept = (info.weights > 0).nonzero().flatten().tolist()
    assert len(kept) == 3 and kept[:2] == [0, 1]
    assert int(new.scores[2:].argmax()) + 2 == kept[2]  # the third is the best of the rest
