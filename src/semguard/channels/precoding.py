"""Unitary DFT spreading: every symbol of a block rides on many fades instead of one.

Over fast fading, a per-symbol analog decoder loses most in the deep fades: the symbols that
land there come out buried in noise.  Spreading takes ``c`` symbols ``m = n / c`` positions apart
(a *chunk*), applies the orthonormal DFT and sends the ``c`` outputs in the same positions, so
they see up to ``c`` independent fades.  The receiver equalises each received symbol with its own
one-tap equaliser, applies the inverse DFT, and each despread symbol then sees the *mean* of
its chunk's channel, one flat gain per chunk (:func:`equivalent_gain`).  This is DFT-spread
(single-carrier FDMA) precoding; it is unitary, so power and AWGN are untouched.

The despread channel seen by a decoder is written as a :class:`ChannelState` with that flat
gain per chunk, so any codec decodes despread symbols exactly as it decodes a flat channel.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from semguard.channels.base import ChannelState

__all__ = ["equivalent_gain", "spread_chunk", "spread", "despread", "despread_state"]


def equivalent_gain(h: Tensor, n0: Tensor, equalizer: str) -> Tensor:
    """The flat gain ``[..., 1]`` that a despread symbol sees, from its chunk's per-symbol gains
    ``h [..., c]`` and the noise power ``n0`` (broadcast against ``[..., 1]``).

    * ZF: each despread symbol's noise is the chunk mean of ``N0 / |h_j|^2``, so ``|h'|^2`` is the
      harmonic mean of ``|h_j|^2``.
    * MMSE: a despread symbol is ``b x`` plus noise and cross-talk of power ``b (1 - b)`` with
      ``b = mean(beta_j)``, ``beta_j = |h_j|^2 / (|h_j|^2 + N0)`` (unit-power ``x``); a flat gain
      with ``|h'|^2 = N0 b / (1 - b)`` gives exactly that bias and that power.
    * none: the chunk mean of ``h`` (cross-talk not counted).
    """
    g = h.abs().square().clamp_min(1e-12)
    if equalizer == "zf":
        eq = g.reciprocal().mean(-1, keepdim=True).reciprocal().sqrt()
    elif equalizer == "mmse":
        beta = (g / (g + n0)).mean(-1, keepdim=True)
        eq = (n0 * beta / (1 - beta).clamp_min(1e-12)).sqrt()
    elif equalizer == "none":
        return h.mean(-1, keepdim=True)
    else:
        raise ValueError(f"unknown equalizer {equalizer!r} in the channel state")
    return eq.to(h.dtype)


def spread_chunk(n: int, max_chunk: int = 64) -> int:
    """The DFT size for blocks of ``n`` symbols: the largest divisor of ``n`` up to ``max_chunk``
    (at least 8, or spreading would buy little diversity)."""
    if max_chunk < 2:
        raise ValueError(f"max_chunk must be >= 2, got {max_chunk}")
    c = max(d for d in range(1, min(n, max_chunk) + 1) if n % d == 0)
    if c < min(8, max_chunk):
        raise ValueError(f"spreading needs a block length with a divisor in 8..{max_chunk}; "
                         f"{n} symbols have none (pad the block)")
    return c


def spread(x: Tensor, chunk: int) -> Tensor:
    """``[B, n]`` -> ``[B, n]``: the orthonormal DFT over each *chunk*, the ``chunk`` symbols
    ``j, j + m, j + 2m, ...`` (``m = n / chunk``), its outputs sent in the same positions.

    Strided, a chunk both spans the whole block's fades and draws one symbol from every part of
    the codec's output, so its power is about the block's (unit) power.  That matters: the
    MMSE cross-talk a despread symbol sees scales with its chunk's power, and the codecs order
    symbols by importance (SoftCast's strongest coefficient first), so consecutive symbols
    would make chunks of very unequal power.
    """
    b, n = x.shape
    return torch.fft.fft(x.reshape(b, chunk, n // chunk), dim=1, norm="ortho").reshape(b, n)


def despread(y: Tensor, chunk: int) -> Tensor:
    """Inverse of :func:`spread` (on equalised symbols)."""
    b, n = y.shape
    return torch.fft.ifft(y.reshape(b, chunk, n // chunk), dim=1, norm="ortho").reshape(b, n)


def despread_state(state: ChannelState, chunk: int) -> ChannelState:
    """The channel state of despread symbols: each chunk's :func:`equivalent_gain` on all of its
    symbols (``h`` from the true gains, ``h_est`` from the estimates)."""
    b, n = state.h.shape
    n0 = state.n0.reshape(b, 1, 1)

    def flat(h: Tensor) -> Tensor:
        g = equivalent_gain(h.reshape(b, chunk, n // chunk).transpose(1, 2), n0, state.equalizer)  # [B, m, 1]
        return g.transpose(1, 2).expand(b, chunk, n // chunk).reshape(b, n)

    return replace(state, h=flat(state.h), h_est=flat(state.h_est))
