"""Rician block fading."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semguard.channels import functional as F
from semguard.channels.base import Channel
from semguard.registry import register

__all__ = ["Rician"]


@register("channel", "rician")
class Rician(Channel):
    """Flat Rician block fading with K factor (linear LoS/scattered power), ``E|h|^2 = 1``.

    Args:
        k_factor: K (linear). 0 is Rayleigh; large K tends to AWGN.
        los_phase: ``"zero"`` (LoS phase 0) or ``"random"`` (uniform per block).
        **kwargs: the :class:`~semguard.channels.base.Channel` options (coherence, csi, ...).
    """

    def __init__(self, *, k_factor: float = 3.0, los_phase: str = "zero", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if los_phase not in ("zero", "random"):
            raise ValueError(f"los_phase must be 'zero' or 'random', got {los_phase!r}")
        if k_factor < 0:
            raise ValueError(f"k_factor must be >= 0, got {k_factor}")
        self.k_factor = float(k_factor)
        self.los_phase = los_phase

    def _block_coefficients(self, batch: int, n_blocks: int, generator: torch.Generator | None,
                            device: torch.device) -> Tensor:
        phase: Tensor | float = 0.0
        if self.los_phase == "random":
            phase = 2 * torch.pi * torch.rand(batch, n_blocks, generator=generator, device=device)
        return F.rician_coefficients((batch, n_blocks), self.k_factor, los_phase=phase,
                                     generator=generator, device=device)

    def extra_repr(self) -> str:
        return f"k_factor={self.k_factor}, los_phase={self.los_phase!r}, " + super().extra_repr()
