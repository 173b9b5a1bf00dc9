"""The Square attack (Andriushchenko et al., 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search"), ``linf``, on the input surface: gradient-free, it only
queries the link's output.

It starts from vertical stripes (each column of each channel at ``+eps`` or ``-eps``) and then, per
query, redraws one random square window of side ``s`` (per channel one sign, ``+-eps``), keeping
it only where the loss rises.  The window covers a fraction ``p`` of the image that halves on the
paper's schedule (after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10 000 queries,
rescaled to the query budget).  A sample that has what it wants (the task objective's success)
stops changing.  The loss is the attack's own; ``task_loss`` defaults to the logit margin, the
paper's choice.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from semguard.attacks._best import better
from semguard.attacks.base import Attack, AttackContext
from semguard.registry import register

__all__ = ["Square", "square_fraction"]

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_fraction(p_init: float, query: int, queries: int) -> float:
    """The fraction of the image a window covers at ``query`` of ``queries`` (the paper's schedule)."""
    i = int(query / queries * 10000)
    return p_init / 2 ** sum(i > h for h in _HALVINGS)


@register("attack", "square")
class Square(Attack):
    """Random-search ``linf`` attack on images ``[B, C, H, W]`` in [0, 1].

    Args:
        queries: link evaluations after the initial one (the paper's iterations).
        p_init: the window's initial fraction of the image (0, 1].
        channel_known: query the evaluated channel draw (else a fresh draw per query).
        **kw: the :class:`~semguard.attacks.base.Attack` arguments (``eps``, ``objective``,
            ``targeted``, ``task_loss`` (default ``margin``), ``seed``).
    """

    name = "square"
    knowledge = "query"
    surfaces = ("input",)

    def __init__(self, *, queries: int = 1000, p_init: float = 0.8, channel_known: bool = True, **kw: Any) -> None:
        kw.setdefault("surface", "input")
        kw.setdefault("task_loss", "margin")
        super().__init__(**kw)
        if self.norm != "linf":
            raise ValueError(f"norm: the square attack here is linf, got {self.norm!r}")
        if not (isinstance(queries, int) and queries >= 1):
            raise ValueError(f"queries must be a whole number >= 1, got {queries}")
        if not (isinstance(p_init, int | float) and 0 < p_init <= 1):
            raise ValueError(f"p_init must be in (0, 1] (a fraction of the image), got {p_init}")
        self.queries, self.p_init, self.channel_known = queries, float(p_init), bool(channel_known)

    @property
    def steps(self) -> int:  # what robust_fidelity divides its time by
        return self.queries

    def extra_config(self) -> dict[str, Any]:
        return {"queries": self.queries, "p_init": self.p_init, "channel_known": self.channel_known}

    def _query(self, ctx: AttackContext, delta: Tensor) -> tuple[Tensor, Tensor]:
        gen = ctx.channel_generator() if self.channel_known else ctx.rng
        out, _ = self.send(ctx, delta, gen)
        ok = self.success(ctx, out)
        loss = self.loss(ctx, out).float()
        return loss, (torch.zeros_like(loss) if ok is None else ok.float())

    def perturb(self, ctx: AttackContext) -> Tensor:
        with torch.no_grad():  # the attack never needs a gradient
            return self._search(ctx)

    def _search(self, ctx: AttackContext) -> Tensor:
        src, eps, rng = ctx.source, self.budget, ctx.rng
        if src.dim() != 4:
            raise ValueError(f"source: the square attack perturbs images [B, C, H, W], got {tuple(src.shape)}")
        b, c, h, w = src.shape
        dev = src.device
        stripes = torch.randint(0, 2, (b, c, 1, w), generator=rng, device=dev).float() * 2 - 1
        delta = self.project(eps * stripes.expand(b, c, h, w), ctx)
        loss, ok = self._query(ctx, delta)
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        for q in range(self.queries):
            if bool((ok > 0).all()):
                break
            side = max(1, min(h, w, round(math.sqrt(square_fraction(self.p_init, q, self.queries) * h * w))))
            r0 = torch.randint(0, h - side + 1, (b, 1, 1), generator=rng, device=dev)
            c0 = torch.randint(0, w - side + 1, (b, 1, 1), generator=rng, device=dev)
            window = ((rows >= r0) & (rows < r0 + side) & (cols >= c0) & (cols < c0 + side))[:, None]
            signs = torch.randint(0, 2, (b, c, 1, 1), generator=rng, device=dev).float() * 2 - 1
            cand = self.project(torch.where(window, eps * signs, delta), ctx)
            c_loss, c_ok = self._query(ctx, cand)
            take = better(c_loss, c_ok, loss, ok) & ~(ok > 0)
            delta = torch.where(take.view(-1, 1, 1, 1), cand, delta)
            loss, ok = torch.where(take, c_loss, loss), torch.where(take, c_ok, ok)
        return delta
