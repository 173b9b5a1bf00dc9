"""Best-iterate bookkeeping shared by the iterative attacks: per sample, the strongest perturbation
seen so far across steps and restarts.

Iterates are ranked by the objective's success criterion first (``success``: the fraction of the
evaluated channel draws on which the attack has what it wants, 0 or 1 when the draw is known) and
by the attack's loss second, so a sample keeps a successful iterate over a higher-loss failed one.
Objectives without a decision (reconstruction, semantic) pass no success and keep the
highest-loss, i.e. worst-fidelity, iterate.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["BestIterate", "better"]


def better(loss: Tensor, success: Tensor, best_loss: Tensor, best_success: Tensor) -> Tensor:
    """``[B]`` bool: the candidate ranks strictly above the incumbent (success first, then loss)."""
    return (success > best_success) | ((success == best_success) & (loss > best_loss))


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


class BestIterate:
    """The running per-sample best of ``(delta, loss, success)``; :meth:`update` with each iterate."""

    def __init__(self) -> None:
        self.delta: Tensor | None = None
        self.loss: Tensor | None = None
        self.success: Tensor | None = None

    def update(self, delta: Tensor, loss: Tensor, success: Tensor | None) -> None:
        """Offer one iterate ``delta [B, ...]`` with its loss ``[B]`` and success ``[B]`` (None: no decision)."""
        delta, loss = delta.detach(), loss.detach().float()
        succ = torch.zeros_like(loss) if success is None else success.detach().float()
        if self.delta is None or self.loss is None or self.success is None:
            self.delta, self.loss, self.success = delta.clone(), loss.clone(), succ.clone()
            return
        if delta.shape != self.delta.shape:
            raise ValueError(f"iterate shape {tuple(delta.shape)} differs from {tuple(self.delta.shape)}")
        take = better(loss, succ, self.loss, self.success)
        self.delta = torch.where(_rows(take, delta), delta, self.delta)
        self.loss = torch.where(take, loss, self.loss)
        self.success = torch.where(take, succ, self.success)

    def result(self) -> Tensor:
        if self.delta is None:
            raise RuntimeError("BestIterate: no iterate was offered")
        return self.delta
