"""Auto-PGD (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", Algorithm 1): PGD whose step size needs no tuning.

It starts with a step of twice the budget's radius, moves with momentum ``0.75``, and at the
checkpoints ``w_j = ceil(p_j N)`` (``p_0 = 0``, ``p_1 = 0.22``,
``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``) halves a sample's step and restarts it from
its highest-loss point when, since the last checkpoint, its loss rose in fewer than ``rho = 0.75``
of the steps, or its step was not halved at the last checkpoint and its best loss did not improve.
Each sample returns its best iterate by the objective's success, then by loss
(:mod:`semguard.attacks._best`).  ``task_loss="dlr"`` is the paper's scale-free DLR loss.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from semguard.attacks._best import BestIterate, _rows
from semguard.attacks.base import AttackContext
from semguard.attacks.pgd import PGD, _row_normalize
from semguard.registry import register

__all__ = ["APGD", "checkpoints"]

MOMENTUM = 0.75
RHO = 0.75


def checkpoints(steps: int) -> list[int]:
    """The iterations ``0 < w_j < steps`` at which APGD may halve its step (paper, Sec. 3.2)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    p = [0.0, 0.22]
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    # rounded first: 0.41 + 0.16 is 0.5700000000000001 in floating point, and the paper means 0.57
    return sorted({w for w in (math.ceil(round(q * steps, 9)) for q in p[1:]) if 0 < w < steps})


@register("attack", "apgd")
class APGD(PGD):
    """APGD with CE or DLR loss on the input surface (``linf`` / ``l2``) or the symbols (PSR budget).

    Args:
        steps: gradient evaluations per restart (the paper's ``N_iter``).
        restarts: independent random starts; each sample keeps its best iterate over all of them.
        eta: the initial step as a fraction of the budget's radius (paper: 2).
        channel_known, eot: as for :class:`~semguard.attacks.pgd.PGD`.
        **kw: the :class:`~semguard.attacks.base.Attack` arguments (``task_loss="dlr"`` for APGD-DLR).
    """

    name = "apgd"
    surfaces = ("input", "symbols")

    def __init__(self, *, steps: int = 100, restarts: int = 1, eta: float = 2.0, **kw: Any) -> None:
        for k in ("alpha", "random_start"):
            if k in kw:
                raise ValueError(f"{k}: APGD sets its own step size from a random start; use eta")
        if not (isinstance(eta, int | float) and math.isfinite(eta) and eta > 0):
            raise ValueError(f"eta must be a finite number > 0 (a fraction of the budget's radius), got {eta}")
        super().__init__(steps=steps, restarts=restarts, random_start=True, **kw)
        self.eta = float(eta)

    def extra_config(self) -> dict[str, Any]:
        c = super().extra_config()
        c.pop("alpha")
        return {**c, "eta": self.eta, "momentum": MOMENTUM, "rho": RHO}

    def _scaled_step(self, grad: Tensor, radius: Tensor, eta: Tensor) -> Tensor:
        """``eta`` (per sample, fraction of the radius) times the steepest-ascent direction."""
        e = _rows(eta, grad)
        if self.surface == "input" and self.norm == "linf":
            return e * self.budget * grad.sign()
        return e * _rows(radius, grad) * _row_normalize(grad)

    def _evaluate(self, ctx: AttackContext, delta: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        delta = delta.detach().requires_grad_(True)
        loss, ok = self._objective(ctx, delta)
        (grad,) = torch.autograd.grad(loss.sum(), delta)
        return loss.detach(), ok, grad

    def _run(self, ctx: AttackContext, ref: Tensor | None, radius: Tensor, best: BestIterate) -> None:
        b, marks = ctx.batch, set(checkpoints(self.steps))
        dev = ctx.source.device
        x = self.project(self._start(ctx, self.shape(ctx), radius), ctx, ref)
        f, ok, grad = self._evaluate(ctx, x)
        best.update(x, f, ok)
        x_max, f_max, g_max = x.clone(), f.clone(), grad.clone()
        prev = x.clone()
        eta = torch.full((b,), self.eta, device=dev)
        rises = torch.zeros(b, device=dev)
        f_max_mark = f_max.clone()
        halved_mark = torch.zeros(b, dtype=torch.bool, device=dev)
        last = 0
        for k in range(1, self.steps):
            with torch.no_grad():
                z = self.project(x + self._scaled_step(grad, radius, eta), ctx, ref)
                nxt = z if k == 1 else self.project(
                    x + MOMENTUM * (z - x) + (1 - MOMENTUM) * (x - prev), ctx, ref)
            prev = x
            x = nxt
            f_new, ok, grad = self._evaluate(ctx, x)
            with torch.no_grad():
                best.update(x, f_new, ok)
                rises += (f_new > f).float()
                f = f_new
                up = f > f_max
                x_max = torch.where(_rows(up, x), x, x_max)
                g_max = torch.where(_rows(up, grad), grad, g_max)
                f_max = torch.where(up, f, f_max)
                if k in marks:
                    few_rises = rises < RHO * (k - last)
                    stalled = ~halved_mark & (f_max <= f_max_mark)
                    halve = few_rises | stalled
                    eta = torch.where(halve, eta / 2, eta)
                    back = _rows(halve, x)
                    x = torch.where(back, x_max, x)
                    prev = torch.where(back, x_max, prev)
                    grad = torch.where(back, g_max, grad)
                    f = torch.where(halve, f_max, f)
                    halved_mark, f_max_mark, last = halve, f_max.clone(), k
                    rises.zero_()

    def perturb(self, ctx: AttackContext) -> Tensor:
        ref = self._reference(ctx)
        radius = self._radius(ctx, ref)
        best = BestIterate()
        for _ in range(self.restarts):
            self._run(ctx, ref, radius, best)
        return best.result()
