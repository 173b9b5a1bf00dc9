"""Our rule's progress test (step 7 of federated/reputation.py) and the attacker re-tuned for it."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.federated import aggregate as A
from semguard.federated import reputation as R
from semguard.federated.attacks import AdaptiveBias, AttackView


def test_weighted_median_hand():
    # sorted 1, 2, 3 with cumulative weights 1, 2, 3: the first to reach 1.5 is 2
    assert R.weighted_median(torch.tensor([3.0, 1.0, 2.0]), torch.ones(3)) == 2.0
    # cumulative 1, 2, 3, 8 against half of 8: the heavy value 10 is the median
    assert R.weighted_median(torch.tensor([1.0, 2.0, 3.0, 10.0]), torch.tensor([1.0, 1.0, 1.0, 5.0])) == 10.0
    # an even split: the lower of the two
    assert R.weighted_median(torch.tensor([1.0, 2.0]), torch.ones(2)) == 1.0
    # zero weights do not count
    assert R.weighted_median(torch.tensor([-5.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 1.0])) == 1.0
    with pytest.raises(ValueError, match="non-negative"):
        R.weighted_median(torch.tensor([1.0]), torch.tensor([-1.0]))


def test_robust_z_hand():
    v = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, absolute deviations 2, 1, 0, 1, 97 -> MAD 1, scaled 1.4826
    want = (v - 3.0) / 1.4826
    assert torch.allclose(R.robust_z(v, torch.ones(5, dtype=torch.bool)), want)
    # the statistics come from the pool only: pool {1, 2, 3} -> median 2, MAD 1
    pool = torch.tensor([True, True, True, False, False])
    assert torch.allclose(R.robust_z(v, pool), (v - 2.0) / 1.4826)


def test_lag_factor_and_set_component_hand():
    f = R.lag_factor(torch.tensor([-4.0, -3.0, -2.25, -1.5, 0.0]), hi=-1.5, lo=-3.0)
    assert f.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert R.set_component(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]), 5.0).tolist() == [5.0, 2.0]
    # v.u = 0.6 + 1.6 = 2.2; v - 2.2 u = (1 - 1.32, 2 - 1.76)
    out = R.set_component(torch.tensor([1.0, 2.0]), torch.tensor([0.6, 0.8]), 0.0)
    assert torch.allclose(out, torch.tensor([-0.32, 0.24]), atol=1e-6)
    with pytest.raises(ValueError, match="lag_lo"):
        R.ReputationConfig(lag_hi=-3.0, lag_lo=-1.0)


def _round(g, base, k_honest=7, d=2000):
    """Non-IID-like honest updates: each its own scale of the common direction plus noise twice as long."""
    scale = 0.9 + 0.2 * torch.rand(k_honest, 1, generator=g)
    return scale * base + 2.0 * torch.randn(k_honest, d, generator=g) / math.sqrt(d)


def _biased_run(cfg: R.ReputationConfig, rounds: int = 4, bias: float = 0.25):
    """3 attackers send their own honest-looking update minus ``bias`` x the honest mean, every round."""
    g = torch.Generator().manual_seed(21)
    d = 2000
    base = torch.randn(d, generator=g)
    base = base / base.norm()
    state = R.ReputationState.init(10, d)
    progress = []
    for _ in range(rounds):
        H = _round(g, base)
        own = _round(g, base, 3)
        X = torch.cat([H, own - bias * H.mean(0)])
        agg, state, info = R.reputation_aggregate(X, torch.arange(10), state, cfg)
        progress.append(float(agg @ H.mean(0) / H.mean(0).norm() ** 2))
    return state, info, progress


def test_consistent_bias_of_half_the_mean_is_left_out_within_four_rounds():
    # without the progress test the attackers keep weight every round (their cosine to the median stays positive)
    off, off_info, prog_off = _biased_run(R.ReputationConfig(lag_hi=-1e6 + 1, lag_lo=-1e6, directional=False),
                                          bias=0.5)
    assert (off_info.weights[7:] > 0).all()
    # with it, after 4 rounds every attacker is below every honest client and left out: each round's z-score is
    # about -3 to -5 and the lag (0.4 z + 0.6 lag) falls under -3 = lag_lo, while honest lags stay above -1.5
    on, info, prog_on = _biased_run(R.ReputationConfig(), bias=0.5)
    assert on.scores[7:].max() < on.scores[:7].min()
    assert (info.weights[7:] == 0).all()
    assert (on.lag[7:] < -3.0).all() and (on.lag[:7] > -1.5).all()
    # and the aggregate moves further along the honest mean than without the test
    assert prog_on[-1] > 0.95 and prog_on[-1] > prog_off[-1] + 0.05


def test_a_quarter_of_the_mean_is_only_penalised():
    # the limit of the test: a bias of a quarter of the mean is about 2 robust z (the attackers' own third of the
    # pool widens the MAD), so after 4 rounds the lags sit near -1.5 to -2 and the attackers lose some reputation
    # but keep weight
    on, info, _ = _biased_run(R.ReputationConfig(), bias=0.25)
    assert on.scores[7:].max() < on.scores[:7].min()
    assert (info.weights[7:] > 0).all() and (on.lag[7:] > -3.0).all()


def _shorter_along_the_consensus(g, shrink: float, d: int = 2000):
    """7 honest ``s base + noise`` (``s`` in [0.9, 1.1], noise norm 0.3) and 3 attackers ``shrink x base`` (own
    noise): full cosine with the consensus, so step 4 scores them as honest."""
    base = torch.randn(d, generator=g)
    base = base / base.norm()
    s = 0.9 + 0.2 * torch.rand(7, 1, generator=g)
    H = s * base + 0.3 * torch.randn(7, d, generator=g) / math.sqrt(d)
    M = shrink * base + shrink * 0.3 * torch.randn(3, d, generator=g) / math.sqrt(d)
    return torch.cat([H, M])


def test_directional_step_bounds_the_bias_even_at_full_weight():
    # the progress lag switched off, so the attackers keep full weight (one tenth each); without the directional
    # step centered clipping lets them pull the aggregate's component along u below every honest client's,
    # with it the component is the weighted median of the p_k, inside the honest range
    X = _shorter_along_the_consensus(torch.Generator().manual_seed(22), 0.3)
    Xc = A.clip_norm(X, X.norm(dim=1).median())
    centre = A.coordinate_median(Xc)
    u = centre / centre.norm()
    p = Xc[:7] @ u
    comp = {}
    for directional in (True, False):
        cfg = R.ReputationConfig(lag_hi=-1e6 + 1, lag_lo=-1e6, directional=directional)
        agg, _, info = R.reputation_aggregate(X, torch.arange(10), R.ReputationState.init(10, 2000), cfg)
        assert torch.allclose(info.weights[7:], torch.full((3,), 0.1), atol=2e-3)
        comp[directional] = float(agg @ u)
    assert float(p.min()) - 1e-6 <= comp[True] <= float(p.max()) + 1e-6
    assert comp[False] < float(p.min()) - 0.1
    # with the defaults the progress test leaves them out in the first round (z about -10: lag 0.4 z < -3)
    _, st, info = R.reputation_aggregate(X, torch.arange(10), R.ReputationState.init(10, 2000))
    assert (info.weights[7:] == 0).all() and (st.lag[7:] < -3.0).all()


def test_adaptive_bias_searches_and_keeps_its_secret_direction():
    g = torch.Generator().manual_seed(23)
    H = torch.randn(7, 50, generator=g) + 1.0
    B = torch.randn(3, 50, generator=g) + 1.0
    atk = AdaptiveBias(max_gamma=1.0)
    # logspace(-1.5, 1, 8) has exponents -1.5 + 2.5 k / 7; those <= 0 are k = 0 .. 4: five values
    assert max(atk.grid) <= 1.0 and len(atk.grid) == 5
    v = atk.secret(50)
    assert torch.equal(v, AdaptiveBias(max_gamma=1.0).secret(50)) and abs(float(v.norm()) - 1) < 1e-6
    # against FedAvg the largest allowed shift wins; the result is one of the searched candidates
    out = atk.craft(B, AttackView(50, honest=H, aggregate=A.fedavg))
    mu = H.mean(0)
    shift = (out - B) if torch.allclose((out - B)[0], (out - B)[1], atol=1e-5) else out - H[:3]
    assert torch.allclose(shift.norm(dim=1), torch.full((3,), max(atk.grid) * float(mu.norm())), rtol=1e-4)
    with pytest.raises(ValueError, match="max_gamma"):
        AdaptiveBias(max_gamma=0.001)
