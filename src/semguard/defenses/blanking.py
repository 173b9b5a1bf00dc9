"""Robust reception by blanking outlier symbols: the receiver knows N0 and each symbol position's clean
statistics (mean ``mu_i``, variance ``v_i``, fitted on reference sources), and replaces a received symbol
whose residual ``|y_i - mu_i|^2 / (v_i + N0)`` is above a threshold by its prior mean ``mu_i`` (an erasure
filled with the MMSE estimate given nothing).  For a Gaussian symbol the residual is exponential, so the
threshold ``ln(1 / p)`` blanks a fraction ``p`` of clean symbols.

It removes impulsive jamming (the budget spent on a few symbols); a jammer that spreads its power, or a
white-box attack that differentiates through the (piecewise-linear) blanking, is not stopped by it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import ChannelState
from semguard.codecs.base import SemanticCodec
from semguard.defenses._wrapped import ReceiverWrapper
from semguard.link import Link
from semguard.registry import register

__all__ = ["BlankingCodec", "BlankingDefense"]


class BlankingCodec(ReceiverWrapper):
    """``codec`` whose receiver blanks outlier symbols (AWGN / equalised blocks)."""

    def __init__(self, codec: SemanticCodec, mu: Tensor, var: Tensor, threshold: float) -> None:
        super().__init__()
        self.codec, self.threshold = codec, float(threshold)
        self.register_buffer("mu", mu)
        self.register_buffer("var", var)
        self.output_key = codec.output_key
        self.config = {"threshold": self.threshold}

    def blank(self, y: Tensor, state: ChannelState) -> tuple[Tensor, Tensor]:
        """``(y with outliers replaced by mu, mask of blanked symbols [B, n])``."""
        if y.shape[1:] != self.mu.shape:
            raise ValueError(f"blanking: fitted on blocks of {self.mu.numel()} symbols, got {tuple(y.shape)}")
        r = (y - self.mu).abs().square() / (self.var + state.n0.reshape(-1, 1))
        mask = r > self.threshold
        return torch.where(mask, self.mu.expand_as(y), y), mask

    def decode(self, y: Tensor, state: ChannelState, **kw: Any) -> Tensor:
        return self.codec.decode(self.blank(y, state)[0], state, **kw)


@register("defense", "blanking")
class BlankingDefense:
    """Fit per-symbol clean statistics on reference sources; ``wrap(link)`` is the blanking receiver.

    Args:
        false_blank: fraction of clean (Gaussian) symbols blanked; threshold ``ln(1 / false_blank)``.
    """

    def __init__(self, *, false_blank: float = 0.01) -> None:
        if not 0.0 < false_blank < 1.0:
            raise ValueError(f"false_blank must be in (0, 1), got {false_blank}")
        self.threshold = math.log(1.0 / false_blank)
        self.mu: Tensor | None = None
        self.var: Tensor | None = None

    def fit(self, codec: SemanticCodec, sources: Tensor, snr_db: float = 10.0) -> "BlankingDefense":
        with torch.no_grad():
            x = codec.encode(sources, snr_db)
        if not torch.is_complex(x) or x.shape[0] < 2:
            raise ValueError("sources: need at least 2 reference blocks of complex symbols")
        self.mu = x.mean(0)
        self.var = (x - self.mu).abs().square().mean(0)
        return self

    def wrap(self, link: Link) -> Link:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if self.mu is None or self.var is None:
            raise RuntimeError("blanking: fit() it on reference sources before wrapping a link")
        if getattr(link.channel, "fading", False) or link.cipher is not None:
            raise ValueError("link: blanking is fitted to equalised AWGN blocks without a cipher")
        codec = BlankingCodec(link.codec, self.mu, self.var, self.threshold)
        return Link(codec, link.channel, adversary=link.adversary, eavesdropper=link.eavesdropper)
