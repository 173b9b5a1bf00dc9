"""An AutoAttack-style ensemble (Croce & Hein, 2020) for classifiers: APGD with cross-entropy,
APGD with the DLR loss (targeted at the ``targets`` most likely wrong classes, or untargeted), and
the gradient-free Square attack; a sample counts as broken when any member breaks it.

By default every member attacks the whole batch on the evaluated channel draw (a smaller batch would
draw a different channel; ``cascade`` for a frozen one), and each sample keeps the perturbation of the first member that breaks it,
judged on that draw; a sample no member breaks keeps the APGD-CE perturbation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.apgd import APGD
from semguard.attacks.base import Attack, AttackContext, attacker_generator
from semguard.attacks.square import Square
from semguard.registry import register

__all__ = ["AutoAttack"]


@register("attack", "autoattack")
class AutoAttack(Attack):
    """The ensemble on the input surface (``linf``: all members; ``l2``: the APGD members only).

    Args:
        steps: APGD steps per member run.
        targets: APGD-DLR target classes (the most likely wrong ones on the clean input); 0: one
            untargeted APGD-DLR run instead.
        queries: Square queries (``linf`` only; 0 leaves Square out).
        cascade: each member after the first attacks only the samples still unbroken, as the
            original AutoAttack does.  Only for a link whose decision of a sample does not depend on
            the rest of the batch (a frozen channel draw): on a random channel a smaller batch draws
            another channel, so the default runs every member on the whole batch.
        **kw: the :class:`~semguard.attacks.base.Attack` arguments (``eps``, ``norm``, ``seed``).
    """

    name = "autoattack"
    surfaces = ("input",)

    def __init__(self, *, steps: int = 100, targets: int = 3, queries: int = 1000, cascade: bool = False,
                 **kw: Any) -> None:
        for k in ("targeted", "task_loss", "objective"):
            if kw.get(k) not in (None, False):
                raise ValueError(f"{k}: the ensemble is untargeted on the task objective and picks each member's loss")
        kw.setdefault("surface", "input")
        super().__init__(**kw)
        for k, v, lo in (("steps", steps, 1), ("targets", targets, 0), ("queries", queries, 0)):
            if not (isinstance(v, int) and v >= lo):
                raise ValueError(f"{k} must be a whole number >= {lo}, got {v}")
        self.steps, self.targets, self.queries = steps, targets, queries if self.norm == "linf" else 0
        self.cascade = bool(cascade)

    def extra_config(self) -> dict[str, Any]:
        dlr = f"apgd-t x{self.targets}" if self.targets else "apgd-dlr"
        return {"steps": self.steps, "targets": self.targets, "queries": self.queries, "cascade": self.cascade,
                "members": ["apgd-ce", dlr] + (["square"] if self.queries else [])}

    def _members(self, classes: int) -> list[tuple[str, Attack]]:
        """The members in order; member ``i`` has seed ``seed + i`` (so it is the attack that
        ``build`` gives with that seed, run on its own)."""
        base = {"surface": "input", "eps": self.budget, "norm": self.norm}
        out: list[tuple[str, Attack]] = [("apgd-ce", APGD(steps=self.steps, seed=self.seed, **base))]
        if self.targets == 0:
            out.append(("apgd-dlr", APGD(steps=self.steps, task_loss="dlr", seed=self.seed + 1, **base)))
        for t in range(min(self.targets, classes - 1)):
            out.append((f"apgd-t{t + 1}", APGD(steps=self.steps, task_loss="dlr", targeted=True,
                                               seed=self.seed + 1 + t, **base)))
        if self.queries:
            out.append(("square", Square(queries=self.queries, seed=self.seed + len(out), **base)))
        return out

    def _broken(self, ctx: AttackContext, atk: Attack, delta: Tensor) -> Tensor:
        out, _ = atk.send(ctx, delta, ctx.channel_generator())
        return out["output"].argmax(1) != ctx.labels

    def perturb(self, ctx: AttackContext) -> Tensor:
        if ctx.objective != "task" or ctx.labels is None:
            raise ValueError(f"objective: autoattack breaks classifiers (the task objective with labels), got "
                             f"{ctx.objective!r}; use apgd for the other objectives")
        with torch.no_grad():
            clean, _ = self.send(ctx, torch.zeros_like(ctx.source), ctx.channel_generator())
        logits = clean["output"]
        ranked = logits.masked_fill(torch.nn.functional.one_hot(ctx.labels, logits.shape[1]).bool(),
                                    float("-inf")).argsort(1, descending=True)
        final = torch.zeros_like(ctx.source)
        broken = torch.zeros(ctx.batch, dtype=torch.bool, device=ctx.source.device)
        for name, atk in self._members(logits.shape[1]):
            if bool(broken.all()):
                break
            idx = (~broken).nonzero()[:, 0] if self.cascade else torch.arange(ctx.batch, device=broken.device)
            sub = replace(ctx, source=ctx.source[idx], snr=ctx.snr[idx], labels=ctx.labels[idx],
                          rng=attacker_generator(atk.seed, ctx.source.device))
            if name.startswith("apgd-t"):
                sub.target = ranked[idx, int(name[6:]) - 1].contiguous()
            with torch.enable_grad():
                delta = atk.perturb(sub).detach()
            with torch.no_grad():
                hit = self._broken(sub, atk, delta) & ~broken[idx]
            if name == "apgd-ce":  # what a sample no member breaks keeps
                final[idx] = delta
            final[idx[hit]] = delta[hit]
            broken[idx[hit]] = True
        return final
