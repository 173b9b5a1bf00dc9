"""Additive white Gaussian noise channel."""

from __future__ import annotations

from semguard.channels.base import Channel
from semguard.registry import register

__all__ = ["AWGN"]


@register("channel", "awgn")
class AWGN(Channel):
    """``y = x + w``, ``w ~ CN(0, N0)``, ``N0 = 10^(-snr_db/10)``."""

    fading = False

    def __init__(self) -> None:
        super().__init__()
