"""A universal, input-agnostic perturbation (Moosavi-Dezfooli et al., 2017; over the air as in
Magmaw, Sun et al., NDSS 2025): one block ``delta [n]`` learned on training sources, then radiated on
any transmission without seeing its symbols.

Training maximises the attack loss in expectation over sources, Bob's channel (fading, CSI error,
noise) and the attacker's own channel ``g``, all drawn fresh every step (EOT); at the receiver the
block is scaled to exactly the PSR budget of the signal as received (the jammer's power control).

Its shape can follow the codec's layout: ``support`` keeps it on chosen symbols (e.g. one token's
slot of DeepSC, which then carries the whole block's power), ``period`` repeats one learned pattern
every ``period`` symbols (e.g. the same pattern on every token slot).

The fit is non-convex and its outcome depends on the start (on DeepSC, BLEU-1 0.82 to 0.86 and
BLEU-4 0.45 to 0.80 at -10 dB across seeds): ``restarts`` fits that many blocks from independent
starts and keeps the one that does the most damage (:func:`~semguard.attacks.objectives.attack_damage`:
token error rate, misclassification rate or distortion) on validation sources the attacker holds,
over fresh channel draws.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import Attack, AttackContext, attacker_generator, frozen
from semguard.channels import functional as F
from semguard.channels.base import as_snr_tensor
from semguard.link import Link
from semguard.registry import register

__all__ = ["UniversalPerturbation"]

log = logging.getLogger(__name__)


@register("attack", "universal")
class UniversalPerturbation(Attack):
    """Learn with :meth:`fit`, replay with ``__call__``.

    Args:
        steps: optimiser steps of :meth:`fit`.
        batch: training sources per step.
        lr: Adam learning rate on the unit-power block.
        delta: a block learned before (complex ``[n]``), to replay without fitting.
        support: bool ``[n]``: the symbols the block may use (None: all).
        period: learn ``period`` symbols and repeat them over the block (None: the whole block).
        restarts: independent fits; the block with the most damage on the validation sources is kept.
        score_draws: channel draws per validation source when ranking restarts.
        **kw: the :class:`Attack` arguments (surface ``channel`` or ``symbols``, ``psr_db``, ...).
    """

    name = "universal"
    knowledge = "none"
    surfaces = ("channel", "symbols")
    exact = True

    def __init__(self, *, steps: int = 200, batch: int = 4, lr: float = 0.05, delta: Tensor | None = None,
                 support: Tensor | None = None, period: int | None = None, restarts: int = 1,
                 score_draws: int = 4, **kw: Any) -> None:
        super().__init__(**kw)
        if not isinstance(restarts, int) or restarts < 1 or not isinstance(score_draws, int) or score_draws < 1:
            raise ValueError(f"restarts and score_draws must be whole numbers >= 1, got restarts={restarts!r}, "
                             f"score_draws={score_draws!r}")
        if steps < 1 or batch < 1 or not lr > 0:
            raise ValueError(f"steps and batch must be >= 1 and lr > 0, got steps={steps}, batch={batch}, lr={lr}")
        if delta is not None and (delta.dim() != 1 or not torch.is_complex(delta)):
            raise ValueError(f"delta must be a complex block [n], got {delta.dtype} {tuple(delta.shape)}")
        if support is not None and (support.dim() != 1 or support.dtype != torch.bool or not bool(support.any())):
            raise ValueError(f"support must be a bool block [n] with at least one True, got {support.dtype} "
                             f"{tuple(support.shape)}")
        if period is not None and (not isinstance(period, int) or period < 1):
            raise ValueError(f"period must be a whole number >= 1 (symbols), got {period!r}")
        self.support, self.period = support, period
        self.steps, self.batch, self.lr = int(steps), int(batch), float(lr)
        self.delta = delta
        self.restarts, self.score_draws = restarts, score_draws
        self.fit_seconds: float | None = None
        self.restart_damage: list[float] = []  # validation damage of each restart's block, in order

    def extra_config(self) -> dict[str, Any]:
        return {"steps": self.steps, "batch": self.batch, "lr": self.lr, "fit_seconds": self.fit_seconds,
                "support": None if self.support is None else int(self.support.sum()), "period": self.period,
                "restarts": self.restarts, "score_draws": self.score_draws, "restart_damage": self.restart_damage}

    def _block(self, param: Tensor, n: int) -> Tensor:
        """The unit-power block ``[n]`` the parameters give (repeated, restricted to the support)."""
        z = torch.view_as_complex(param)
        if self.period is None and self.support is None:
            return z  # kept at unit power by fit's projection (the unshaped block, as before)
        if self.period is not None:
            z = z.repeat(-(-n // self.period))[:n]
        if self.support is not None:
            z = z * self.support.to(z.device)
        return F.normalize_power(z[None])[0]

    def fit(self, link: Link, sources: Tensor, snr_db: float, *, labels: Tensor | None = None,
            validation: Tensor | None = None, validation_labels: Tensor | None = None) -> UniversalPerturbation:
        """Learn the block on ``sources [N, ...]`` (never the evaluation set) at Bob's ``snr_db``; with
        ``restarts > 1``, rank the fitted blocks on ``validation`` (default: ``sources``)."""
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        link.codec.check_source(sources)
        from semguard.attacks.objectives import check_objective, codec_objective
        objective = check_objective(self.objective or codec_objective(link.codec), link.codec)
        if self.targeted:
            raise ValueError("targeted: a universal perturbation here is untargeted")
        if validation is None:
            validation, validation_labels = sources, labels
        else:
            link.codec.check_source(validation)
            if validation.shape[1:] != sources.shape[1:]:
                raise ValueError(f"validation: sources of shape {tuple(sources.shape[1:])} expected, got "
                                 f"{tuple(validation.shape[1:])}")
            if objective == "task" and validation_labels is None:
                raise ValueError("validation_labels: the task objective ranks restarts by the true classes")
        dev = sources.device
        rng = attacker_generator(self.seed, dev)
        n = link.n_symbols(tuple(sources.shape[1:]))
        if self.support is not None and self.support.shape != (n,):
            raise ValueError(f"support: the block has {n} symbols for this source, got {self.support.shape[0]}")
        t0 = time.perf_counter()
        self.restart_damage = []
        best: Tensor | None = None
        with frozen(link):
            for r in range(self.restarts):
                block = self._fit_one(link, sources, labels, snr_db, objective, rng, n)
                if self.restarts == 1:
                    best = block
                    break
                dmg = self._damage(link, validation, validation_labels, snr_db, objective, block, rng)
                log.info("universal restart %d/%d: validation damage %.4f", r + 1, self.restarts, dmg)
                if best is None or dmg > max(self.restart_damage):
                    best = block
                self.restart_damage.append(dmg)
        self.fit_seconds = time.perf_counter() - t0
        assert best is not None
        self.delta = best.clone()
        return self

    def _context(self, link: Link, src: Tensor, labels: Tensor | None, snr_db: float, objective: str,
                 rng: torch.Generator) -> AttackContext:
        ctx = AttackContext(link, src, as_snr_tensor(snr_db, src.shape[0], src.device), objective, labels, None,
                            rng.get_state(), rng)
        if self.surface == "symbols":
            with torch.no_grad():
                ctx.symbols = link.codec.encode(src, ctx.snr)
        return ctx

    def _fit_one(self, link: Link, sources: Tensor, labels: Tensor | None, snr_db: float, objective: str,
                 rng: torch.Generator, n: int) -> Tensor:
        """One fit from a fresh random start (Adam, EOT): the unit-power block ``[n]``."""
        dev = sources.device
        m = n if self.period is None else min(self.period, n)
        z = F.normalize_power(F.complex_normal((1, m), generator=rng, device=dev))[0]
        param = torch.nn.Parameter(torch.view_as_real(z).clone())
        opt = torch.optim.Adam([param], lr=self.lr)
        with torch.enable_grad():
            for step in range(self.steps):
                idx = torch.randint(0, sources.shape[0], (min(self.batch, sources.shape[0]),), generator=rng, device=dev)
                ctx = self._context(link, sources[idx], None if labels is None else labels[idx], snr_db, objective, rng)
                out, _ = self.send(ctx, self._block(param, n), rng, g=self.draw_g(ctx))
                loss = -self.loss(ctx, out).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():  # keep the parameters at unit power: the budget sets the scale
                    param.copy_(torch.view_as_real(F.normalize_power(torch.view_as_complex(param)[None])[0]))
                if step % 50 == 0:
                    log.info("universal step %d/%d loss %.4f", step, self.steps, -loss.item())
        return self._block(param.detach(), n)

    @torch.no_grad()
    def _damage(self, link: Link, sources: Tensor, labels: Tensor | None, snr_db: float, objective: str,
                block: Tensor, rng: torch.Generator) -> float:
        """Mean damage of ``block`` over ``sources`` and ``score_draws`` fresh channel draws each."""
        from semguard.attacks.objectives import attack_damage
        total, count = 0.0, 0
        for _ in range(self.score_draws):
            for i in range(0, sources.shape[0], self.batch):
                src = sources[i:i + self.batch]
                lab = None if labels is None else labels[i:i + self.batch]
                ctx = self._context(link, src, lab, snr_db, objective, rng)
                out, _ = self.send(ctx, block, rng, g=self.draw_g(ctx))
                d = attack_damage(objective, out["output"], src, labels=lab, recon_loss=self.recon_loss)
                total, count = total + float(d.sum()), count + src.shape[0]
        return total / count

    def perturb(self, ctx: AttackContext) -> Tensor:
        if self.delta is None:
            raise RuntimeError("universal: call fit(link, training_sources, snr_db) first (or pass delta=)")
        n = ctx.link.n_symbols(tuple(ctx.source.shape[1:]))
        if self.delta.shape != (n,):
            raise ValueError(f"delta: the learned block has {self.delta.shape[0]} symbols, this source needs {n}")
        return self.delta.to(ctx.source.device)
