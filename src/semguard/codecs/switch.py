"""One codec per SNR range: the transmitter and receiver pick it from the average SNR.

A learned nonlinear codec (ADJSCC) wins at low SNR, a linear analog one (SoftCast-style plus a
learned refinement) at high SNR, where the nonlinear one flattens.  Both ends know the
average SNR, as adaptive modulation and coding assumes for the digital link, so both can apply
the same rule: below ``threshold_db`` the ``low`` codec, otherwise ``high``.  The two must use
the same number of channel uses.  The threshold is fixed in advance (chosen on validation
photos, never the evaluation set), so the switch is a codec, not a per-SNR oracle.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import ChannelState, as_snr_tensor
from semguard.codecs.base import SemanticCodec, codec_spec
from semguard.registry import build, register

__all__ = ["SNRSwitch", "switched", "choose_threshold"]


def choose_threshold(grid: list[float], low: list[float], high: list[float]) -> float:
    """The switching SNR from validation PSNRs of the two codecs on an increasing SNR ``grid``:
    the lowest grid point from which ``high >= low`` there and at every higher point (a single
    crossing is what the switch assumes; a dip of ``high`` below ``low`` above it moves the
    threshold up past the dip)."""
    if not (len(grid) == len(low) == len(high)) or not grid:
        raise ValueError(f"grid, low and high must have one equal, non-zero length; got {len(grid)}, "
                         f"{len(low)}, {len(high)}")
    if any(b <= a for a, b in pairwise(grid)):
        raise ValueError(f"grid must increase strictly, got {grid}")
    thr = None
    for snr, lo, hi in reversed(list(zip(grid, low, high))):
        if hi < lo:
            break
        thr = snr
    if thr is None:
        raise ValueError(f"HIGH never matches LOW on the validation photos at the top of the grid ({grid[-1]} dB)")
    return float(thr)


class SNRSwitch(SemanticCodec):
    """``low`` below ``threshold_db`` average SNR, ``high`` at or above it (per block).

    Args:
        low, high: ``{"codec": registry name, "config": its keyword arguments}``.
        threshold_db: the switching SNR (the encoder's ``snr_db``, the receiver's ``state.snr_db``).
    """

    output_key = "x_hat"

    def __init__(self, *, low: dict[str, Any], high: dict[str, Any], threshold_db: float) -> None:
        super().__init__()
        for side, spec in (("low", low), ("high", high)):
            if not isinstance(spec, dict) or set(spec) != {"codec", "config"}:
                raise ValueError(f"{side} must be {{'codec': name, 'config': {{...}}}}, got {spec!r}")
        self.low: SemanticCodec = build("codec", low["codec"], **low["config"])
        self.high: SemanticCodec = build("codec", high["codec"], **high["config"])
        if self.low.output_key != "x_hat" or self.high.output_key != "x_hat":
            raise ValueError("both codecs must reconstruct images (output_key 'x_hat')")
        self.threshold_db = float(threshold_db)
        self.config = {"low": low, "high": high, "threshold_db": self.threshold_db}

    @classmethod
    def of(cls, low: SemanticCodec, high: SemanticCodec, threshold_db: float) -> SNRSwitch:
        """The switch of two loaded codecs (shared, not copied; :func:`codec_spec` names them)."""
        sw = cls(low=codec_spec(low), high=codec_spec(high), threshold_db=threshold_db)
        sw.low, sw.high = low, high
        return sw

    def check_source(self, source: Tensor) -> None:
        self.low.check_source(source)
        self.high.check_source(source)
        n_low, n_high = self.low.n_symbols(tuple(source.shape[1:])), self.high.n_symbols(tuple(source.shape[1:]))
        if n_low != n_high:
            raise ValueError(f"the two codecs use {n_low} and {n_high} channel uses for {tuple(source.shape[1:])}")

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.high.n_symbols(source_shape)

    def _pick_high(self, snr_db: Tensor) -> Tensor:
        return snr_db >= self.threshold_db

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        self.check_source(source)
        snr = as_snr_tensor(snr_db, source.shape[0], source.device)
        high = self._pick_high(snr)
        out = torch.empty(source.shape[0], self.n_symbols(tuple(source.shape[1:])), dtype=torch.complex64,
                          device=source.device)
        for mask, codec in ((~high, self.low), (high, self.high)):
            if mask.any():
                out[mask] = codec.encode(source[mask], snr[mask])
        return out

    def decode(self, y: Tensor, state: ChannelState, **kwargs: Any) -> Tensor:
        high = self._pick_high(state.snr_db)
        parts: list[tuple[Tensor, Tensor]] = []
        for mask, codec in ((~high, self.low), (high, self.high)):
            if mask.any():
                parts.append((mask, codec.decode(y[mask], state.subset(mask), **kwargs)))
        first = parts[0][1]
        out = torch.empty(y.shape[0], *first.shape[1:], dtype=first.dtype, device=first.device)
        for mask, x_hat in parts:
            out[mask] = x_hat
        return out

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return self.high.decode_kwargs(source)


@register("codec", "switched")
def switched(*, low: dict[str, Any], high: dict[str, Any], threshold_db: float) -> SNRSwitch:
    """Two image codecs switched by average SNR (see :class:`SNRSwitch`)."""
    return SNRSwitch(low=low, high=high, threshold_db=threshold_db)
