"""Reputation and consistency checks for trust-weighted fusion (pure functions, explicit state).

Reputation is an asymmetric moving average of how often an agent agrees with a robust reference
decision (the coordinate-wise median's); an agent whose reputation falls under a threshold gets
weight 0.  On top of it a *strong* disagreement multiplies the reputation by ``1 - cost`` (one
such round costs more than many agreeing rounds earn back).  A round's disagreement is the mean,
over the round's objects, of the agent's log-probability gap between its own top class and the
reference decision (:func:`disagreement_gap`); it is strong when it is an outlier against the
other agents this round (:func:`robust_z`) or a sudden jump against the agent's own history
(:func:`history_z`, kept by :func:`welford`).  The replay check compares an agent's received symbols with its own recent history: a
replayed block differs from an old one by channel noise only, while a fresh view differs by far
more (a likelihood-ratio test).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["cap_exclusions", "disagreement_gap", "flag_agents", "history_z", "penalise", "replay_statistic", "robust_z",
           "trust_weights", "update_reputation", "welford"]


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


def cap_exclusions(w: Tensor, rep: Tensor, f: int) -> Tensor:
    """At most ``f`` agents of weight 0: when more are, only the ``f`` of lowest reputation stay at 0
    and the others get their reputation back as weight.  Attackers that frame honest agents (make
    them look like outliers) can then exclude at most ``f`` of them, so the rule still sees at least
    ``N - f`` agents of which at most ``f`` are Byzantine."""
    out = w.clone()
    zero = torch.nonzero(w == 0).flatten()
    if zero.numel() > f:
        order = zero[rep[zero].argsort(stable=True)]
        back = order[f:]
        out[back] = rep[back].clamp_min(1e-6)
    return out


def penalise(rep: Tensor, strong: Tensor, *, cost: float = 0.6) -> Tensor:
    """``rep * (1 - cost)`` where ``strong`` (bool ``[N]``), ``rep`` elsewhere."""
    if not 0.0 < cost <= 1.0:
        raise ValueError(f"strong-disagreement cost must be in (0, 1], got {cost}")
    return torch.where(strong, rep * (1.0 - cost), rep)


def disagreement_gap(logp: Tensor, reference: Tensor, *, clip: float = 30.0) -> Tensor:
    """``min(clip, max_c logp_c - logp_ref)`` per object and agent: ``logp [B, N, C]``, ``reference [B]``
    -> ``[B, N]`` (0 where the agent's own decision is the reference)."""
    ref = logp.gather(-1, reference.view(-1, 1, 1).expand(-1, logp.shape[1], 1)).squeeze(-1)
    return (logp.max(-1).values - ref).clamp(0.0, clip)


def robust_z(s: Tensor, *, floor: float = 0.25) -> Tensor:
    """``(s - median(s)) / max(1.4826 MAD(s), floor)`` over the agents ``s [N]`` (one-sided outlier score)."""
    med = s.median()
    mad = 1.4826 * (s - med).abs().median()
    return (s - med) / mad.clamp_min(floor)


def welford(mean: Tensor, m2: Tensor, count: Tensor, s: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One Welford step of each agent's running mean / sum of squares of ``s [N]``, where ``mask``."""
    c = count + mask.to(count.dtype)
    d = s - mean
    mean_new = torch.where(mask, mean + d / c.clamp_min(1), mean)
    m2_new = torch.where(mask, m2 + d * (s - mean_new), m2)
    return mean_new, m2_new, c


def history_z(s: Tensor, mean: Tensor, m2: Tensor, count: Tensor, *, floor: float = 0.5,
              min_count: int = 2) -> Tensor:
    """``(s - mean) / max(sd, floor)`` against the agent's own history; 0 with fewer than
    ``min_count`` rounds of history (a newcomer has nothing to jump from)."""
    sd = (m2 / (count - 1).clamp_min(1)).sqrt()
    z = (s - mean) / sd.clamp_min(floor)
    return torch.where(count >= min_count, z, torch.zeros_like(z))


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
