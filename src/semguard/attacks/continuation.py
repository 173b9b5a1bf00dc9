"""Budget continuation: white-box PGD started from its own solution at a smaller PSR.

Over a fading channel with estimated CSI, PGD from a random start can stop in a basin that keeps one
photo near its clean PSNR however many steps or random restarts it gets (docs/attacks.md, session
14), while the same PGD's solution at a smaller budget, scaled up onto the larger one, starts it
outside that basin.  :class:`PGDContinuation` makes that a grid attack: at budget ``psr_db`` it is
:class:`~semguard.attacks.pgd.PGD` whose random restarts are joined by one more start, the solution of
the same attack (same seed, steps and knowledge) at ``psr_db - step_db``, itself started from the
solution at ``psr_db - 2 step_db``, and so on down to ``from_db``, where the ladder starts with plain
PGD.  The warm start is projected onto this budget (on the PSR sphere by default: the smaller
budget's perturbation scaled up), and each sample keeps its best iterate over every start, so:

* the budget holds as for PGD (the projection is the last thing done to every iterate);
* per sample it is never weaker than plain PGD with the same seed on the same draw (its random
  restarts draw exactly what plain PGD draws; the warm start comes last);
* the threat model is PGD's: white-box, the same channel knowledge; the ladder only chooses a start.

Cost without a cache: one PGD run for the bottom rung, two for every other rung and two for this
budget; ``cache`` (a dict shared across
the grid's budgets, e.g. the grid's ``shared``) keeps each rung's perturbation per batch, keyed by the
rung's configuration, the batch, its channel draw and SNR, so a grid run in ascending budgets pays two
runs a cell.  A cached rung is what recomputing it would give, bit for bit (same seed, same draw).
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from semguard.attacks.base import AttackContext
from semguard.attacks.pgd import PGD, _cache_key
from semguard.registry import register

__all__ = ["PGDContinuation", "ladder"]


def ladder(psr_db: float, from_db: float | None, step_db: float) -> list[float]:
    """The rungs below ``psr_db``, ascending: ``from_db, from_db + step_db, ...`` while below
    ``psr_db - step_db / 2`` (``from_db`` None: the one rung ``psr_db - step_db``; ``from_db`` at or
    above ``psr_db``: none, i.e. plain PGD)."""
    if not (math.isfinite(step_db) and step_db > 0):
        raise ValueError(f"step_db must be a finite number > 0, got {step_db}")
    if from_db is None:
        return [psr_db - step_db]
    if not math.isfinite(from_db):
        raise ValueError(f"from_db must be finite, got {from_db}")
    n = max(0, math.ceil((psr_db - from_db) / step_db - 0.5))
    return [from_db + k * step_db for k in range(n)]


@register("attack", "pgd-continuation")
class PGDContinuation(PGD):
    """PGD with one more start: the same attack's solution at the next smaller budget (see the module).

    Args:
        from_db: the smallest rung (plain PGD there); None: one rung, ``psr_db - step_db``.
        step_db: the spacing of the rungs in dB (default 5, the grid's).
        cache: rung perturbations shared across calls and budgets (None: no cache).
        **kw: the :class:`~semguard.attacks.pgd.PGD` arguments (``psr_db`` required; no ``warm_start``).
    """

    name = "pgd-continuation"
    continues = True  # PGD's warm start is allowed on this subclass

    def __init__(self, *, from_db: float | None = None, step_db: float = 5.0,
                 cache: dict[Any, Any] | None = None, **kw: Any) -> None:
        if "warm_start" in kw:
            raise ValueError("warm_start: pgd-continuation's start is its own smaller-budget solution; use pgd")
        psr = kw.get("psr_db")
        if psr is None or kw.get("surface") == "input":
            raise ValueError("pgd-continuation: a PSR budget on an air surface (psr_db=...) is what it continues")
        rungs = ladder(float(psr), from_db, float(step_db))
        chain: PGD | None = None
        for c in rungs:
            chain = PGD(**(kw | {"psr_db": c}), warm_start=chain)
            chain.warm_cache = cache
        super().__init__(warm_start=chain, **kw)
        self.warm_cache = cache
        # the plain-PGD spelling of this very attack: the next budget's top rung, whose cache key it is
        self._rung = PGD(**kw, warm_start=chain)
        self.from_db, self.step_db, self.rungs = from_db, float(step_db), rungs

    def extra_config(self) -> dict[str, Any]:
        return super().extra_config() | {"from_db": self.from_db, "step_db": self.step_db, "rungs": self.rungs}

    def perturb(self, ctx: AttackContext) -> Tensor:
        """PGD's best iterate over the random restarts and the rung below; stored in ``cache`` as the
        next budget's top rung (the same configuration, so the same perturbation)."""
        key = None if self.warm_cache is None else _cache_key(self._rung, ctx)
        if key is not None and key in self.warm_cache:
            return self.warm_cache[key].clone()
        d = super().perturb(ctx).detach()
        if key is not None:
            self.warm_cache[key] = d.clone()
        return d
