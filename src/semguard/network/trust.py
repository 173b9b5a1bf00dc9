"""Reputation and consistency checks for trust-weighted fusion (pure functions, explicit state).

Reputation is an exponential moving average of how often an agent agrees with a robust reference
decision (the coordinate-wise median's); an agent whose reputation falls under a threshold gets
weight 0.  The replay check compares an agent's received symbols with its own recent history: a
replayed block differs from an old one by channel noise only, while a fresh view differs by far
more.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["update_reputation", "trust_weights", "replay_statistic", "flag_agents"]


def update_reputation(rep: Tensor, agreement: Tensor, *, decay: float = 0.7) -> Tensor:
    """``rep <- decay * rep + (1 - decay) * agreement``; both ``[N]`` in [0, 1]."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"reputation decay must be in [0, 1), got {decay}")
    if rep.shape != agreement.shape:
        raise ValueError(f"reputation {tuple(rep.shape)} and agreement {tuple(agreement.shape)} differ")
    return decay * rep + (1.0 - decay) * agreement


def trust_weights(rep: Tensor, *, threshold: float = 0.5) -> Tensor:
    """Weights ``rep`` where ``rep >= threshold``, else 0; all-equal weights if nobody qualifies."""
    w = torch.where(rep >= threshold, rep, torch.zeros_like(rep))
    return w if w.sum() > 0 else torch.ones_like(rep)


def replay_statistic(y: Tensor, history: Tensor, noise_var: Tensor) -> Tensor:
    """Smallest ``||y - y_old||^2 / (2 n N0)`` over the history: ~1 for a replay, >> 1 for a new view.

    ``y [N, n]`` complex received (zero-forced) symbols this round, ``history [H, N, n]`` earlier
    rounds' (H >= 1), ``noise_var [N]`` the per-symbol noise power after equalisation.
    """
    if history.dim() != 3 or history.shape[1:] != y.shape:
        raise ValueError(f"history must be [H, {tuple(y.shape)}], got {tuple(history.shape)}")
    d2 = (y.unsqueeze(0) - history).abs().square().sum(-1)        # [H, N]
    return d2.min(0).values / (2 * y.shape[-1] * noise_var)


def flag_agents(rep: Tensor, replay: Tensor | None = None, *, threshold: float = 0.5,
                replay_threshold: float = 3.0) -> Tensor:
    """Bool ``[N]``: reputation under ``threshold`` or a replay statistic under ``replay_threshold``."""
    bad = rep < threshold
    if replay is not None:
        bad = bad | (replay < replay_threshold)
    return bad
