"""Reputation and consistency checks for trust-weighted fusion (pure functions, explicit state).

Reputation is an asymmetric moving average of how often an agent agrees with a robust reference
decision (the coordinate-wise median's); an agent whose reputation falls under a threshold gets
weight 0.  The replay check compares an agent's received symbols with its own recent history: a
replayed block differs from an old one by channel noise only, while a fresh view differs by far
more (a likelihood-ratio test).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["flag_agents", "replay_statistic", "trust_weights", "update_reputation"]


def update_reputation(rep: Tensor, agreement: Tensor, *, gain: float = 0.1, loss: float = 0.5) -> Tensor:
    """``rep <- rep + rate (agreement - rep)`` with ``rate = gain`` when agreement is above the
    reputation and ``loss`` below it; both ``[N]`` in [0, 1].

    Trust is slow to earn and quick to lose: an agent that behaves only while it is distrusted,
    to attack once trusted again, needs several clean rounds per attack.
    """
    for name, v in (("gain", gain), ("loss", loss)):
        if not 0.0 < v <= 1.0:
            raise ValueError(f"reputation {name} must be in (0, 1], got {v}")
    if rep.shape != agreement.shape:
        raise ValueError(f"reputation {tuple(rep.shape)} and agreement {tuple(agreement.shape)} differ")
    rate = torch.where(agreement > rep, torch.full_like(rep, gain), torch.full_like(rep, loss))
    return rep + rate * (agreement - rep)


def trust_weights(rep: Tensor, *, threshold: float = 0.5) -> Tensor:
    """Weights ``rep`` where ``rep >= threshold``, else 0; all-equal weights if nobody qualifies."""
    w = torch.where(rep >= threshold, rep, torch.zeros_like(rep))
    return w if w.sum() > 0 else torch.ones_like(rep)


def replay_statistic(y: Tensor, noise: Tensor, hist_y: Tensor, hist_noise: Tensor, *,
                     fresh_var: float = 2.0) -> Tensor:
    """Largest log-likelihood ratio (nats) over the history that ``y`` replays an old block.

    Replay: ``y - y_old ~ CN(0, v)`` with ``v = noise + noise_old`` (channel noise only); fresh:
    ``y - y_old ~ CN(0, fresh_var + v)`` (two unit-power codewords apart, variance 2 when they
    are independent).  Per symbol ``LLR = -|d|^2/v - log v + |d|^2/(fresh_var + v) + log(fresh_var + v)``,
    summed over the block; a block received in a deep fade (``v`` large) gives ~0, not a false match.

    ``y [..., n]`` zero-forced received symbols (complex) with their per-symbol noise power
    ``noise [..., n]``; ``hist_y``, ``hist_noise`` ``[H, ..., n]`` earlier blocks of the same
    senders (H >= 1).  Returns ``[...]``; > 0 favours replay.
    """
    if hist_y.dim() != y.dim() + 1 or hist_y.shape[1:] != y.shape or hist_noise.shape != hist_y.shape \
            or noise.shape != y.shape:
        raise ValueError(f"history must be [H, {tuple(y.shape)}] with noise of the same shapes, got "
                         f"{tuple(hist_y.shape)} and {tuple(hist_noise.shape)}")
    d2 = (y.unsqueeze(0) - hist_y).abs().square()
    v = (noise.unsqueeze(0) + hist_noise).clamp_min(1e-12)
    llr = -d2 / v - v.log() + d2 / (fresh_var + v) + (fresh_var + v).log()
    return llr.sum(-1).max(0).values


def flag_agents(rep: Tensor, replay: Tensor | None = None, *, threshold: float = 0.5,
                replay_threshold: float = 10.0) -> Tensor:
    """Bool ``[N]``: reputation under ``threshold`` or a replay LLR over ``replay_threshold``."""
    bad = rep < threshold
    if replay is not None:
        bad = bad | (replay > replay_threshold)
    return bad
