"""The honest-majority floor of our rule (step 5) and ``reputation-floor``, which fills it by agreement."""

from __future__ import annotations

import pytest
import torch
from dataclasses import replace

from semguard.federated import reputation as R
from semguard.federated.strategy import STRATEGIES, VARIANTS


def _round_everyone_scores_zero() -> tuple[torch.Tensor, R.ReputationState]:
    """Six clients: 0 and 1 send the honest direction reversed, 2-5 the honest direction with their own
    noise.  Clients 0 and 1 farmed a full reputation earlier, 2-5 hold 0.5; every client's progress
    lag is far below ``lag_lo``, so every round score is 0 and only the floor keeps anyone."""
    gen = torch.Generator().manual_seed(0)
    D = 64
    mean = torch.randn(D, generator=gen)
    X = mean + 0.5 * torch.randn(6, D, generator=gen)
    X[:2] = -mean + 0.5 * torch.randn(2, D, generator=gen)
    st = R.ReputationState.init(6, D)
    st = replace(st, scores=torch.tensor([1.0, 1.0, 0.5, 0.5, 0.5, 0.5]), lag=torch.full((6,), -100.0))
    return X, st


def test_floor_by_reputation_keeps_the_farmed_clients_and_fills_by_id():
    X, st = _round_everyone_scores_zero()
    _, _, info = R.reputation_aggregate(X, torch.arange(6), st, R.ReputationConfig())
    assert float(info.round_score.abs().max()) == 0.0
    kept = (info.weights > 0).nonzero().flatten().tolist()
    assert kept == [0, 1, 2]  # ceil(6 / 2) clients: the two old reputations, then the lowest id


def test_floor_by_agreement_keeps_the_clients_that_agree_this_round():
    X, st = _round_everyone_scores_zero()
    cfg = R.ReputationConfig(floor_rank="agreement")
    agg, _, info = R.reputation_aggregate(X, torch.arange(6), st, cfg)
    assert float(info.round_score.abs().max()) == 0.0
    kept = (info.weights > 0).nonzero().flatten().tolist()
    # the three of 2-5 with the highest cosine with the other clients' median, never 0 or 1
    Xc = R.clip_norm(X, X.norm(dim=1).median())
    agree = R.cos_rows(Xc, R.leave_one_out_median(Xc, torch.ones(6, dtype=torch.bool)))
    assert kept == sorted(agree.argsort(descending=True)[:3].tolist())
    assert set(kept) <= {2, 3, 4, 5}
    honest_mean = X[2:].mean(0)
    assert float(R.cos_rows(agg[None], honest_mean[None])) > 0.9


def test_floor_clients_that_scored_come_first_and_free_riders_last():
    """With some clients scoring, the floor fills with them before any zero-score client, either rank."""
    X, st = _round_everyone_scores_zero()
    st = replace(st, lag=torch.tensor([-100.0, -100.0, 0.0, -100.0, -100.0, -100.0]))
    for rank in ("reputation", "agreement"):
        _, _, info = R.reputation_aggregate(X, torch.arange(6), st, R.ReputationConfig(floor_rank=rank))
        assert float(info.round_score[2]) > 0 and float(info.round_score[[0, 1, 3, 4, 5]].abs().max()) == 0
        assert float(info.weights[2]) > 0


def test_floor_rank_is_validated_and_registered():
    with pytest.raises(ValueError, match="floor_rank"):
        R.ReputationConfig(floor_rank="id")
    assert "reputation-floor" in STRATEGIES and VARIANTS["reputation-floor"] == {"floor_rank": "agreement"}
