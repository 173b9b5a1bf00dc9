"""The budget ladder (``pgd-ladder``): white-box PGD from every start the grid's PGD variants use.

Session 15's ``pgd-continuation`` freed the photo that random-start PGD leaves near its clean PSNR
over Rayleigh, but the transfer start (``pgd-transfer``) stayed stronger on other photos, and the
continuation's bottom rung (-25 dB) had no warm start at all.  :class:`PGDLadder` joins them: at
budget ``psr_db`` it runs the same PGD (same seed, steps and knowledge of the draw) from

* ``R``: the random restarts, drawing exactly what plain ``pgd`` draws;
* ``T``: the transfer attack's perturbation at this budget (when a ``surrogate`` is given), as
  ``pgd-transfer`` does;
* ``C``: ``pgd-continuation``'s solution one rung lower (its own ladder from ``continuation_from_db``),
  as ``pgd-continuation`` does;
* ``L``: its own solution one rung lower, itself the ladder at that budget, down to ``from_db``
  (e.g. -40 dB, so that the grid's -25 dB has a warm start too), where it is ``R`` and ``T`` alone,

each lower-rung start projected onto this budget (on the PSR sphere: scaled up).  Each sample keeps its
best iterate over every run, so, since the best over a union of runs is at least the best over any
part (ties keep the earlier run):

* per sample it is never weaker than ``pgd`` (``R``), ``pgd-transfer`` (``R`` + ``T``) or
  ``pgd-continuation`` (``R`` + ``C``) with the same seed on the same draw;
* the budget holds as for PGD (the projection is the last thing done to every iterate);
* its threat model is PGD's: white-box, the same channel knowledge; the starts are only starts.

The components' per-sample losses of the last call (``components``: ``pgd``, ``pgd-transfer``,
``pgd-continuation``, ``pgd-ladder``; the loss is what PGD maximises, ``10 log10 MSE`` for PSNR) come
for free and say which start won.  Cost: two runs at ``from_db``, three or four a rung above it;
``cache`` (a dict shared across a grid's ascending budgets) keeps each rung's two solutions (ladder,
continuation) per batch, draw and configuration, so a grid pays four runs (and one transfer craft) a
cell.  A cached rung is the rung recomputed, bit for bit.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from torch import Tensor

from semguard.attacks._best import BestIterate
from semguard.attacks.base import AttackContext, attacker_generator
from semguard.attacks.continuation import ladder
from semguard.attacks.pgd import PGD, _digest
from semguard.attacks.transfer import TransferAttack
from semguard.codecs.base import SemanticCodec
from semguard.registry import register

__all__ = ["PGDLadder", "merge"]

_NOT_PGD = ("from_db", "step_db", "continuation_from_db", "surrogate", "cache", "warm_start")


def merge(*parts: BestIterate) -> BestIterate:
    """The per-sample best over several runs' bests, as one run over all their iterates in this order
    would keep it (a later part replaces an earlier one only where strictly better)."""
    out = BestIterate()
    for p in parts:
        assert p.delta is not None and p.loss is not None and p.success is not None
        out.update(p.delta, p.loss, p.success)
    return out


def _losses(*parts: BestIterate | None) -> list[float]:
    m = merge(*[p for p in parts if p is not None])
    assert m.loss is not None
    return m.loss.tolist()


@register("attack", "pgd-ladder")
class PGDLadder(PGD):
    """PGD from the random, transfer, continuation and own-ladder starts (see the module).

    Args:
        from_db: the ladder's bottom rung in dB (default -40; at or above ``psr_db``: no lower rung).
        step_db: the spacing of the rungs in dB (default 5).
        continuation_from_db: ``pgd-continuation``'s bottom rung, whose solution one rung lower is the
            ``C`` start (default -25, the grid's; None: no ``C`` start).  It must lie on the ladder's
            rungs (``from_db`` plus a whole number of ``step_db``).
        surrogate: the attacker's own codec for the ``T`` start (the ``transfer`` attack with this
            PGD's options, never knowing Bob's draw); None: no ``T`` start.
        cache: rung solutions shared across calls and budgets (None: no cache).
        **kw: the :class:`~semguard.attacks.pgd.PGD` arguments (``psr_db`` required; no ``warm_start``).
    """

    name = "pgd-ladder"

    def __init__(self, *, from_db: float = -40.0, step_db: float = 5.0, continuation_from_db: float | None = -25.0,
                 surrogate: SemanticCodec | None = None, cache: dict[Any, Any] | None = None, **kw: Any) -> None:
        if "warm_start" in kw:
            raise ValueError("warm_start: pgd-ladder's starts are its own (transfer, continuation, lower rung); use pgd")
        psr = kw.get("psr_db")
        if psr is None or kw.get("surface") == "input":
            raise ValueError("pgd-ladder: a PSR budget on an air surface (psr_db=...) is what it climbs")
        if not math.isfinite(float(from_db)):
            raise ValueError(f"from_db must be finite, got {from_db}")
        if surrogate is not None and not isinstance(surrogate, SemanticCodec):
            raise TypeError(f"surrogate must be a SemanticCodec, got {type(surrogate).__name__}")
        super().__init__(**kw)
        self.rungs = ladder(float(psr), float(from_db), float(step_db))
        if continuation_from_db is not None:
            k = (float(continuation_from_db) - float(from_db)) / float(step_db)
            if not (math.isfinite(k) and k >= 0 and abs(k - round(k)) < 1e-9):
                raise ValueError(f"continuation_from_db must be from_db ({from_db:g}) plus a whole number of "
                                 f"step_db ({step_db:g}), got {continuation_from_db}")
        self.from_db, self.step_db = float(from_db), float(step_db)
        self.continuation_from_db = None if continuation_from_db is None else float(continuation_from_db)
        self.surrogate, self.cache = surrogate, cache
        self._kw = kw
        self.components: dict[str, list[float]] = {}

    def extra_config(self) -> dict[str, Any]:
        return super().extra_config() | {
            "from_db": self.from_db, "step_db": self.step_db, "rungs": self.rungs,
            "continuation_from_db": self.continuation_from_db,
            "surrogate": None if self.surrogate is None else type(self.surrogate).__name__,
            "surrogate_config": None if self.surrogate is None else getattr(self.surrogate, "config", None)}

    # -- one rung ------------------------------------------------------------------------------
    def _at(self, c: float) -> PGD:
        return PGD(**(self._kw | {"psr_db": c}))

    def _transfer(self, c: float) -> TransferAttack:
        kw = {k: v for k, v in self._kw.items() if k not in ("channel_known", "knows")}
        assert self.surrogate is not None
        return TransferAttack(surrogate=self.surrogate, **(kw | {"psr_db": c}))

    def _key(self, ctx: AttackContext, c: float) -> tuple[str, ...]:
        cfg = {k: v for k, v in self.config().items() if k not in ("budget", "rungs")}
        return ("pgd-ladder", json.dumps(cfg, sort_keys=True, default=str), repr(float(c)), str(id(ctx.link)),
                _digest(ctx.source), _digest(ctx.channel_state), _digest(ctx.snr), ctx.objective)

    def _sub(self, ctx: AttackContext, p: PGD) -> AttackContext:
        """The context a rung runs in: the attacker's generator fresh from the seed, its channel drawn,
        as the rung's plain PGD alone would have it (and as PGD's warm start builds it)."""
        sub = AttackContext(ctx.link, ctx.source, ctx.snr, ctx.objective, ctx.labels, ctx.target,
                            ctx.channel_state, attacker_generator(p.seed, ctx.source.device), symbols=ctx.symbols)
        sub.g = p.draw_g(sub)
        return sub

    def _run(self, p: PGD, ctx: AttackContext, ref: Tensor | None, radius: Tensor, start: Tensor) -> BestIterate:
        best = BestIterate()
        with torch.no_grad():  # the start as it is, before the projection (as PGD scores a warm start)
            best.update(start, *p._objective(ctx, start))
        p._descend(ctx, start, ref, radius, best)
        return best

    def _solve(self, ctx: AttackContext, c: float, top: bool) -> tuple[Tensor, Tensor | None]:
        """``(ladder, continuation)`` solutions at rung ``c`` (continuation None below its bottom);
        at the top rung the components' losses go to ``components``."""
        key = None if self.cache is None else self._key(ctx, c)
        if key is not None and key in self.cache:
            lad, cont, comp = self.cache[key]
            if top:
                self.components = {k: list(v) for k, v in comp.items()}
            return lad.clone(), None if cont is None else cont.clone()
        p = self._at(c)
        run_ctx = ctx if top else self._sub(ctx, p)
        lower = ladder(c, self.from_db, self.step_db)
        below = lower[-1] if lower else None
        low_lad, low_cont = self._solve(ctx, below, False) if below is not None else (None, None)
        ref = p._reference(run_ctx)
        radius = p._radius(run_ctx, ref)
        r = BestIterate()
        for _ in range(p.restarts):
            p._descend(run_ctx, p._start(run_ctx, p.shape(run_ctx), radius), ref, radius, r)
        t = None
        if self.surrogate is not None:
            p.warm_start = self._transfer(c)
            p.warm_cache = self.cache
            t = self._run(p, run_ctx, ref, radius, p.warm_perturbation(run_ctx))
        cf = self.continuation_from_db
        c_run = None
        if cf is not None and below is not None and below >= cf - 1e-9 and low_cont is not None:
            c_run = self._run(p, run_ctx, ref, radius, low_cont)
        l_run = None
        if low_lad is not None:
            same = c_run is not None and low_cont is not None and torch.equal(low_lad, low_cont)
            l_run = c_run if same else self._run(p, run_ctx, ref, radius, low_lad)
        cont = None
        if cf is not None and c >= cf - 1e-9:
            cont = (merge(r, c_run) if c_run is not None else r).result()
        parts = [x for x in (r, t, c_run, l_run) if x is not None]
        best = merge(*parts)
        comp = {"pgd": _losses(r), "pgd-transfer": _losses(r, t), "pgd-continuation": _losses(r, c_run),
                "pgd-ladder": _losses(*parts)}
        if top:
            self.components = comp
        lad = best.result()
        if key is not None:
            self.cache[key] = (lad.clone(), None if cont is None else cont.clone(), comp)
        return lad, cont

    def perturb(self, ctx: AttackContext) -> Tensor:
        """The best iterate over the runs from every start (see the module)."""
        self.components = {}
        lad, _ = self._solve(ctx, self.budget, True)
        return lad
