"""``reputation-axes``: step 8 of our rule, the clamp along the clients' principal axes (federated/axes.py)."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.federated import axes as X8
from semguard.federated import reputation as R
from semguard.federated.attacks import AdaptiveBias, AttackView
from semguard.federated.strategy import ServerAggregator


def test_weighted_quantile_hand():
    v, w = torch.tensor([3.0, 1.0, 2.0, 10.0]), torch.ones(4)
    # sorted 1, 2, 3, 10 with cumulative shares .25 .5 .75 1: the first to reach .4 is 2; from the top 10 (.25), 3 (.5)
    assert X8.weighted_quantile(v, w, 0.4) == 2.0
    assert X8.weighted_quantile(v, w, 0.4, upper=True) == 3.0
    # a share reached exactly counts: .5 is reached at 2
    assert X8.weighted_quantile(v, w, 0.5) == 2.0
    # weights: 10 holds .7 of the total, so it is the .4 quantile from the bottom too
    assert X8.weighted_quantile(v, torch.tensor([0.1, 0.1, 0.1, 0.7]), 0.4) == 10.0
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        X8.weighted_quantile(v, w, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        X8.weighted_quantile(v, -w, 0.5)


def test_affine_span_hand():
    Y = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    # mean (1, 0, 0), span the x axis: the y and z parts go
    assert torch.allclose(X8.affine_span(torch.tensor([5.0, 3.0, 4.0]), Y, torch.ones(2)), torch.tensor([5.0, 0.0, 0.0]))
    # weights move the mean, not the span: (0.5, 0, 0) + x part of (5 - 0.5)
    assert torch.allclose(X8.affine_span(torch.tensor([5.0, 3.0, 4.0]), Y, torch.tensor([3.0, 1.0])),
                          torch.tensor([5.0, 0.0, 0.0]))
    # identical rows: the span is the point itself
    same = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    assert torch.allclose(X8.affine_span(torch.tensor([9.0, 9.0]), same, torch.ones(2)), torch.tensor([1.0, 2.0]))


def test_principal_axes_hand():
    Y = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # weighted variances 2 along x, 0.5 along y: x first
    E = X8.principal_axes(Y, torch.ones(4), 2)
    assert torch.allclose(E.abs(), torch.eye(2), atol=1e-6)
    # made orthogonal to x: one axis left (y), the zero-spread one is dropped
    E = X8.principal_axes(Y, torch.ones(4), 2, exclude=torch.tensor([1.0, 0.0]))
    assert E.shape == (1, 2) and torch.allclose(E.abs(), torch.tensor([[0.0, 1.0]]), atol=1e-6)
    # weights reorder them: y rows 20x heavier -> variance along y 0.95 > x 0.19
    E = X8.principal_axes(Y, torch.tensor([1.0, 1.0, 20.0, 20.0]), 1)
    assert torch.allclose(E.abs(), torch.tensor([[0.0, 1.0]]), atol=1e-6)


def test_clamp_to_axes_hand():
    # seven honest components 0..6 along x and three attackers at 20, equal weights, band 0.1 (quantiles .4 / .4)
    x = torch.tensor([0.0, 1, 2, 3, 4, 5, 6, 20, 20, 20])
    Y = torch.stack([x, torch.zeros(10)], 1)
    e = torch.tensor([[1.0, 0.0]])
    # from the bottom, cumulative 4 of 10 is reached at 3; from the top, 20 20 20 hold 3, then 6 reaches 4
    out = X8.clamp_to_axes(torch.tensor([15.0, 5.0]), Y, torch.ones(10), e, 0.1)
    assert torch.allclose(out, torch.tensor([6.0, 5.0]))  # the y part is not an axis: left alone
    assert torch.allclose(X8.clamp_to_axes(torch.tensor([-1.0, 0.0]), Y, torch.ones(10), e, 0.1), torch.tensor([3.0, 0.0]))
    assert torch.allclose(X8.clamp_to_axes(torch.tensor([4.5, 0.0]), Y, torch.ones(10), e, 0.1), torch.tensor([4.5, 0.0]))
    with pytest.raises(ValueError, match="band"):
        X8.clamp_to_axes(torch.zeros(2), Y, torch.ones(10), e, 0.5)


def test_config_checks_and_default_is_the_shipped_rule():
    with pytest.raises(ValueError, match="axes"):
        R.ReputationConfig(axes=-1)
    with pytest.raises(ValueError, match="axes_band"):
        R.ReputationConfig(axes_band=0.5)
    assert R.ReputationConfig().axes == 0


def _error(axes: int, rounds: int = 3) -> tuple[float, float]:
    D, K, M = 2000, 10, 3
    cfg = R.ReputationConfig(axes=axes)
    g = torch.Generator().manual_seed(7)
    state, attack, err = R.ReputationState.init(K, D), AdaptiveBias(), []
    for _ in range(rounds):
        base = torch.randn(D, generator=g)
        H = base + torch.randn(K - M, D, generator=g)

        def fn(X, s=state):
            return R.reputation_aggregate(X, torch.arange(K), s, cfg)[0]
        X = torch.cat([H, attack.craft(H[:M], AttackView(D, honest=H, aggregate=fn))])
        agg, state, _ = R.reputation_aggregate(X, torch.arange(K), state, cfg)
        err.append(float((agg - H.mean(0)).norm() / H.mean(0).norm()))
    return sum(err) / len(err), float(state.scores[K - M:].mean())


@pytest.mark.slow
def test_axes_hold_better_against_adaptive_bias_that_knows_them():
    # the search runs against each rule's own aggregate; bench/federated_rule.py, 5 rounds: 0.431 without, 0.260 with
    without, _ = _error(0)
    with_axes, _ = _error(2)
    assert with_axes < 0.8 * without, (without, with_axes)


def test_strategy_runs_the_variant_and_previews_it():
    D, K = 50, 6
    g = torch.Generator().manual_seed(1)
    X = torch.randn(K, D, generator=g) + torch.randn(D, generator=g)
    ids = torch.arange(K)
    plain, axes = ServerAggregator("reputation", K, 1, D), ServerAggregator("reputation-axes", K, 1, D)
    a_plain, a_axes = plain.preview(ids)(X), axes.preview(ids)(X)
    assert not torch.allclose(a_plain, a_axes)
    want, _, _ = R.reputation_aggregate(X, ids, R.ReputationState.init(K, D), R.ReputationConfig(axes=2))
    assert torch.equal(a_axes, want)
    agg, info = axes.step(X, ids)
    assert torch.equal(agg, want) and math.isclose(sum(info["weights"].values()), 1.0, rel_tol=1e-4)
