"""Rayleigh block fading."""

from __future__ import annotations

import torch
from torch import Tensor

from semguard.channels import functional as F
from semguard.channels.base import Channel
from semguard.registry import register

__all__ = ["Rayleigh"]


@register("channel", "rayleigh")
class Rayleigh(Channel):
    """Flat Rayleigh block fading, ``h ~ CN(0,1)`` constant over ``coherence`` symbols."""

    def _block_coefficients(self, batch: int, n_blocks: int, generator: torch.Generator | None,
                            device: torch.device) -> Tensor:
        return F.rayleigh_coefficients((batch, n_blocks), generator=generator, device=device)
