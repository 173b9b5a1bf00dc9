"""Adversarial training (Madry et al., 2018) in the threat library's units, on every surface the
training loop can reach: the source (``input``, linf ``eps`` on images in [0, 1]), the encoder
output as the receiver sees it (``symbols``, a PSR budget in dB per block) or both together
(``mixed``, SemMixed-style).

Each step the perturbation is crafted by the threat library's own white-box PGD
(:class:`semguard.attacks.pgd.PGD`) through a :class:`~semguard.link.Link`, on the very channel
draw the update then sees: gradients run through encoder, channel, equaliser and decoder, never
a straight-through estimate.  ``mixed`` composes the two: input PGD first, then symbol PGD against
the perturbed source (the symbol attacker knows the input perturbation and answers it).  The
update itself is an ordinary gradient step on ``weight * L(adversarial) + (1 - weight) * L(clean)``
with the codec in training mode; the symbol perturbation is re-projected onto the budget of the
symbols the encoder now sends, so the encoder is trained against the attack too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.objectives import codec_objective
from semguard.attacks.pgd import PGD
from semguard.channels import functional as F
from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.link import Link

__all__ = ["ADV_MODES", "AdvSpec", "adversarial_step", "craft"]

ADV_MODES = ("input", "symbols", "mixed")
PSR_RANGE_DB = (-60.0, 20.0)


@dataclass(frozen=True)
class AdvSpec:
    """What adversarial training defends against.

    Attributes:
        mode: one of :data:`ADV_MODES`.
        eps: linf budget on the source (images in [0, 1]); ``input`` and ``mixed``.
        psr_db: PSR budget of the symbol perturbation in dB (-10: a tenth of the symbols' power);
            ``symbols`` and ``mixed``.
        steps: PGD steps per training step (step size ``2.5 / steps`` of the budget, random start).
        weight: the adversarial share of the loss (1: Madry's min-max; 0.5: half clean, half attacked).
    """

    mode: str
    eps: float | None = None
    psr_db: float | None = None
    steps: int = 7
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ADV_MODES:
            raise ValueError(f"adv mode must be one of {', '.join(ADV_MODES)}, got {self.mode!r}")
        wants_eps, wants_psr = self.mode in ("input", "mixed"), self.mode in ("symbols", "mixed")
        if wants_eps and self.eps is None:
            raise ValueError(f"adv eps: --adv {self.mode} needs an input budget (linf eps in [0, 1])")
        if not wants_eps and self.eps is not None:
            raise ValueError(f"adv eps: --adv {self.mode} perturbs no input; drop the eps budget")
        if wants_psr and self.psr_db is None:
            raise ValueError(f"adv psr_db: --adv {self.mode} needs a symbol budget (PSR in dB)")
        if not wants_psr and self.psr_db is not None:
            raise ValueError(f"adv psr_db: --adv {self.mode} perturbs no symbols; drop the PSR budget")
        if self.eps is not None and not (math.isfinite(self.eps) and 0.0 < self.eps <= 1.0):
            raise ValueError(f"adv eps must be in (0, 1] (linf on images in [0, 1]), got {self.eps}")
        lo, hi = PSR_RANGE_DB
        if self.psr_db is not None and not (math.isfinite(self.psr_db) and lo <= self.psr_db <= hi):
            raise ValueError(f"adv psr_db must be from {lo:g} to {hi:g} dB, got {self.psr_db}")
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or not 1 <= self.steps <= 1000:
            raise ValueError(f"adv steps must be a whole number from 1 to 1000, got {self.steps}")
        if not (math.isfinite(self.weight) and 0.0 < self.weight <= 1.0):
            raise ValueError(f"adv weight must be in (0, 1] (the attacked share of the loss), got {self.weight}")

    def check_codec(self, codec: SemanticCodec) -> None:
        """A one-line ValueError when the spec cannot apply to ``codec`` (input PGD on token ids)."""
        if self.mode in ("input", "mixed") and codec_objective(codec) == "semantic":
            raise ValueError(f"adv mode {self.mode!r}: the input surface perturbs float images and "
                             f"{type(codec).__name__} takes token ids; use --adv symbols")

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "eps": self.eps, "psr_db": self.psr_db, "steps": self.steps,
                "weight": self.weight}


def _labels(codec: SemanticCodec, target: Tensor) -> Tensor | None:
    return target if codec_objective(codec) == "task" else None


def craft(link: Link, source: Tensor, target: Tensor, snr_db: Tensor, spec: AdvSpec, *,
          channel_state: Tensor, seed: int) -> tuple[Tensor, Tensor | None]:
    """The adversarial source and symbol perturbation of one batch (white-box PGD on the channel
    draw ``channel_state``, the attacker's random start from ``seed``).

    Returns ``(source', delta)``: ``source'`` is the perturbed source (``source`` itself without an
    input budget) and ``delta`` the complex ``[B, n]`` symbol perturbation (None without a PSR budget).
    """
    spec.check_codec(link.codec)
    labels = _labels(link.codec, target)

    def replay() -> torch.Generator:
        g = torch.Generator()
        g.set_state(channel_state)
        return g

    adv = source
    if spec.eps is not None:
        pgd = PGD(surface="input", eps=spec.eps, steps=spec.steps, seed=seed)
        res = pgd(link, source, snr_db, labels=labels, generator=replay())
        adv = (source + res.perturbation).clamp(0.0, 1.0).detach()
    delta = None
    if spec.psr_db is not None:
        pgd = PGD(surface="symbols", psr_db=spec.psr_db, steps=spec.steps, seed=seed + 1)
        delta = pgd(link, adv, snr_db, labels=labels, generator=replay()).perturbation.detach()
    return adv, delta


def _forward(link: Link, source: Tensor, snr_db: Tensor, delta: Tensor | None, psr_db: float | None,
             generator: torch.Generator) -> dict[str, Any]:
    if delta is None:
        return link(source, snr_db, generator=generator)
    x = link.codec.encode(source, snr_db)
    assert psr_db is not None
    d = F.project_psr(delta, x.detach(), psr_db, exact=True)  # the attacker's full budget of what is sent now
    return link(source, snr_db, generator=generator, symbols=x + d)


def adversarial_step(codec: SemanticCodec, loss_fn: Callable[[dict[str, Any], Tensor], Tensor],
                     opt: torch.optim.Optimizer, source: Tensor, target: Tensor, channel: Channel,
                     snr_db: Tensor, spec: AdvSpec, *, generator: torch.Generator, seed: int,
                     bf16: bool = False) -> Tensor:
    """One optimiser step of adversarial training (see the module docstring); returns the detached
    loss.  ``generator`` draws the channel: the attack is crafted on its next draw, which the
    adversarial forward pass then uses; the clean pass (``weight < 1``) takes the draw after."""
    from semguard.training.loop import _as_float32  # the loop imports this module at call time only

    link = Link(codec, channel)
    state = generator.get_state()
    adv, delta = craft(link, source, target, snr_db, spec, channel_state=state, seed=seed)
    generator.set_state(state)
    codec.train()
    with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = _forward(link, adv, snr_db, delta, spec.psr_db, generator)
    loss = spec.weight * loss_fn(_as_float32(out), target)
    if spec.weight < 1.0:
        with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
            clean = link(source, snr_db, generator=generator)
        loss = loss + (1.0 - spec.weight) * loss_fn(_as_float32(clean), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()
