"""The server's root update as a trusted reference for our reputation rule (``reputation-root``).

The FLTrust protocol change (Cao et al., NDSS 2021), stated openly: the server holds a small clean
data set (the same root set :func:`semguard.federated.aggregate.fltrust` uses) and trains on it
every round, giving ``g0 [D]``, an update no client can influence.  Our rule uses it in three
places (:func:`semguard.federated.reputation.reputation_aggregate` with ``root=g0``):

- **Trust gate** (:func:`root_trust`): each client's round score is multiplied by its cosine with
  ``g0`` (zero when negative), relative to the median client's and capped at 1.  Non-IID honest
  clients agree with an IID root set less than with each other, so the gate is relative: a client
  as aligned with the root as the median one keeps its full score.
- **Progress direction**: ``u = g0 / ||g0||`` instead of the robust centre's direction, which the
  attackers' third of the pool can pull.  The progress z-scores and the weighted median that sets
  the aggregate's component along ``u`` are then taken along a direction the attackers cannot
  choose.
- **Radius** (:func:`root_radius`): the centered-clipping radius is at most ``mult x ||g0||``, so
  one accepted update moves the aggregate at most its weight times the length of the server's own
  step, not a multiple of the (attacker-widened) spread of the clients.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["root_cos", "root_trust", "root_radius", "check_root"]


def check_root(root: Tensor, dim: int) -> None:
    """Raise ``ValueError`` unless ``root`` is a finite floating ``[dim]`` vector that is not zero."""
    if not isinstance(root, Tensor) or root.dim() != 1 or root.shape[0] != dim or not root.is_floating_point():
        raise ValueError(f"root update must be a float tensor [{dim}], got {getattr(root, 'shape', type(root))}")
    if not torch.isfinite(root).all() or float(root.norm()) == 0.0:
        raise ValueError("root update must be finite and non-zero")


def root_cos(X: Tensor, root: Tensor) -> Tensor:
    """Cosine of each row of ``X [K, D]`` with ``root [D]`` (0 for a zero row)."""
    g = root.to(X.dtype)
    return (X @ g) / (X.norm(dim=1) * g.norm()).clamp_min(1e-12)


def root_trust(X: Tensor, root: Tensor, pool: Tensor) -> Tensor:
    """``min(1, relu(c_k) / m)``: ``c_k`` the cosine of row ``k`` with ``root``, ``m`` the median of the
    positive ``c`` over the rows in ``pool`` (bool ``[K]``).  All zeros when no pooled row is positive."""
    c = torch.relu(root_cos(X, root))
    ref = c[pool & (c > 0)]
    if ref.numel() == 0:
        return torch.zeros_like(c)
    return (c / ref.median()).clamp(max=1.0)


def root_radius(root: Tensor, mult: float) -> float:
    """The largest centered-clipping radius the root allows: ``mult x ||root||`` (``inf`` for ``mult = inf``)."""
    if not mult > 0:
        raise ValueError(f"root radius multiple must be > 0, got {mult}")
    return math.inf if math.isinf(mult) else mult * float(root.norm())
