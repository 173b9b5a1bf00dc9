"""The pilot attack: corrupt the pilots so that the receiver's least-squares CSI estimate, and with
it the equaliser, is wrong (``Channel.corrupt_pilots``).  White-box PGD on the pilot surface: it knows
the fading it is corrupting; its power is measured against the received pilots ``h`` per block.

With one pilot per block the search space is tiny (one complex number per coherence block) and the
loss is far from concave in it, so PGD from a random point stops in whichever basin it starts in
(20 such steps gave a curve that was not monotone in the budget).  The attack therefore first scores
``angles`` structured candidates, the error that moves every block's estimate by ``r e^{j theta}``
times its own pilot (``theta = pi``: the estimate shrunk to ``(1 - r) h``; ``theta`` near
``pi/2 + arcsin r``: the largest phase turn), keeps each sample's best (``attacks._best``), and runs
PGD from it; further restarts start at random points."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from semguard.attacks._best import BestIterate
from semguard.attacks.base import AttackContext
from semguard.attacks.pgd import PGD
from semguard.registry import register

__all__ = ["PilotAttack"]


@register("attack", "pilot")
class PilotAttack(PGD):
    """PGD on the pilots (``surface="pilots"``); the link's channel needs ``csi="estimated"``.

    Args:
        angles: structured candidate starts (equally spaced turns ``theta`` of the pilot error relative
            to each block's pilot, ``theta = 0`` included); 0: random starts only, as plain PGD.
        **kw: those of :class:`~semguard.attacks.pgd.PGD` (``psr_db``, ``steps``, ``restarts``, ...),
            surface fixed.  The first restart starts from the best candidate, the others at random.
    """

    name = "pilot"
    surfaces = ("pilots",)

    def __init__(self, *, angles: int = 16, **kw: Any) -> None:
        kw.setdefault("surface", "pilots")
        super().__init__(**kw)
        if isinstance(angles, bool) or not isinstance(angles, int) or angles < 0:
            raise ValueError(f"angles must be a whole number >= 0 (candidate starts), got {angles!r}")
        self.angles = angles

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "angles": self.angles}

    def candidates(self, ctx: AttackContext, ref: Tensor) -> Iterator[Tensor]:
        """Perturbations whose error at the receiver is ``r e^{j theta}`` times each block's pilot
        (through the attacker's own channel ``g`` when it knows it); the budget scales them to ``r``."""
        base = ref if (ctx.g is None or not self.channel_known) else ref / ctx.g
        for k in range(self.angles):
            t = 2 * math.pi * k / self.angles
            yield self.project(base * complex(math.cos(t), math.sin(t)), ctx, ref)

    def _starts(self, ctx: AttackContext, ref: Tensor | None, radius: Tensor, best: BestIterate) -> Iterator[Tensor]:
        randoms = self.restarts
        if self.angles and ref is not None:
            with torch.no_grad():
                for d in self.candidates(ctx, ref):
                    best.update(d, *self._objective(ctx, d))
            yield best.result().clone()
            randoms -= 1
        for _ in range(randoms):
            yield self._start(ctx, self.shape(ctx), radius)
