"""Aggregation rules as pure functions over stacked client updates ``X [K, D]``.

Every rule takes the ``K`` client updates (model deltas, one flattened vector per row, float32 or
float64) and returns the aggregate ``[D]``; rules that select clients also return the selected
row indices.  Nothing here keeps hidden state: the one stateful rule (:func:`reputation_aggregate`)
takes its :class:`ReputationState` in and hands the next one back, so an attacker can evaluate it
without changing it.

The baselines follow Flower's ``flwr.server.strategy.aggregate`` (the tests compare them):

- FedAvg: McMahan et al., AISTATS 2017 (weighted by local example counts).
- Krum / MultiKrum: Blanchard et al., NeurIPS 2017 (score over the ``K - f - 2`` nearest).
- Coordinate-wise median and trimmed mean: Yin et al., ICML 2018.
- Bulyan: El Mhamdi et al., ICML 2018 (Krum selection, then a coordinate-wise trimmed mean
  around the median).

Recent robust rules Flower lacks:

- Centered clipping: Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust
  Optimization", ICML 2021.
- FLTrust: Cao et al., NDSS 2021 (the server trains on a small root set each round; that is a
  protocol change, which is why Flower does not ship it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

__all__ = [
    "check_updates", "fedavg", "pairwise_sq_dists", "krum_scores", "krum", "coordinate_median",
    "trimmed_mean", "bulyan", "clip_norm", "centered_clipping", "fltrust", "ReputationState",
    "ReputationConfig", "reputation_aggregate", "leave_one_out_median",
]


def check_updates(X: Tensor) -> None:
    """Raise ``ValueError`` unless ``X`` is a finite floating ``[K >= 1, D >= 1]`` tensor."""
    if not isinstance(X, Tensor) or X.dim() != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"updates must be a tensor [clients, params], got {getattr(X, 'shape', type(X))}")
    if not X.is_floating_point():
        raise ValueError(f"updates must be floating point, got {X.dtype}")
    if not torch.isfinite(X).all():
        bad = (~torch.isfinite(X)).any(1).nonzero().flatten().tolist()
        raise ValueError(f"updates of rows {bad} contain NaN or Inf")


def _weights(K: int, weights: Tensor | None, X: Tensor) -> Tensor:
    if weights is None:
        return torch.full((K,), 1.0 / K, dtype=X.dtype, device=X.device)
    w = torch.as_tensor(weights, dtype=X.dtype, device=X.device).flatten()
    if w.shape[0] != K or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"weights must be {K} non-negative numbers with a positive sum, got {w.tolist()}")
    return w / w.sum()


def fedavg(X: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted mean ``sum_k w_k x_k / sum_k w_k`` (``weights``: e.g. local example counts)."""
    check_updates(X)
    return _weights(X.shape[0], weights, X) @ X


def pairwise_sq_dists(X: Tensor) -> Tensor:
    """Squared Euclidean distances ``[K, K]`` (exact differences, not the Gram trick)."""
    return ((X.unsqueeze(1) - X.unsqueeze(0)) ** 2).sum(-1) if X.shape[1] <= 4096 else \
        torch.stack([((X - x) ** 2).sum(1) for x in X])


def krum_scores(X: Tensor, f: int) -> Tensor:
    """Krum score of each row: the sum of its squared distances to its ``max(1, K - f - 2)`` nearest others."""
    K = X.shape[0]
    if K < 2:
        raise ValueError(f"Krum needs at least 2 clients, got {K}")
    d = pairwise_sq_dists(X)
    d = d + torch.diag(torch.full((K,), math.inf, dtype=d.dtype, device=d.device))
    n_closest = min(max(1, K - f - 2), K - 1)
    return d.sort(1).values[:, :n_closest].sum(1)


def krum(X: Tensor, f: int, m: int = 1, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Krum (``m = 1``: the row of lowest score) or MultiKrum (weighted mean of the ``m`` lowest).

    ``f``: assumed number of Byzantine clients.  Returns ``(aggregate [D], selected rows [m])``.
    """
    check_updates(X)
    K = X.shape[0]
    if not 0 <= f < K or not 1 <= m <= K:
        raise ValueError(f"Krum needs 0 <= f < K and 1 <= m <= K, got f={f}, m={m}, K={K}")
    sel = krum_scores(X, f).argsort()[:m]
    if m == 1:
        return X[sel[0]].clone(), sel
    w = None if weights is None else torch.as_tensor(weights, dtype=X.dtype)[sel]
    return fedavg(X[sel], w), sel


def coordinate_median(X: Tensor) -> Tensor:
    """Coordinate-wise median; for an even ``K`` the mean of the two middle values (as NumPy)."""
    check_updates(X)
    s = X.sort(0).values
    K = X.shape[0]
    return s[K // 2].clone() if K % 2 else 0.5 * (s[K // 2 - 1] + s[K // 2])


def trimmed_mean(X: Tensor, beta: float) -> Tensor:
    """Coordinate-wise mean after dropping ``int(beta * K)`` smallest and largest values (``0 <= beta < 0.5``)."""
    check_updates(X)
    if not 0.0 <= beta < 0.5:
        raise ValueError(f"trimmed mean beta must be in [0, 0.5), got {beta}")
    K = X.shape[0]
    c = int(beta * K)
    return X.sort(0).values[c:K - c].mean(0)


def bulyan(X: Tensor, f: int) -> tuple[Tensor, Tensor]:
    """Bulyan: ``theta = K - 2f`` rows chosen by repeated Krum, then per coordinate the mean of the
    ``beta = theta - 2f`` values closest to their median.  Needs ``K >= 4f + 3``.

    Returns ``(aggregate, selected rows [theta])``.
    """
    check_updates(X)
    K = X.shape[0]
    if f < 0 or K < 4 * f + 3:
        raise ValueError(f"Bulyan needs K >= 4f + 3 clients, got K={K}, f={f}")
    remaining = list(range(K))
    chosen: list[int] = []
    for _ in range(K - 2 * f):
        _, sel = krum(X[remaining], f)
        chosen.append(remaining.pop(int(sel[0])))
    S = X[chosen]
    med = coordinate_median(S)
    beta = len(chosen) - 2 * f
    idx = (S - med).abs().argsort(dim=0, stable=True)[:beta]
    return S.gather(0, idx).mean(0), torch.tensor(chosen)


def clip_norm(X: Tensor, tau: float | Tensor) -> Tensor:
    """Each row scaled to at most L2 norm ``tau`` (rows already shorter unchanged)."""
    n = X.norm(dim=1, keepdim=True)
    return X * torch.clamp(torch.as_tensor(tau, dtype=X.dtype) / n.clamp_min(1e-12), max=1.0)


def centered_clipping(X: Tensor, center: Tensor, tau: float, iters: int = 1) -> Tensor:
    """``v <- v + mean_k clip_tau(x_k - v)`` repeated ``iters`` times from ``v = center``.

    ``center`` is the caller's state (the previous aggregate, i.e. the server momentum).
    """
    check_updates(X)
    if tau <= 0 or iters < 1:
        raise ValueError(f"centered clipping needs tau > 0 and iters >= 1, got tau={tau}, iters={iters}")
    if center.shape != X.shape[1:]:
        raise ValueError(f"center must have shape {tuple(X.shape[1:])}, got {tuple(center.shape)}")
    v = center.to(X.dtype).clone()
    for _ in range(iters):
        v = v + clip_norm(X - v, tau).mean(0)
    return v


def fltrust(X: Tensor, root_update: Tensor) -> tuple[Tensor, Tensor]:
    """FLTrust: trust ``ts_k = relu(cos(x_k, g0))``; each ``x_k`` rescaled to ``||g0||``; trust-weighted mean.

    ``root_update``: the server's own update ``g0 [D]`` on its root data set.  Returns
    ``(aggregate, trust scores [K])``; the zero vector when no client has positive trust.
    """
    check_updates(X)
    g0 = root_update.to(X.dtype)
    g0n = g0.norm()
    xn = X.norm(dim=1).clamp_min(1e-12)
    ts = torch.relu((X @ g0) / (xn * g0n.clamp_min(1e-12)))
    if float(ts.sum()) == 0.0:
        return torch.zeros_like(g0), ts
    scaled = X * (g0n / xn).unsqueeze(1)
    return (ts @ scaled) / ts.sum(), ts


@dataclass(frozen=True)
class ReputationConfig:
    """Hyper-parameters of :func:`reputation_aggregate`.

    decay: weight of the old reputation in ``r <- decay r + (1 - decay) s``.
    history_weight: share of the own-history agreement in a round score (the rest: consensus).
    clip_mult: updates clipped to ``clip_mult x`` the median update norm.
    zero_tol: an update shorter than ``zero_tol x`` the median norm is a free ride (global model returned).
    repeat_cos: cosine to the client's own previous update above which it is a stale replay.
    duplicate_cos: cosine to another client's update above which both are flagged as colluding copies.
    noise_z: a client whose update has ``|cos|`` below ``noise_z / sqrt(D)`` with the summed directions of all
        other clients (a few standard deviations of the cosine of independent random directions in ``D``
        dimensions), and below a quarter of the median client's, is sending noise.
    min_weight: clients whose reputation falls below ``min_weight x`` the best are left out.
    """

    decay: float = 0.5
    history_weight: float = 0.3
    clip_mult: float = 1.0
    zero_tol: float = 1e-3
    repeat_cos: float = 0.999
    duplicate_cos: float = 0.99
    noise_z: float = 4.0
    min_weight: float = 0.2


@dataclass(frozen=True)
class ReputationState:
    """What the reputation aggregator remembers, per client id (``n_clients`` of them).

    scores: reputation in [0, 1] ``[n]``; history: exponential average of each client's clipped
    updates ``[n, D]`` (zeros before its first round); last: its previous raw update ``[n, D]``;
    seen: rounds each client took part in ``[n]``; free_rides: rounds flagged as a free ride ``[n]``;
    last_aggregate: the previous round's aggregate ``[D]`` (a client replaying it is a stale free ride).
    """

    scores: Tensor
    history: Tensor
    last: Tensor
    seen: Tensor
    free_rides: Tensor
    last_aggregate: Tensor | None = None
    rounds: int = 0

    @staticmethod
    def init(n_clients: int, dim: int, dtype: torch.dtype = torch.float32) -> "ReputationState":
        z = torch.zeros(n_clients, dim, dtype=dtype)
        return ReputationState(torch.ones(n_clients, dtype=dtype), z, z.clone(),
                               torch.zeros(n_clients, dtype=torch.long), torch.zeros(n_clients, dtype=torch.long))


@dataclass(frozen=True)
class ReputationInfo:
    """Per-round diagnostics of :func:`reputation_aggregate` (rows follow the input ``ids``)."""

    weights: Tensor
    round_score: Tensor
    free_rider: Tensor  # bool
    duplicate: Tensor  # bool
    reasons: list[str] = field(default_factory=list)


def leave_one_out_median(X: Tensor, pool: Tensor) -> Tensor:
    """Row ``k``: the coordinate median of the rows in ``pool`` (bool ``[K]``) other than ``k``, ``[K, D]``.

    One sort of the pool; a pooled row's median skips its own rank.  Rows outside the pool get the
    pool's median; with fewer than two pooled rows every row gets the median of all the others.
    """
    K = X.shape[0]
    if int(pool.sum()) < 2:
        pool = torch.ones(K, dtype=torch.bool)
        if K < 2:
            return X.clone()
    P = X[pool]
    n = P.shape[0]
    order = P.argsort(0)
    S = P.gather(0, order)
    rank = torch.empty_like(order)
    rank.scatter_(0, order, torch.arange(n).unsqueeze(1).expand_as(order))
    out = coordinate_median(P).expand(K, -1).clone()

    def pick(i: int, r: Tensor) -> Tensor:  # element i of the sorted pool without the one at rank r
        return torch.where(r > i, S[i], S[min(i + 1, n - 1)])

    m = n - 1
    for j, k in enumerate(pool.nonzero().flatten().tolist()):
        r = rank[j]
        out[k] = pick(m // 2, r) if m % 2 else 0.5 * (pick(m // 2 - 1, r) + pick(m // 2, r))
    return out


def _cos_rows(A: Tensor, B: Tensor) -> Tensor:
    return (A * B).sum(1) / (A.norm(dim=1) * B.norm(dim=1)).clamp_min(1e-12)


def reputation_aggregate(X: Tensor, ids: Tensor, state: ReputationState,
                         cfg: ReputationConfig = ReputationConfig()
                         ) -> tuple[Tensor, ReputationState, ReputationInfo]:
    """Our rule: a reputation learnt over rounds, from agreement with a robust consensus and with
    each client's own history, with norm clipping and free-rider detection.

    Per round: (1) flag free rides: a near-zero update (the global model sent back), a replay of the
    client's previous update or of the last aggregate (stale), or noise (``|cos|`` below ``noise_z / sqrt(D)`` with the other clients' summed directions);
    flag colluding copies (cosine above ``duplicate_cos`` to another client).  (2) Clip every update
    to ``clip_mult x`` the median norm.  (3) Consensus for client ``k``: the coordinate median of the
    clipped updates of the other unflagged clients (leave-one-out).  (4) Round score ``s_k = relu(cos(x_k, consensus_k)) ((1 - h) +
    h relu(cos(x_k, history_k)))`` divided by the median score (capped at 1); flagged clients score 0.
    (5) ``r_k <- decay r_k + (1 - decay) s_k``.  (6) Aggregate: the mean of the clipped updates
    weighted by ``r_k`` over clients with ``s_k > 0`` and ``r_k >= min_weight max r``.

    ``ids`` ``[K]``: the client id of each row (index into ``state``).  Returns
    ``(aggregate [D], next state, info)``; ``state`` itself is not modified.
    """
    check_updates(X)
    K, D = X.shape
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if ids.shape[0] != K or ids.unique().shape[0] != K:
        raise ValueError(f"ids must be {K} distinct client ids, got {ids.tolist()}")
    if state.history.shape[1] != D or int(ids.max()) >= state.scores.shape[0] or int(ids.min()) < 0:
        raise ValueError(f"state is for {state.scores.shape[0]} clients x {state.history.shape[1]} params; "
                         f"got ids {ids.tolist()} and {D} params")
    X = X.to(state.history.dtype)
    norms = X.norm(dim=1)
    med_norm = norms.median().clamp_min(1e-12)
    reasons = [""] * K
    zero = norms < cfg.zero_tol * med_norm
    had = state.seen[ids] > 0
    stale = had & (_cos_rows(X, state.last[ids]) > cfg.repeat_cos)
    if state.last_aggregate is not None:
        stale = stale | (_cos_rows(X, state.last_aggregate.to(X.dtype).expand_as(X)) > cfg.repeat_cos)
    if K > 1:
        C = (X @ X.T) / (norms.unsqueeze(1) * norms.unsqueeze(0)).clamp_min(1e-12)
        C.fill_diagonal_(-1.0)
        U = X / norms.unsqueeze(1).clamp_min(1e-12)
        others = U.sum(0, keepdim=True) - U  # the sum of every other client's direction
        c = _cos_rows(X, others).abs()
        # near-orthogonal to everyone, in absolute terms and relative to the typical client
        noise = (c < cfg.noise_z / math.sqrt(D)) & (c < 0.25 * c[~zero].median() if (~zero).any() else c > 0)
        duplicate = C.max(1).values > cfg.duplicate_cos
    else:
        noise = duplicate = torch.zeros(K, dtype=torch.bool)
    free = zero | stale | (noise & ~zero)
    for k in range(K):
        why = [n for n, b in (("zero update", zero[k]), ("stale replay", stale[k]),
                               ("noise", noise[k] and not zero[k]), ("duplicate", duplicate[k])) if b]
        reasons[k] = ", ".join(why)
    flagged = free | duplicate
    Xc = clip_norm(X, cfg.clip_mult * med_norm)
    ok = ~flagged
    # leave-one-out: near-orthogonal non-IID updates all correlate with a median that includes them
    # (a flipped update pulls the median its way), so each client is compared with the others' median
    agree = _cos_rows(Xc, leave_one_out_median(Xc, ok))
    hist = state.history[ids]
    own = torch.where(had & (hist.norm(dim=1) > 0), _cos_rows(Xc, hist), agree)
    # history can lower a score but never lift a client that disagrees with the others
    raw = torch.relu(agree) * ((1 - cfg.history_weight) + cfg.history_weight * torch.relu(own))
    raw = torch.where(flagged, torch.zeros_like(raw), raw)
    pos = raw[raw > 0]
    s = (raw / pos.median()).clamp(max=1.0) if pos.numel() else raw
    r = cfg.decay * state.scores[ids] + (1 - cfg.decay) * s
    keep = (s > 0) & (r >= cfg.min_weight * r.max())
    w = torch.where(keep, r, torch.zeros_like(r))
    agg = (w @ Xc) / w.sum() if float(w.sum()) > 0 else torch.zeros(D, dtype=X.dtype)

    scores, history, last = state.scores.clone(), state.history.clone(), state.last.clone()
    scores[ids] = r
    new_hist = torch.where(had.unsqueeze(1), 0.5 * hist + 0.5 * Xc, Xc)
    history[ids] = torch.where(flagged.unsqueeze(1), hist, new_hist)
    last[ids] = X
    seen = state.seen.clone()
    seen[ids] += 1
    fr = state.free_rides.clone()
    fr[ids] += free.long()
    new = replace(state, scores=scores, history=history, last=last, seen=seen, free_rides=fr,
                  last_aggregate=agg.clone(), rounds=state.rounds + 1)
    return agg, new, ReputationInfo(w / w.sum().clamp_min(1e-12), s, free, duplicate, reasons)
