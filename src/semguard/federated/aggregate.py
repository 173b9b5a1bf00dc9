"""Aggregation rules as pure functions over stacked client updates ``X [K, D]``.

Every rule takes the ``K`` client updates (model deltas, one flattened vector per row, float32 or
float64) and returns the aggregate ``[D]``; rules that select clients also return the selected
row indices.  Nothing here keeps hidden state: the one stateful rule (:func:`reputation_aggregate`)
takes its :class:`ReputationState` in and hands the next one back, so an attacker can evaluate it
without changing it; it lives in :mod:`semguard.federated.reputation`.

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
import torch
from torch import Tensor

__all__ = [
    "check_updates", "fedavg", "pairwise_sq_dists", "krum_scores", "krum", "coordinate_median",
    "trimmed_mean", "bulyan", "clip_norm", "centered_clipping", "fltrust", "sorted_columns",
    "weighted_coordinate_median", "weighted_median_of_sorted",
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


def sorted_columns(X: Tensor) -> Tensor:
    """``X.sort(0).values`` as a ``[D, K]`` tensor: each coordinate's K values sorted, stored contiguously.

    Later steps (picking ranks, scattering them) then run along contiguous rows, which is what
    keeps the reputation rule's leave-one-out medians cheap at half a million parameters."""
    return X.T.contiguous().sort(1).values


def coordinate_median(X: Tensor) -> Tensor:
    """Coordinate-wise median; for an even ``K`` the mean of the two middle values (as NumPy)."""
    check_updates(X)
    s = sorted_columns(X)
    K = X.shape[0]
    return s[:, K // 2].clone() if K % 2 else 0.5 * (s[:, K // 2 - 1] + s[:, K // 2])


def weighted_coordinate_median(X: Tensor, w: Tensor) -> Tensor:
    """Coordinate-wise weighted median of the rows of ``X [n, D]`` with weights ``w [n]`` (non-negative,
    positive sum), ``[D]``: the midpoint of the lower and the upper weighted median, so equal weights give
    :func:`coordinate_median` (the middle value, or the mean of the two middle ones).  A row of weight 0
    is never picked."""
    w = torch.as_tensor(w, dtype=X.dtype).flatten()
    if X.dim() != 2 or w.shape[0] != X.shape[0] or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"weighted_coordinate_median needs [n, D] rows and n non-negative weights with a positive "
                         f"sum, got {tuple(X.shape)} and {w.tolist()}")
    S, order = X.T.sort(1)
    return weighted_median_of_sorted(S, w[order], float(w.sum()))


def weighted_median_of_sorted(S: Tensor, W: Tensor, total: float) -> Tensor:
    """Per row of ``S [D, n]`` (each row's values sorted ascending, ``W [D, n]`` their weights in that
    order, ``total`` the weights' sum): the midpoint of the lower and the upper weighted median, ``[D]``."""
    half = 0.5 * total * (1 - 1e-6)
    n = S.shape[1]
    lo = (W.cumsum(1) < half).sum(1, keepdim=True).clamp(max=n - 1)
    hi = (n - 1 - (W.flip(1).cumsum(1) < half).sum(1, keepdim=True)).clamp(min=0)
    return 0.5 * (S.gather(1, lo) + S.gather(1, hi)).squeeze(1)


def trimmed_mean(X: Tensor, beta: float) -> Tensor:
    """Coordinate-wise mean after dropping ``int(beta * K)`` smallest and largest values (``0 <= beta < 0.5``)."""
    check_updates(X)
    if not 0.0 <= beta < 0.5:
        raise ValueError(f"trimmed mean beta must be in [0, 0.5), got {beta}")
    K = X.shape[0]
    c = int(beta * K)
    return sorted_columns(X)[:, c:K - c].mean(1)


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


def centered_clipping(X: Tensor, center: Tensor, tau: float, iters: int = 1, weights: Tensor | None = None
                      ) -> Tensor:
    """``v <- v + sum_k w_k clip_tau(x_k - v)`` repeated ``iters`` times from ``v = center``
    (``w``: ``weights`` normalised to sum 1, uniform by default).

    ``center`` is the caller's state (the previous aggregate, i.e. the server momentum), or a
    robust centre of this round's updates.
    """
    check_updates(X)
    if tau <= 0 or iters < 1:
        raise ValueError(f"centered clipping needs tau > 0 and iters >= 1, got tau={tau}, iters={iters}")
    if center.shape != X.shape[1:]:
        raise ValueError(f"center must have shape {tuple(X.shape[1:])}, got {tuple(center.shape)}")
    w = _weights(X.shape[0], weights, X)
    v = center.to(X.dtype).clone()
    for _ in range(iters):
        v = v + w @ clip_norm(X - v, tau)
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
