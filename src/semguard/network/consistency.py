"""Long-horizon self-consistency: each agent against a reference its own group cannot move (pure functions).

The decision-gap score of :mod:`.trust` compares every agent with the plurality of the trusted
agents, and on an object the honest agents are split on, a colluding group's unanimous vote *is*
that plurality: the rule-aware attacker "agrees" with the reference it has moved.  Here each agent
is compared with the decision of the others *less its group on this object*: the agent itself and the
``k`` agents whose class probabilities are nearest its own on that object (:func:`leave_group_out_reference`).
Colluders that push one object together send near-identical confident vectors, so they leave
together and meet the honest agents' decision; an honest agent on a split object leaves with the
honest agents that side with it, and its gap to the rest is small because it is itself unsure.

:func:`horizon_z` scores the agents on their *long-run* mean gap (every object seen, over as many
rounds as the node has run), against the other agents' long-run means: a robust z whose spread is
that of the honest agents' view quality, which does not shrink with the horizon, while an attacker's
excess per pushed object stays.
"""

from __future__ import annotations

import torch
from torch import Tensor

from semguard.network.fusion import coordinate_median

__all__ = ["excess_gap", "group_gap", "horizon_z", "leave_group_out_reference", "plurality"]


def leave_group_out_reference(logp: Tensor, k: int, include: Tensor | None = None) -> Tensor:
    """``logp [B, N, C]`` -> ``[B, N]``: for agent ``i`` on object ``b``, the decision (argmax) of the
    coordinate-wise median of the included agents other than ``i`` and the ``k`` included agents whose
    probability vectors are nearest ``i``'s on ``b`` (L1).  Needs at least ``k + 2`` included agents
    (one left after the group); ``k = 0`` is the leave-one-out median's decision."""
    B, n, _ = logp.shape
    include = torch.ones(n, dtype=torch.bool) if include is None else include
    if logp.dim() != 3 or include.shape != (n,) or k < 0 or int(include.sum()) < k + 2:
        raise ValueError(f"leave-group-out needs logp [B, N, C] and more than k + 1 = {k + 1} included agents, got "
                         f"{tuple(logp.shape)} with {int(include.sum())} included")
    p = logp.detach().exp()
    dist = (p.unsqueeze(2) - p.unsqueeze(1)).abs().sum(-1)                    # [B, N, N]
    eye = torch.eye(n, dtype=torch.bool)
    dist = dist.masked_fill(eye | ~include.view(1, 1, n), float("inf"))
    out = torch.empty(B, n, dtype=torch.long)
    for i in range(n):
        others = include.clone()
        others[i] = False
        mask = others.expand(B, n).clone()
        if k > 0:
            near = dist[:, i].topk(k, dim=-1, largest=False).indices           # [B, k]
            mask.scatter_(1, near, False)
        # the median over the remaining agents, object by object (their number is the same for every b)
        rest = logp.detach()[mask].view(B, -1, logp.shape[-1])
        out[:, i] = coordinate_median(rest).argmax(-1)
    return out


def group_gap(logp: Tensor, reference: Tensor, *, clip: float = 30.0) -> Tensor:
    """``min(clip, max_c logp_c - logp_ref)`` per object and agent, with one reference per agent:
    ``logp [B, N, C]``, ``reference [B, N]`` -> ``[B, N]`` (0 where the agent's decision is its reference)."""
    ref = logp.gather(-1, reference.unsqueeze(-1)).squeeze(-1)
    return (logp.max(-1).values - ref).clamp(0.0, clip)


def plurality(logp: Tensor) -> Tensor:
    """``logp [B, N, C]`` -> ``[B]``: the plurality of every agent's own decision, ties to the
    coordinate-wise median's larger log-probability."""
    votes = torch.zeros(logp.shape[0], logp.shape[2], dtype=logp.dtype)
    votes.scatter_add_(-1, logp.argmax(-1), torch.ones(logp.shape[:2], dtype=logp.dtype))
    return (votes + 1e-3 * coordinate_median(logp.detach()).softmax(-1)).argmax(-1)


def excess_gap(logp: Tensor, k: int) -> Tensor:
    """``[B, N]``: each agent's gap to its :func:`leave_group_out_reference` less its gap to the
    :func:`plurality` of every agent (excluded ones too, so an agent keeps the excess of the votes it
    swings after it is excluded).  An agent with a poor view disagrees with both alike; a group that
    swings a split object has a gap of 0 to the plurality it made and a large one to the rest."""
    vote = plurality(logp).view(-1, 1).expand(-1, logp.shape[1])
    return group_gap(logp, leave_group_out_reference(logp, k)) - group_gap(logp, vote)


def horizon_z(total: Tensor, count: Tensor, include: Tensor, *, floor: float = 0.05) -> Tensor:
    """``[N]``: each agent's long-run mean ``total / count`` against the included agents' (robust z: median
    and ``1.4826`` MAD, the MAD floored at ``floor``); 0 for agents with no history."""
    mean = total / count.clamp_min(1)
    ref = mean[include & (count > 0)]
    if ref.numel() < 3:
        return torch.zeros_like(mean)
    med = ref.median()
    mad = (1.4826 * (ref - med).abs().median()).clamp_min(floor)
    return torch.where(count > 0, (mean - med) / mad, torch.zeros_like(mean))
