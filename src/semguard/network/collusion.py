"""Leave-one-out residuals and the collusion signature of Byzantine agents (pure functions).

The decision-gap score of :mod:`.trust` sees only an agent's *decision*, and a rule-aware attacker
keeps it clean: it flips only objects on which the honest agents are split, where its unanimous
vote also moves the plurality reference, so it "agrees" with the reference it has moved.  What it
cannot hide is that the ``f`` attackers move *together*: to move a median they must push the same
objects toward the same class, round after round, while honest agents err independently (each has
its own occlusion, sensor noise and channel).  The signature:

* :func:`centred_residual`: each agent's class probabilities minus the coordinate-wise median of
  the *other* trusted agents' (a consensus the agent cannot move), less the mean of that residual
  over the trusted agents (what every agent shares on a hard object: all less sure than the median);
* :func:`gram_update`: the running inner products ``G_ij = sum_b <res_ib, res_jb>`` over every
  object seen (the node's state);
* :func:`collusion_score`: the ``k``-th largest cosine ``G_ij / sqrt(G_ii G_jj)`` of agent ``i``
  with another agent.  Honest pairs tend to 0 as objects accumulate; with ``k = f - 1`` each of ``f``
  colluders has ``k`` aligned partners.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["K1_FACTOR", "centred_residual", "collusion_score", "gram_update", "loo_residual", "threshold"]

#: at k = 1 the statistic is the single most aligned partner, and some honest pairs share a viewpoint:
#: on honest-only runs (N = 10, 8 seeds x 12 rounds x 20 objects) ``sqrt(n)`` times the cosine reached
#: 6.0 at k = 1 and 2.55 at k = 2, so the k = 1 threshold is this factor times the base one
K1_FACTOR = 7.0 / 3.0


def threshold(base: float, k: int) -> float:
    """The strong-round threshold on ``sqrt(n) x`` :func:`collusion_score` for the ``k``-th partner."""
    return base * K1_FACTOR if k == 1 else base


def _median(s: Tensor) -> Tensor:
    """Median over dim 1 of values already sorted along it (the mean of the two middle ones when even)."""
    m = s.shape[1]
    return s[:, m // 2] if m % 2 else 0.5 * (s[:, m // 2 - 1] + s[:, m // 2])


def loo_residual(p: Tensor, include: Tensor | None = None) -> Tensor:
    """``p [B, N, C]`` -> ``p_i - median_{j != i, include_j} p_j`` per object and class, ``[B, N, C]``:
    the coordinate-wise median of the *other* included agents (all by default; the mean of the two
    middle values when their number is even).  Every agent gets a residual, included or not."""
    n = p.shape[1]
    include = torch.ones(n, dtype=torch.bool) if include is None else include
    if p.dim() != 3 or include.shape != (n,) or int(include.sum()) < 2:
        raise ValueError(f"leave-one-out residuals need probabilities [B, N, C] and >= 2 included agents, got "
                         f"{tuple(p.shape)} with {int(include.sum())} included")
    out = torch.empty_like(p)
    for i in range(n):
        others = include.clone()
        others[i] = False
        out[:, i] = p[:, i] - _median(p[:, others].sort(dim=1).values)
    return out


def centred_residual(p: Tensor, include: Tensor | None = None) -> Tensor:
    """:func:`loo_residual` less its mean over the included agents, per object and class.  The
    included agents are the ones the node still trusts: agents already excluded (a replaying or
    a loud attacker) would otherwise put their own deviation into every honest residual, through
    the consensus and through the centring, and make the honest agents look aligned."""
    include = torch.ones(p.shape[1], dtype=torch.bool) if include is None else include
    r = loo_residual(p, include)
    return r - r[:, include].mean(1, keepdim=True)


def gram_update(gram: Tensor, res: Tensor) -> Tensor:
    """``gram [N, N] + sum_b res_b res_b^T`` with ``res [B, N, C]`` flattened over objects and classes."""
    flat = res.transpose(0, 1).reshape(res.shape[1], -1).to(gram.dtype)
    return gram + flat @ flat.T


def collusion_score(gram: Tensor, k: int, *, eps: float = 1e-12) -> Tensor:
    """``[N]``: the ``k``-th largest cosine ``G_ij / sqrt(G_ii G_jj)`` over ``j != i`` (0 when
    ``k < 1`` or there are fewer than ``k + 1`` agents)."""
    n = gram.shape[0]
    if k < 1 or n < k + 1:
        return torch.zeros(n, dtype=gram.dtype)
    d = gram.diagonal().clamp_min(eps)
    cos = gram / (d[:, None] * d[None, :]).sqrt()
    cos = cos.masked_fill(torch.eye(n, dtype=torch.bool), -float("inf"))
    return cos.topk(k, dim=1).values[:, -1]
