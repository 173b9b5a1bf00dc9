"""Random noise of the full budget: equal-power complex Gaussian jamming on the air surfaces, and
equal-norm random noise on the input (the control that shows what an attack's adversarial part adds)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import Attack, AttackContext
from semguard.channels import functional as F
from semguard.registry import register

__all__ = ["GaussianJamming"]


@register("attack", "gaussian")
class GaussianJamming(Attack):
    """``CN(0, 1)`` jamming scaled to exactly the PSR budget per block (air surfaces), or random noise of
    norm ``eps`` on the input (``linf``: random signs times eps; ``l2``: a Gaussian direction of length eps,
    then clipped to [0, 1])."""

    name = "gaussian"
    knowledge = "none"
    exact = True

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)

    def perturb(self, ctx: AttackContext) -> Tensor:
        shape = self.shape(ctx)
        dev = ctx.source.device
        if self.surface != "input":
            return F.complex_normal(shape, generator=ctx.rng, device=dev)
        z = torch.randn(shape, generator=ctx.rng, device=dev)
        if self.norm == "linf":
            return z.sign() * self.budget
        flat = torch.linalg.vector_norm(z.reshape(shape[0], -1), dim=1).clamp_min(1e-30)
        return z * (self.budget / flat).view(-1, *([1] * (len(shape) - 1)))
