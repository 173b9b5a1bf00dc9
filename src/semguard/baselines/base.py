"""The :class:`Baseline` protocol: what every image separation baseline is called with."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from semguard.channels.base import Channel

__all__ = ["Baseline"]


@runtime_checkable
class Baseline(Protocol):
    """A separate source + channel coding system at a budget of ``n_symbols`` channel uses.

    Called as ``baseline(images [B, 3, H, W] in [0, 1], channel, snr_db, n_symbols, *,
    generator=None)``; returns ``{"x_hat": [B, 3, H, W], "bits": [B] file bits sent, "info": [per-image
    dicts]}`` (``info`` may hold ``success``, ``mcs``, ``quality``, ``psnr_expected``)."""

    def __call__(self, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                 generator: torch.Generator | None = None) -> dict[str, Any]: ...
