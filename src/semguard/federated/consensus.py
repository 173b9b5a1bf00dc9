"""Pure consensus helpers of our reputation rule (:mod:`semguard.federated.reputation`), over stacked
client updates ``X [K, D]``: cosines, copies and shared votes, leave-one-out (weighted) coordinate
medians, a weighted median of scalars, robust z-scores, the progress factor and a component swap."""

from __future__ import annotations

import torch
from torch import Tensor

from semguard.federated.aggregate import coordinate_median, weighted_median_of_sorted

__all__ = ["cos_rows", "duplicate_groups", "soft_vote_size", "weighted_median", "robust_z", "lag_factor",
           "set_component", "leave_one_out_weighted_median", "leave_one_out_median"]


def cos_rows(A: Tensor, B: Tensor) -> Tensor:
    """Cosine between matching rows of ``A`` and ``B`` (0 for a zero row)."""
    return (A * B).sum(1) / (A.norm(dim=1) * B.norm(dim=1)).clamp_min(1e-12)


def duplicate_groups(X: Tensor, threshold: float, active: Tensor | None = None) -> Tensor:
    """Group label ``[K]`` of each row: rows linked by a chain of pairwise cosines above ``threshold``
    share the label of their lowest row index (connected components).  Rows outside ``active``
    (bool ``[K]``) stay alone."""
    K = X.shape[0]
    active = torch.ones(K, dtype=torch.bool) if active is None else active
    n = X.norm(dim=1)
    C = (X @ X.T) / (n.unsqueeze(1) * n.unsqueeze(0)).clamp_min(1e-12)
    link = (C > threshold) & active.unsqueeze(0) & active.unsqueeze(1)
    label = list(range(K))
    for i in range(K):  # K is the number of clients in a round: a plain union-find is enough
        for j in range(i + 1, K):
            if link[i, j]:
                a, b = label[i], label[j]
                lo, hi = min(a, b), max(a, b)
                label = [lo if x == hi else x for x in label]
    return torch.tensor(label, dtype=torch.long)


def soft_vote_size(X: Tensor, pool: Tensor) -> Tensor:
    """How many votes row ``k`` shares with the other pooled rows, ``[K]``, at least 1.

    ``1 + sum_{j in pool, j != k} relu((c_kj - tau) / (1 - tau))`` with ``c`` the rows' pairwise
    cosines and ``tau`` the median cosine over the pooled pairs, at least 0: a row as similar to
    another as the round's typical pair adds nothing, an exact copy adds one whole vote.  Rows outside
    ``pool`` (bool ``[K]``), and every row when fewer than three are pooled, get 1.  The caller pools
    only the clients it keeps, so that rows it leaves out cannot move ``tau`` (rows anti-parallel to
    the others would pull it down and make every honest pair count as a shared vote).
    """
    K = X.shape[0]
    pool = torch.as_tensor(pool, dtype=torch.bool).flatten()
    if pool.shape[0] != K:
        raise ValueError(f"pool must have one flag per row ({K}), got {pool.shape[0]}")
    out = torch.ones(K, dtype=X.dtype)
    idx = pool.nonzero().flatten()
    if idx.numel() < 3:
        return out
    P = X[idx]
    n = P.norm(dim=1).clamp_min(1e-12)
    C = (P @ P.T) / (n.unsqueeze(1) * n.unsqueeze(0))
    off = ~torch.eye(idx.numel(), dtype=torch.bool)
    tau = max(float(C[off].median()), 0.0)
    E = torch.relu((C - tau) / max(1.0 - tau, 1e-6)).clamp(max=1.0) * off
    out[idx] = 1.0 + E.sum(1)
    return out


def weighted_median(values: Tensor, weights: Tensor) -> float:
    """The lower weighted median: the smallest value whose cumulative weight (values sorted
    ascending) reaches half the total.  ``weights`` non-negative with a positive sum."""
    v, w = values.flatten(), weights.flatten().to(values.dtype)
    if v.shape != w.shape or v.numel() == 0 or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"weighted_median needs matching values and non-negative weights with a positive sum, "
                         f"got {v.tolist()} and {w.tolist()}")
    order = v.argsort(stable=True)
    cum = w[order].cumsum(0)
    i = int(torch.searchsorted(cum, 0.5 * cum[-1]))
    return float(v[order][min(i, v.numel() - 1)])


def robust_z(values: Tensor, pool: Tensor, floor: float = 1e-12) -> Tensor:
    """``(v - median) / (1.4826 MAD)`` with median and MAD over ``values[pool]`` (the MAD at least ``floor``)."""
    ref = values[pool] if int(pool.sum()) > 0 else values
    med = ref.median()
    mad = (ref - med).abs().median() * 1.4826
    return (values - med) / mad.clamp_min(floor)


def lag_factor(lag: Tensor, hi: float, lo: float) -> Tensor:
    """1 for ``lag >= hi``, 0 for ``lag <= lo``, linear between (``lo < hi``)."""
    return ((lag - lo) / (hi - lo)).clamp(0.0, 1.0)


def set_component(v: Tensor, u: Tensor, value: float) -> Tensor:
    """``v`` with its component along the unit vector ``u`` replaced by ``value``: ``v + (value - v.u) u``."""
    return v + (value - float(v @ u)) * u


def leave_one_out_weighted_median(X: Tensor, pool: Tensor, w: Tensor) -> Tensor:
    """Row ``k``: :func:`weighted_coordinate_median` of the rows in ``pool`` other than ``k`` with weights
    ``w``, ``[K, D]``; rows outside the pool get the pool's.  With fewer than two pooled rows every row
    gets the weighted median of all the others (as :func:`leave_one_out_median`).  One sort of the
    columns serves every row: leaving row ``k`` out sets its weight to 0."""
    K = X.shape[0]
    pool = torch.as_tensor(pool, dtype=torch.bool).flatten()
    if int(pool.sum()) < 2:
        pool = torch.ones(K, dtype=torch.bool)
        if K < 2:
            return X.clone()
    wp = torch.where(pool, torch.as_tensor(w, dtype=X.dtype), torch.zeros(K, dtype=X.dtype))
    S, order = X.T.sort(1)
    out = weighted_median_of_sorted(S, wp[order], float(wp.sum())).expand(K, -1).clone()
    for k in pool.nonzero().flatten().tolist():
        wk = wp.clone()
        wk[k] = 0
        out[k] = weighted_median_of_sorted(S, wk[order], float(wk.sum()))
    return out


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
    P = X[pool].T.contiguous()  # [D, n]: sorting contiguous rows is the fast way
    n = P.shape[1]
    S, order = P.sort(1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n).unsqueeze(0).expand_as(order))
    out = coordinate_median(X[pool]).expand(K, -1).clone()

    def pick(i: int, r: Tensor) -> Tensor:  # element i of the sorted pool without the one at rank r
        return torch.where(r > i, S[:, i], S[:, min(i + 1, n - 1)])

    m = n - 1
    for j, k in enumerate(pool.nonzero().flatten().tolist()):
        r = rank[:, j]
        out[k] = pick(m // 2, r) if m % 2 else 0.5 * (pick(m // 2 - 1, r) + pick(m // 2, r))
    return out
