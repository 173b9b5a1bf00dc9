"""A black-box transfer attack: PGD crafted on a surrogate codec the attacker trained itself (other
seed, width or data), over its own draws of the channel (it knows neither Bob's codec nor his
channel), then radiated against the real link at the full PSR budget; on the ``input`` surface, the
classic transfer of an adversarial input crafted on the surrogate (within ``eps``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import AttackContext
from semguard.attacks.pgd import PGD
from semguard.codecs.base import SemanticCodec
from semguard.link import Link
from semguard.registry import register

__all__ = ["TransferAttack"]


@register("attack", "transfer")
class TransferAttack(PGD):
    """PGD on ``Link(surrogate, the same channel model)``, replayed on the attacked link.

    Args:
        surrogate: the attacker's own codec (same number of channel uses per source).
        **kw: the :class:`~semguard.attacks.pgd.PGD` arguments (``channel_known`` is always False).
    """

    name = "transfer"
    knowledge = "transfer"
    surfaces = ("channel", "symbols", "input")
    exact = True

    def __init__(self, *, surrogate: SemanticCodec, **kw: Any) -> None:
        if kw.pop("channel_known", False):
            raise ValueError("channel_known: a transfer attacker does not know Bob's channel draw")
        if not isinstance(surrogate, SemanticCodec):
            raise TypeError(f"surrogate must be a SemanticCodec, got {type(surrogate).__name__}")
        super().__init__(channel_known=False, **kw)
        self.surrogate = surrogate

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "surrogate": type(self.surrogate).__name__,
                "surrogate_config": getattr(self.surrogate, "config", None)}

    def perturb(self, ctx: AttackContext) -> Tensor:
        n_real = ctx.link.n_symbols(tuple(ctx.source.shape[1:]))
        n_sur = self.surrogate.n_symbols(tuple(ctx.source.shape[1:]))
        if n_real != n_sur and self.surface != "input":
            raise ValueError(f"surrogate: it sends {n_sur} symbols per source, the attacked codec {n_real}")
        was = self.surrogate.training
        self.surrogate.eval()
        try:
            sub = AttackContext(Link(self.surrogate, ctx.link.channel), ctx.source, ctx.snr, ctx.objective,
                                ctx.labels, ctx.target, ctx.channel_state, ctx.rng)
            if self.surface == "symbols":
                with torch.no_grad():
                    sub.symbols = self.surrogate.encode(ctx.source, ctx.snr)
            req = [(p, p.requires_grad) for p in self.surrogate.parameters()]
            for p, _ in req:
                p.requires_grad_(False)
            try:
                return super().perturb(sub)
            finally:
                for p, f in req:
                    p.requires_grad_(f)
        finally:
            self.surrogate.train(was)
