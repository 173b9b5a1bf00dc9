"""Projected gradient descent (Madry et al., 2018) on any surface, and FGSM (Goodfellow et al., 2015)
as its one-step case.

The gradient is taken through the whole link (encoder, the channel's fading and noise, the
receiver's CSI and equaliser, the decoder): never a straight-through estimate.  ``knows`` says what
the attacker knows of the evaluated channel draw (:data:`~semguard.attacks.base.CHANNEL_KNOWLEDGE`):
``"all"`` (the default, ``channel_known=True``), the white-box upper bound that also knows Bob's thermal
noise realisation, which no physical attacker can; ``"fading"``, the fading and CSI error but not the
noise; ``"none"`` (``channel_known=False``).  The loss is averaged over ``eot`` draws of what the
attacker does not know (expectation over transformation; one draw under ``"all"``).

``warm_start``: another attack on the same surface (e.g. the transfer attack) whose perturbation is
one more start after the random restarts.  Each sample keeps its best over every iterate, the warm
start itself included (scored as this attack radiates it, i.e. on this budget), so the result is never
weaker than the warm start's perturbation nor than the random restarts alone: with the same seed,
``pgd(warm_start=t)`` is per sample at least as strong as both ``pgd()`` and ``t`` on the same draw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor

from semguard.attacks._best import BestIterate
from semguard.attacks.base import Attack, AttackContext, attacker_generator, check_knows
from semguard.channels import functional as F
from semguard.registry import register

__all__ = ["FGSM", "PGD", "ChannelDraw", "resolve_knows"]


class ChannelDraw(NamedTuple):
    """One channel draw an attack sends through: the link's ``generator`` (fading, CSI error, and the
    noise unless ``noise`` is given), the attacker's channel ``g`` (None: unit gain), and ``noise``,
    the generator of Bob's thermal noise (None: ``generator``)."""

    generator: torch.Generator
    g: Tensor | None
    noise: torch.Generator | None = None


def resolve_knows(channel_known: bool | None, knows: str | None) -> str:
    """The channel knowledge from the old flag and the new option: ``knows`` when given (``channel_known``,
    if also given, must agree: True for ``"all"`` / ``"fading"``, False for ``"none"``), else ``"all"``
    or ``"none"`` from ``channel_known`` (default True)."""
    if knows is None:
        return "all" if channel_known is None or channel_known else "none"
    knows = check_knows(knows)
    if channel_known is not None and bool(channel_known) != (knows != "none"):
        raise ValueError(f"channel_known={channel_known} contradicts knows={knows!r}; give knows alone")
    return knows


def _digest(t: Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _cache_key(w: Attack, ctx: AttackContext) -> tuple[str, ...]:
    """What a warm attack's perturbation depends on: its configuration, the batch, the channel draw,
    the SNR and the link (a deterministic attack gives the same perturbation for the same key)."""
    return (json.dumps(w.config(), sort_keys=True, default=str), str(id(ctx.link)), _digest(ctx.source),
            _digest(ctx.channel_state), _digest(ctx.snr), ctx.objective)


def _row_normalize(g: Tensor) -> Tensor:
    flat = g.reshape(g.shape[0], -1)
    n = torch.linalg.vector_norm(flat, dim=1).clamp_min(1e-30)
    return g / n.view(-1, *([1] * (g.dim() - 1)))


@register("attack", "pgd")
class PGD(Attack):
    """PGD with random start and restarts.

    Args:
        steps: gradient steps per restart.
        alpha: step size as a fraction of the budget's radius (None: ``2.5 / steps``).
        random_start: start from a random point of the budget.
        restarts: independent starts; each sample keeps its best iterate over all steps and restarts
            (by the objective's success, then by loss).
        channel_known: the attacker knows the evaluated channel draw (and its own channel): ``knows="all"``
            when True (the default), ``"none"`` when False.
        knows: ``"all"``, ``"fading"`` or ``"none"`` (see the module); overrides ``channel_known``.
        eot: channel draws averaged per step (what the attacker does not know drawn fresh each time;
            ignored under ``knows="all"``).
        full_power: on the air surfaces, iterate on the sphere of the PSR budget (every block spends
            exactly its budget) instead of the ball.
        warm_start: an attack on the same surface whose perturbation (crafted with its own seed and
            generator, as it would be alone) is one more start after the ``restarts`` random ones;
            plain PGD only (None: random restarts only).
        **kw: the :class:`Attack` arguments (surface, psr_db / eps, norm, objective, targeted, seed...).
    """

    name = "pgd"
    knowledge = "white-box"

    def __init__(self, *, steps: int = 40, alpha: float | None = None, random_start: bool = True,
                 restarts: int = 1, channel_known: bool | None = None, eot: int = 1, full_power: bool = True,
                 knows: str | None = None, warm_start: Attack | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        if warm_start is not None:
            if type(self) is not PGD and not getattr(type(self), "continues", False):
                raise ValueError(f"warm_start: only plain pgd takes one, not {self.name}")
            if not isinstance(warm_start, Attack):
                raise TypeError(f"warm_start must be a semguard Attack, got {type(warm_start).__name__}")
            if warm_start.surface != self.surface:
                raise ValueError(f"warm_start: it attacks the {warm_start.surface} surface, this pgd the {self.surface}")
        self.warm_start = warm_start
        self.warm_cache: dict[Any, Any] | None = None  # warm perturbations by (config, batch, draw)
        self.exact = bool(full_power) and self.surface != "input"
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {restarts}")
        if eot < 1:
            raise ValueError(f"eot must be >= 1, got {eot}")
        if alpha is not None and not alpha > 0:
            raise ValueError(f"alpha must be > 0 (a fraction of the budget's radius), got {alpha}")
        self.steps, self.alpha, self.random_start = int(steps), alpha, bool(random_start)
        self.knows = resolve_knows(channel_known, knows)
        self.restarts, self.eot = int(restarts), int(eot)

    @property
    def channel_known(self) -> bool:
        """Whether the attacker knows the evaluated fading (``knows`` is ``"all"`` or ``"fading"``)."""
        return self.knows != "none"

    def extra_config(self) -> dict[str, Any]:
        return {"steps": self.steps, "alpha": self.step_size, "random_start": self.random_start,
                "restarts": self.restarts, "channel_known": self.channel_known, "knows": self.knows,
                "eot": self.eot, "full_power": self.exact,
                "warm_start": None if self.warm_start is None else self.warm_start.config()}

    @property
    def step_size(self) -> float:
        return self.alpha if self.alpha is not None else 2.5 / self.steps

    # -- pieces ----------------------------------------------------------------------------
    def _radius(self, ctx: AttackContext, ref: Tensor | None) -> Tensor:
        if self.surface == "input":
            return torch.full((ctx.batch,), self.budget, device=ctx.source.device)
        assert ref is not None
        return F.psr_radius(ref, self.budget)

    def _start(self, ctx: AttackContext, shape: tuple[int, ...], radius: Tensor) -> Tensor:
        dev = ctx.source.device
        if not self.random_start:
            return (torch.zeros(shape, device=dev) if self.surface == "input"
                    else torch.zeros(shape, dtype=torch.complex64, device=dev))
        u = torch.rand(shape[0], generator=ctx.rng, device=dev).view(-1, *([1] * (len(shape) - 1)))
        if self.surface == "input" and self.norm == "linf":
            return (torch.rand(shape, generator=ctx.rng, device=dev) * 2 - 1) * self.budget
        z = (torch.randn(shape, generator=ctx.rng, device=dev) if self.surface == "input"
             else F.complex_normal(shape, generator=ctx.rng, device=dev))
        return _row_normalize(z) * radius.view(-1, *([1] * (len(shape) - 1))) * u

    def _step(self, delta: Tensor, grad: Tensor, radius: Tensor) -> Tensor:
        a = self.step_size
        if self.surface == "input" and self.norm == "linf":
            return delta + a * self.budget * grad.sign()
        return delta + a * radius.view(-1, *([1] * (delta.dim() - 1))) * _row_normalize(grad)

    def _draws(self, ctx: AttackContext) -> list[ChannelDraw]:
        """The channel draws one step averages over (:meth:`AttackContext.channel_draw`)."""
        if self.knows == "all":
            return [ChannelDraw(ctx.channel_generator(), ctx.g)]
        if self.knows == "fading":
            return [ChannelDraw(gen, ctx.g, noise) for gen, noise in (ctx.channel_draw("fading") for _ in range(self.eot))]
        return [ChannelDraw(ctx.rng, self.draw_g(ctx)) for _ in range(self.eot)]

    def _objective(self, ctx: AttackContext, delta: Tensor) -> tuple[Tensor, Tensor | None]:
        """Per-sample loss ``[B]`` (differentiable in ``delta``) and success ``[B]`` (the fraction of the
        draws on which the objective is met; None without a decision), averaged over the draws."""
        draws = self._draws(ctx)
        total, hits = 0.0, None
        for gen, g, noise in draws:
            out, _ = self.send(ctx, delta, gen, g=g, noise=noise)
            total = total + self.loss(ctx, out)
            ok = self.success(ctx, out)
            if ok is not None:
                hits = ok.float() if hits is None else hits + ok.float()
        return total / len(draws), (None if hits is None else hits / len(draws))

    def _reference(self, ctx: AttackContext) -> Tensor | None:
        """The signal the PSR budget is measured against (None on the input surface)."""
        if self.surface == "input":
            return None
        ref = self.reference(ctx) if (self.channel_known or self.surface == "symbols") else None
        if ref is None:  # the nominal received signal: unit symbol power, E|h|^2 = 1
            ref = torch.ones(self.shape(ctx), dtype=torch.complex64, device=ctx.source.device)
        return ref

    def _starts(self, ctx: AttackContext, ref: Tensor | None, radius: Tensor, best: BestIterate) -> Iterator[Tensor]:
        """The start of each restart (drawn lazily); a subclass may score candidates into ``best`` first.
        The warm start comes last, so the random restarts draw exactly what they draw without it."""
        for _ in range(self.restarts):
            yield self._start(ctx, self.shape(ctx), radius)
        if self.warm_start is not None:
            d = self.warm_perturbation(ctx)
            with torch.no_grad():  # the start as it is, before this attack's projection
                best.update(d, *self._objective(ctx, d))
            yield d

    def warm_perturbation(self, ctx: AttackContext) -> Tensor:
        """The warm start's perturbation ``[B, ...]`` on this batch, crafted as the warm attack alone
        crafts it: its own generator from its seed, its own draw of the attacker's channel."""
        w = self.warm_start
        assert w is not None
        key = None
        if self.warm_cache is not None:
            key = _cache_key(w, ctx)
            if key in self.warm_cache:
                return self.warm_cache[key].clone()
        sub = AttackContext(ctx.link, ctx.source, ctx.snr, ctx.objective, ctx.labels, ctx.target,
                            ctx.channel_state, attacker_generator(w.seed, ctx.source.device), symbols=ctx.symbols)
        sub.g = w.draw_g(sub)
        d = w.perturb(sub).detach()
        d = d.expand(self.shape(ctx)).clone() if d.dim() == 1 else d
        if key is not None:
            self.warm_cache[key] = d.clone()
        return d

    def perturb(self, ctx: AttackContext) -> Tensor:
        """Each sample keeps its best iterate over every step and restart (:mod:`semguard.attacks._best`):
        a successful one before a higher-loss failed one, else the highest loss."""
        ref = self._reference(ctx)
        radius = self._radius(ctx, ref)
        best = BestIterate()
        for start in self._starts(ctx, ref, radius, best):
            self._descend(ctx, start, ref, radius, best)
        return best.result()

    def _descend(self, ctx: AttackContext, start: Tensor, ref: Tensor | None, radius: Tensor,
                 best: BestIterate) -> None:
        """``steps`` projected gradient steps from ``start`` (projected first), every iterate offered to ``best``."""
        delta = self.project(start, ctx, ref)
        for _ in range(self.steps):
            delta = delta.detach().requires_grad_(True)
            loss, ok = self._objective(ctx, delta)
            (grad,) = torch.autograd.grad(loss.sum(), delta)
            with torch.no_grad():
                best.update(delta, loss, ok)
                delta = self.project(self._step(delta, grad, radius), ctx, ref)
        with torch.no_grad():
            best.update(delta, *self._objective(ctx, delta))


@register("attack", "fgsm")
class FGSM(PGD):
    """The fast gradient sign method: one full-budget gradient step from the clean point (``linf``: the
    sign of the gradient; ``l2`` / ``power``: the normalised gradient)."""

    name = "fgsm"

    def __init__(self, **kw: Any) -> None:
        for k in ("steps", "alpha", "random_start", "restarts"):
            if k in kw:
                raise ValueError(f"{k}: FGSM is one full step from the clean point; use pgd to set it")
        super().__init__(steps=1, alpha=1.0, random_start=False, restarts=1, **kw)
