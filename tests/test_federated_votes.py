"""Near copies share their votes (``soft_vote_size``, ``reputation-votes``) and the attack that knows it
(``adaptive_decor``: the colluders spend part of their shift on their own noise)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from semguard.federated import attacks as T
from semguard.federated import reputation as R
from semguard.federated.strategy import STRATEGIES, VARIANTS
from semguard.registry import build


def test_soft_vote_size_hand_computed():
    # pairwise cosines: c03 = c13 = 1/sqrt(2), the other four 0; the median of the six is 0 (the lower one)
    X = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    v = R.soft_vote_size(X, torch.ones(4, dtype=torch.bool))
    h = 1 / math.sqrt(2)
    assert torch.allclose(v, torch.tensor([1 + h, 1 + h, 1.0, 1 + 2 * h]), atol=1e-6)
    # tau from the pooled pairs only; an unpooled row gets 1 and adds nothing
    X = torch.tensor([[1.0, 0], [1, 1], [0, 1], [1, 0]])  # pooled 0-2: cosines h, 0, h -> tau = h
    v = R.soft_vote_size(X, torch.tensor([True, True, True, False]))
    assert torch.allclose(v, torch.ones(4), atol=1e-6)
    # an exact copy adds one whole vote; the relu caps each pair at 1
    X = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    v = R.soft_vote_size(X, torch.ones(4, dtype=torch.bool))
    assert torch.allclose(v, torch.tensor([2.0, 2.0, 1.0, 1.0]), atol=1e-6)


def test_soft_vote_size_small_pool_and_bad_pool():
    X = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(R.soft_vote_size(X, torch.tensor([True, True, False, False])), torch.ones(4))
    with pytest.raises(ValueError, match="one flag per row"):
        R.soft_vote_size(X, torch.ones(3, dtype=torch.bool))


def _round(shift: float, gen_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seven non-IID honest updates (a unit mean plus as much spread) and three colluders that each
    start from an honest update and add one shared bias orthogonal to the mean (which the progress
    test cannot see), ``shift`` times its norm: at 8, pairwise cosine 0.98, under ``duplicate_cos``."""
    g = torch.Generator().manual_seed(gen_seed)
    D = 400
    mean = torch.randn(D, generator=g)
    mean = mean / mean.norm()
    H = mean + torch.randn(7, D, generator=g) / math.sqrt(D)
    v = torch.randn(D, generator=g)
    v = v - (v @ mean) * mean
    M = H[:3] + shift * v / v.norm()
    return torch.cat([H, M]), mean


def test_colluders_under_duplicate_threshold_count_about_once():
    X, mean = _round(8.0)
    n = X.norm(dim=1)
    C = (X @ X.T) / (n[:, None] * n[None])
    assert 0.95 < float(C[7, 8]) < R.ReputationConfig().duplicate_cos  # the copies test does not group them
    st = R.ReputationState.init(10, X.shape[1])
    floor = R.ReputationConfig(floor_rank="agreement")
    votes = R.ReputationConfig(**{**VARIANTS["reputation-votes"]})
    a_f, _, i_f = R.reputation_aggregate(X, torch.arange(10), st, floor)
    a_v, _, i_v = R.reputation_aggregate(X, torch.arange(10), st, votes)
    wf, wv = float(i_f.weights[7:].sum()), float(i_v.weights[7:].sum())
    assert wf > 0.2  # without shared votes they keep about their three tenths (0.25)
    assert wv < 0.65 * wf  # 0.14
    honest = X[:7].mean(0)
    assert float((a_v - honest).norm()) < 0.7 * float((a_f - honest).norm())  # 0.25 against 0.41


def test_votes_cost_little_without_colluders():
    g = torch.Generator().manual_seed(1)
    D = 400
    mean = torch.randn(D, generator=g)
    X = mean / mean.norm() + torch.randn(10, D, generator=g) / math.sqrt(D)
    st = R.ReputationState.init(10, D)
    _, _, i_f = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(floor_rank="agreement"))
    _, _, i_v = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(**VARIANTS["reputation-votes"]))
    # independent clients: every soft vote size stays near 1, so the weights barely move
    assert float((i_f.weights - i_v.weights).abs().max()) < 0.03


def test_votes_registered():
    assert "reputation-votes" in STRATEGIES
    agg = build("fl_strategy", "reputation-votes", n_clients=10, f=3, dim=400)
    X, _ = _round(8.0)
    out, info = agg.step(X, torch.arange(10))
    assert out.shape == (400,) and torch.isfinite(out).all()


def _view(X: torch.Tensor, rule: str) -> T.AttackView:
    agg = build("fl_strategy", rule, n_clients=10, f=3, dim=X.shape[1])
    return T.AttackView(X.shape[1], honest=X[:7], aggregate=agg.preview(torch.arange(10)))


def test_adaptive_decor_without_noise_is_adaptive_mimic():
    X, _ = _round(8.0)
    view = _view(X, "reputation-votes")
    a = T.AdaptiveMimic().craft(X[7:], view)
    b = T.AdaptiveDecor(rhos=(0.0,)).craft(X[7:], view)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="finite rhos"):
        T.AdaptiveDecor(rhos=(-1.0,))


def test_adaptive_decor_is_at_least_as_strong_and_reproducible():
    X, _ = _round(8.0)
    view = _view(X, "reputation-votes")
    H = X[:7]
    mu = H.mean(0)

    def damage(M: torch.Tensor) -> float:
        return float((view.aggregate(torch.cat([H, M])) - mu).norm())

    mimic = T.AdaptiveMimic().craft(X[7:], view)
    d1 = T.AdaptiveDecor(seed=3).craft(X[7:], view)
    d2 = T.AdaptiveDecor(seed=3).craft(X[7:], view)
    assert torch.equal(d1, d2)
    # against shared votes, spending part of the shift on own noise pays (0.41 against 0.30 here; the
    # distance from the honest mean counts the noise that gets through as damage too)
    assert damage(d1) > 1.2 * damage(mimic)


def test_left_out_clients_do_not_move_tau():
    """Three clients send the honest mean reversed and are left out (score 0): the kept clients' votes
    are counted among themselves.  Had the reversed rows been pooled, the median pairwise cosine would
    fall below 0 and every honest pair would count as a shared vote."""
    g = torch.Generator().manual_seed(2)
    D = 400
    mean = torch.randn(D, generator=g)
    mean = mean / mean.norm()
    H = mean + torch.randn(7, D, generator=g) / math.sqrt(D)
    X = torch.cat([H, -3 * mean + 0.3 * torch.randn(3, D, generator=g) / math.sqrt(D)])
    st = R.ReputationState.init(10, D)
    _, _, i_f = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(floor_rank="agreement"))
    _, _, i_v = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(**VARIANTS["reputation-votes"]))
    assert float(i_f.weights[7:].sum()) == 0 and float(i_v.weights[7:].sum()) == 0
    Xc = R.clip_norm(X, X.norm(dim=1).median())
    kept = i_f.weights > 0
    expect = torch.where(kept, i_f.weights / R.soft_vote_size(Xc, kept), torch.zeros(10))
    assert torch.allclose(i_v.weights, expect / expect.sum(), atol=1e-6)
    everyone = R.soft_vote_size(Xc, torch.ones(10, dtype=torch.bool))
    assert float(everyone[:7].min()) > float(R.soft_vote_size(Xc, kept)[:7].max())  # what pooling them did


def test_soft_vote_tau_is_never_negative():
    # two pairs at cos 0.3 (a-b, c-d), the other four at -0.3 or -1: the median -0.3 is clamped to 0, so each
    # row shares 0.3 of a vote (unclamped it would be (0.3 + 0.3) / 1.3 = 0.46)
    r = math.sqrt(0.91)
    X = torch.tensor([[1.0, 0.0], [0.3, r], [-1.0, 0.0], [-0.3, -r]])
    assert torch.allclose(R.soft_vote_size(X, torch.ones(4, dtype=torch.bool)), torch.full((4,), 1.3), atol=1e-6)


def _excluded_attackers(scale: float, noise_seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    D = 400
    mean = torch.randn(D, generator=g)
    mean = mean / mean.norm()
    H = mean + 2.0 * torch.randn(7, D, generator=g) / math.sqrt(D)
    gn = torch.Generator().manual_seed(noise_seed)
    return torch.cat([H, -scale * mean + torch.randn(3, D, generator=gn) / math.sqrt(D)])


def test_two_pass_scores_do_not_depend_on_the_clients_it_leaves_out():
    """Three clients send the mean reversed, with two different sizes and noises; every pass leaves them
    out.  With ``two_pass`` the kept clients are scored against each other only, so their weights and
    the aggregate are the same whatever the left-out rows were; with one pass they move."""
    st = R.ReputationState.init(10, 400)
    out = {}
    for name in ("reputation-votes", "reputation-two-pass"):
        cfg = R.ReputationConfig(**VARIANTS[name])
        runs = [R.reputation_aggregate(_excluded_attackers(sc, ns), torch.arange(10), st, cfg) for sc, ns in
                ((3.0, 1), (8.0, 2))]
        for agg, _, info in runs:
            assert float(info.weights[7:].sum()) == 0
        out[name] = (float((runs[0][0] - runs[1][0]).norm()), float((runs[0][2].weights - runs[1][2].weights).abs().max()))
    assert out["reputation-two-pass"] == (0.0, 0.0)
    assert out["reputation-votes"][1] > 1e-4


def test_weighted_coordinate_median_hand_computed():
    X = torch.tensor([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0], [4.0, 40.0]])
    # equal weights: the mean of the two middle values, as coordinate_median
    assert torch.allclose(R.weighted_coordinate_median(X, torch.ones(4)), R.coordinate_median(X))
    assert torch.allclose(R.weighted_coordinate_median(X, torch.ones(4)), torch.tensor([2.5, 25.0]))
    # weights 3, 1, 1, 1: half the total (3) is reached at the first row from below; from above, rows 4, 3, 2
    # carry 3 -> lower and upper medians 1 and 2 in column 0; column 1 sorted 10 (3), 20, 30, 40 -> 10 and 20
    assert torch.allclose(R.weighted_coordinate_median(X, torch.tensor([3.0, 1, 1, 1])), torch.tensor([1.5, 15.0]))
    # a zero weight is never picked: rows 1-3 only, odd count -> the middle one
    assert torch.allclose(R.weighted_coordinate_median(X, torch.tensor([1.0, 1, 1, 0])), torch.tensor([2.0, 20.0]))
    with pytest.raises(ValueError, match="non-negative weights"):
        R.weighted_coordinate_median(X, torch.zeros(4))


def test_leave_one_out_weighted_median_matches_brute_force():
    g = torch.Generator().manual_seed(6)
    X = torch.randn(7, 30, generator=g)
    w = torch.rand(7, generator=g) + 0.1
    pool = torch.tensor([True, True, False, True, True, True, False])
    out = R.leave_one_out_weighted_median(X, pool, w)
    for k in range(7):
        keep = pool.clone()
        keep[k] = False
        assert torch.allclose(out[k], R.weighted_coordinate_median(X[keep], w[keep]))
    # equal weights: the unweighted leave-one-out median
    assert torch.allclose(R.leave_one_out_weighted_median(X, pool, torch.ones(7)), R.leave_one_out_median(X, pool))


def test_vote_median_copies_of_one_client_do_not_double_its_say():
    """Three colluders copy honest clients 0-2 with a small shared shift.  With the plain median the
    consensus leans towards clients 0-2 (each counted twice) and the others score lower; counting each
    copy pair once, the consensus is closer to the honest clients' own median."""
    X, _ = _round(0.3)
    pool = torch.ones(10, dtype=torch.bool)
    vw = 1.0 / R.soft_vote_size(X, pool)
    honest_med = R.coordinate_median(X[:7])
    plain = R.coordinate_median(X)
    weighted = R.weighted_coordinate_median(X, vw)
    assert float((weighted - honest_med).norm()) < float((plain - honest_med).norm())
    st = R.ReputationState.init(10, X.shape[1])
    agg, _, info = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(**VARIANTS["reputation-vote-median"]))
    assert agg.shape == (X.shape[1],) and torch.isfinite(agg).all() and abs(float(info.weights.sum()) - 1) < 1e-5


def test_info_reports_the_score_terms():
    """The round score is zero exactly where the agreement is not positive or the progress factor is 0."""
    X, _ = _round(8.0)
    st = R.ReputationState.init(10, X.shape[1])
    _, _, info = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(**VARIANTS["reputation-votes"]))
    scored = info.round_score > 0
    assert torch.equal(scored, (info.agreement > 0) & (info.progress_factor > 0) & ~info.free_rider)
    lagging = replace(st, lag=torch.full((10,), -100.0))
    _, _, info = R.reputation_aggregate(X, torch.arange(10), lagging, R.ReputationConfig())
    assert float(info.progress_factor.abs().max()) == 0.0 and float(info.round_score.abs().max()) == 0.0


def test_progress_gate_keeps_zeroed_clients_out_of_the_consensus():
    """Three clients pull against the mean and their progress lag is already far below ``lag_lo``, so the
    progress test zeroes them.  Ungated they still sit in the median that the honest clients are scored
    against; gated, each honest client's agreement is its cosine with the other honest clients' median."""
    g = torch.Generator().manual_seed(7)
    D = 400
    mean = torch.randn(D, generator=g)
    mean = mean / mean.norm()
    H = 0.3 * mean + torch.randn(7, D, generator=g) / math.sqrt(D)  # non-IID: pairwise cosine about 0.1
    X = torch.cat([H, -mean + 0.2 * torch.randn(3, D, generator=g) / math.sqrt(D)])
    st = replace(R.ReputationState.init(10, D), lag=torch.tensor([0.0] * 7 + [-100.0] * 3))
    _, _, plain = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(**VARIANTS["reputation-votes"]))
    _, _, gated = R.reputation_aggregate(X, torch.arange(10), st, R.ReputationConfig(**VARIANTS["reputation-gated"]))
    assert float(gated.progress_factor[7:].abs().max()) == 0 and float(gated.progress_factor[:7].min()) > 0
    Xc = R.clip_norm(X, X.norm(dim=1).median())
    honest = torch.tensor([True] * 7 + [False] * 3)
    expect = R.cos_rows(Xc, R.leave_one_out_median(Xc, honest))
    assert torch.allclose(gated.agreement[:7], expect[:7], atol=1e-6)
    # ungated, the three reversed rows turn every honest agreement negative (-0.07 to -0.17 here): all score 0,
    # the mechanism the bench's score terms show under adaptive_mimic; gated, every honest client scores
    assert float(plain.agreement[:7].max()) < 0 and float(plain.round_score.abs().max()) == 0
    assert float(gated.agreement[:7].min()) > 0 and float(gated.round_score[:7].min()) > 0
