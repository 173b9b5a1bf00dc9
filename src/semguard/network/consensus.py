"""Gossip consensus over a graph: plain neighbour averaging and W-MSR (pure functions).

Values are ``[n, d]`` (one d-vector per node; W-MSR acts coordinate-wise).  W-MSR (Weighted
Mean-Subsequence-Reduced; LeBlanc et al., IEEE JSAC 2013): each node sorts what its neighbours
sent, drops the ``F`` largest values above its own (all of them when fewer than ``F``) and the
``F`` smallest below its own, and averages the rest with its own value (equal weights).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["average_step", "gossip", "wmsr_step"]


def _check(values: Tensor, adj: np.ndarray) -> torch.Tensor:
    if values.dim() != 2 or values.shape[0] != adj.shape[0]:
        raise ValueError(f"gossip values must be [n={adj.shape[0]}, d], got {tuple(values.shape)}")
    return torch.as_tensor(np.asarray(adj, dtype=bool), device=values.device)


def average_step(values: Tensor, adj: np.ndarray) -> Tensor:
    """One round of ``x_i <- (x_i + sum_{j in N(i)} x_j) / (1 + deg_i)``."""
    a = _check(values, adj).to(values.dtype)
    w = a + torch.eye(a.shape[0], dtype=values.dtype, device=values.device)
    return (w @ values) / w.sum(1, keepdim=True)


def wmsr_step(values: Tensor, adj: np.ndarray, f: int) -> Tensor:
    """One W-MSR round with parameter ``f`` for every node (the caller overwrites Byzantine ones)."""
    if f < 0:
        raise ValueError(f"W-MSR parameter f must be >= 0, got {f}")
    a = _check(values, adj)
    out = torch.empty_like(values)
    for i in range(values.shape[0]):
        nb = values[a[i]]                                     # [k, d]
        own = values[i]
        if nb.shape[0] == 0:
            out[i] = own
            continue
        s = nb.sort(dim=0).values
        k = s.shape[0]
        above = (s > own).sum(0).clamp(max=f)                 # how many to drop at the top
        below = (s < own).sum(0).clamp(max=f)                 # and at the bottom
        idx = torch.arange(k, device=values.device).unsqueeze(1)
        keep = (idx >= below) & (idx < k - above)             # [k, d]
        total = (s * keep).sum(0) + own
        out[i] = total / (keep.sum(0) + 1)
    return out


def gossip(values: Tensor, adj: np.ndarray, rounds: int, *, rule: str = "average", f: int = 0,
           byzantine: Tensor | None = None, byzantine_values: Tensor | None = None) -> Tensor:
    """Run ``rounds`` rounds; returns the trajectory ``[rounds + 1, n, d]``.

    Byzantine nodes (bool ``[n]``) broadcast their row of ``byzantine_values [n, d]`` every round
    instead of following the rule (the other rows are ignored).
    """
    if rule not in ("average", "wmsr"):
        raise ValueError(f"gossip rule must be 'average' or 'wmsr', got {rule!r}")
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    x = values.clone()
    bad = None
    if byzantine is not None:
        bad = byzantine.to(torch.bool)
        x[bad] = byzantine_values[bad]
    traj = [x.clone()]
    for _ in range(rounds):
        x = average_step(x, adj) if rule == "average" else wmsr_step(x, adj, f)
        if bad is not None:
            x[bad] = byzantine_values[bad]
        traj.append(x.clone())
    return torch.stack(traj)
