"""The attacks that know keyed spreading (:mod:`semguard.defenses.keyed_spread`) but not its key.

* :class:`GuessedKeyLink`: the attacker's model of the defended link, a fresh random key on every
  call; PGD or a universal perturbation trained through it averages over the unknown key (EOT).
* :class:`KeyEOTPGD`: white-box PGD (the channel draw known, the key not) whose every step averages
  the loss over ``keys`` guessed keys (times ``eot`` channel draws when the draw is not all known:
  ``knows="fading"`` draws Bob's noise fresh, as no physical attacker knows it).  :class:`KeyEOTAPGD`
  is the same over APGD's step-size schedule.  PGD through the defended link itself (the key known) is
  the bound that shows the protection rests on the key.
* :class:`CorrelatedJammer`: the key-agnostic structured attack.  ``c U_k x`` commutes with every
  ``U_k^H``, so a jammer that re-radiates the signal it hears, times ``c``, reaches the decoder as
  ``c x`` whatever the key; it puts a fraction of its budget there (phase and fraction searched on a
  grid per block, through guessed keys) and the rest in Gaussian noise.

Why Bob's noise matters here: the receiver's noise ``w`` goes through ``U_k^H`` with the perturbation,
so a perturbation ``d = c w`` (aligned with the noise realisation) reaches the decoder as
``(1 + c) U_k^H w`` whatever the key.  An attacker that replays the evaluated draw (``knows="all"``)
can use that; ``knows="fading"`` is the physical threat model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from semguard.attacks._best import BestIterate
from semguard.attacks.apgd import APGD
from semguard.attacks.base import Attack, AttackContext, check_knows
from semguard.attacks.pgd import PGD, ChannelDraw
from semguard.channels import functional as F
from semguard.channels.base import ChannelState
from semguard.link import Link

__all__ = ["CorrelatedJammer", "GuessedKeyLink", "KeyEOTAPGD", "KeyEOTPGD"]


def _guess(rng: torch.Generator) -> bytes:
    return bytes(torch.randint(0, 256, (32,), generator=rng).to(torch.uint8).tolist())


class GuessedKeyLink(Link):
    """``defended`` (a keyed-spread link) as an attacker without its key models it: every call draws a
    fresh 256-bit key from ``rng`` (uniform, as the HKDF output the defence uses looks)."""

    def __init__(self, defended: Link, rng: torch.Generator) -> None:
        if defended.cipher is None:
            raise ValueError("defended: a keyed-spread link (build it with KeyedSpreadDefense.wrap)")
        super().__init__(defended.codec, defended.channel, cipher=defended.cipher, key=_guess(rng),
                         adversary=defended.adversary)
        self.rng = rng

    def forward(self, source: Tensor, snr_db: Tensor | float, **kw: Any) -> dict[str, Any]:
        self._key = _guess(self.rng)
        return super().forward(source, snr_db, **kw)


def _check_keys(keys: object) -> int:
    if isinstance(keys, bool) or not isinstance(keys, int) or keys < 1:
        raise ValueError(f"keys must be >= 1 guessed key per step, got {keys!r}")
    return keys


class _GuessedKeys(PGD):
    """PGD's draws once per guessed key, every loss sent through :class:`GuessedKeyLink`."""

    keys: int = 1

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "keys": self.keys}

    def _draws(self, ctx: AttackContext) -> list[ChannelDraw]:
        """PGD's channel draws once per guessed key (the link below draws a fresh key per send)."""
        draws: list[ChannelDraw] = []
        for _ in range(self.keys):
            draws += super()._draws(ctx)
        return draws

    def _objective(self, ctx: AttackContext, delta: Tensor) -> tuple[Tensor, Tensor | None]:
        """PGD's loss and success averaged over the draws, sent through :class:`GuessedKeyLink`."""
        return super()._objective(replace(ctx, link=GuessedKeyLink(ctx.link, ctx.rng)), delta)


class KeyEOTPGD(_GuessedKeys):
    """PGD averaging every step's loss over ``keys`` guessed keys (:class:`GuessedKeyLink`).

    Args:
        keys: guessed keys per step.
        correlated_start: the first restart starts from the :class:`CorrelatedJammer`'s choice (same
            knowledge and draws), the others at random; so the attack is never weaker than that jammer
            by the attacker's own estimate of the loss.
        **kw: the :class:`PGD` arguments (surface ``channel``, ``psr_db``, ``steps``, ``knows``, ``eot``...).
    """

    name = "pgd-key-eot"

    def __init__(self, *, keys: int = 8, correlated_start: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.keys = _check_keys(keys)
        if correlated_start and self.surface != "channel":
            raise ValueError("correlated_start: the re-radiation start is on the channel surface only")
        self.correlated_start = bool(correlated_start)

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "correlated_start": self.correlated_start}

    def _starts(self, ctx: AttackContext, ref: Tensor | None, radius: Tensor, best: BestIterate) -> Iterator[Tensor]:
        randoms = self.restarts
        if self.correlated_start:
            jam = CorrelatedJammer(psr_db=self.budget, knows=self.knows, eot=self.eot, recon_loss=self.recon_loss)
            with torch.no_grad():
                d = self.project(jam.perturb(ctx), ctx, ref)
                best.update(d, *self._objective(ctx, d))
            yield d
            randoms -= 1
        for _ in range(randoms):
            yield self._start(ctx, self.shape(ctx), radius)


class KeyEOTAPGD(_GuessedKeys, APGD):
    """APGD (:class:`~semguard.attacks.apgd.APGD`, its own step-size schedule and momentum) on the
    channel surface, every step's loss averaged over ``keys`` guessed keys.

    Args:
        keys: guessed keys per step.
        **kw: the :class:`~semguard.attacks.apgd.APGD` arguments (``psr_db``, ``steps``, ``restarts``,
            ``eta``, ``knows``, ``eot``...).
    """

    name = "apgd-key-eot"
    surfaces = ("channel",)

    def __init__(self, *, keys: int = 8, **kw: Any) -> None:
        kw.setdefault("surface", "channel")
        super().__init__(**kw)
        self.keys = _check_keys(keys)


class _Reradiate:
    """Adds ``c h x_tx`` plus unit-power noise scaled to ``rest`` times the received power (PSR)."""

    def __init__(self, c: Tensor, noise: Tensor, rest: Tensor) -> None:
        self.c, self.noise, self.rest = c, noise, rest

    def interference(self, transmitted: Tensor, state: ChannelState, *,
                     generator: torch.Generator | None = None) -> Tensor:
        r = state.h * transmitted
        return self.c * r + self.noise * (self.rest * F.block_power(r)).sqrt().unsqueeze(1)


class CorrelatedJammer(Attack):
    """The key-agnostic attack ``c h s + u`` (see the module), ``|c|^2 = f 10^(psr/10)``, the noise
    ``u`` Gaussian with the rest of the budget.

    Args:
        phases: phases of ``c`` tried (evenly spaced).
        fractions: budget fractions ``f`` tried on the correlated part.
        knows: what the choice of ``c`` knows of the evaluated draw (``"all"``: scored on it, Bob's noise
            included; ``"fading"``: on ``eot`` draws of fresh noise; ``"none"``: of fresh channel draws).
        eot: draws each candidate is scored on unless ``knows="all"``.
        **kw: the :class:`Attack` arguments (surface ``channel``, ``psr_db``, seed...).
    """

    name = "correlated-jammer"
    knowledge = "white-box"
    surfaces = ("channel",)
    #: the gain ``c [B, 1]`` chosen per block by the last :meth:`perturb` (None before it ran)
    chosen_c: Tensor | None = None

    def __init__(self, *, phases: int = 8, fractions: tuple[float, ...] = (1.0, 0.5, 0.35, 0.2),
                 knows: str = "all", eot: int = 1, **kw: Any) -> None:
        super().__init__(**kw)
        self.knows = check_knows(knows)
        if isinstance(eot, bool) or not isinstance(eot, int) or eot < 1:
            raise ValueError(f"eot must be >= 1 draw per candidate, got {eot!r}")
        self.eot = 1 if self.knows == "all" else eot
        if phases < 1:
            raise ValueError(f"phases must be >= 1, got {phases}")
        if not fractions or not all(0.0 <= f <= 1.0 for f in fractions):
            raise ValueError(f"fractions must be budget fractions in [0, 1], got {fractions!r}")
        self.phases, self.fractions = int(phases), tuple(float(f) for f in fractions)

    def extra_config(self) -> dict[str, Any]:
        return {"phases": self.phases, "fractions": list(self.fractions), "knows": self.knows, "eot": self.eot}

    def _candidates(self) -> list[complex]:
        rho = 10.0 ** (self.budget / 10.0)
        out = [0j]  # all Gaussian
        for f in self.fractions:
            out += [math.sqrt(f * rho) * complex(math.cos(a), math.sin(a))
                    for a in (2 * math.pi * k / self.phases for k in range(self.phases))]
        return out

    def _score(self, ctx: AttackContext, sim: Link) -> Tensor:
        """The loss ``[B]`` (on the CPU) of one send through ``sim`` on one draw of what ``knows`` leaves unknown."""
        gen, bob_noise = ctx.channel_draw(self.knows)
        return self.loss(ctx, sim(ctx.source, ctx.snr, generator=gen, noise_generator=bob_noise)).detach().cpu()

    def perturb(self, ctx: AttackContext) -> Tensor:
        rho = 10.0 ** (self.budget / 10.0)
        n = ctx.link.n_symbols(tuple(ctx.source.shape[1:]))
        noise = F.normalize_power(F.complex_normal((ctx.batch, n), generator=ctx.rng, device=ctx.source.device))
        sim = GuessedKeyLink(ctx.link, ctx.rng) if ctx.link.cipher is not None else ctx.link
        best_c = torch.zeros(ctx.batch, 1, dtype=torch.complex64)
        best = torch.full((ctx.batch,), -math.inf)
        with torch.no_grad():
            for cand in self._candidates():
                c = torch.full((ctx.batch, 1), cand, dtype=torch.complex64)
                rest = torch.full((ctx.batch,), max(rho - abs(cand) ** 2, 0.0))
                old = sim.adversary
                sim.adversary = _Reradiate(c, noise, rest)
                try:
                    loss = torch.stack([self._score(ctx, sim) for _ in range(self.eot)]).mean(0)
                finally:
                    sim.adversary = old
                better = loss > best
                best = torch.where(better, loss, best)
                best_c[better] = c[better]
            self.chosen_c = best_c  # the gain chosen per block (a diagnostic: what the receiver has to undo)
            ref = self.reference(ctx)  # h s as the attacker hears it on the evaluated draw
            rest = (rho - best_c.abs().square()).clamp_min(0).to(ref.device)
            d = best_c.to(ref.device) * ref + noise * (rest.squeeze(1) * F.block_power(ref)).sqrt().unsqueeze(1)
        return d / ctx.g if ctx.g is not None else d
