"""The adversary an air-surface attack plugs into a :class:`~semguard.link.Link` for one batch.

The perturbation reaches Bob through the attacker's own channel ``g`` (one coefficient per block,
drawn by the attack: unit gain over AWGN, Rayleigh when Bob's channel fades) and is scaled at the
receiver onto the PSR budget of the signal as received there (``h x``; for pilots, ``h``):
``project_psr`` from :mod:`semguard.channels.functional`, on the ball (``exact=False``) or its sphere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from semguard.channels import functional as F
from semguard.channels.base import Channel, ChannelState
from semguard.link import Link

__all__ = ["Radiator", "pilot_signal", "radiating"]


def pilot_signal(state: ChannelState, channel: Channel) -> Tensor:
    """The received pilots ``h`` per coherence block ``[B, n_blocks]`` (unit-power pilots)."""
    n = state.h.shape[1]
    L = channel.coherence or n
    return state.h[:, ::L][:, : channel.pilot_blocks(n)]


class Radiator:
    """Adds ``g * delta`` (data) or ``g * delta`` (pilots) at Bob's receiver, on the PSR budget.

    Args:
        delta: ``[B, n]`` / ``[n]`` on the data (``surface="channel"``) or ``[B, n_blocks]`` / ``[n_blocks]``
            on the pilots (``surface="pilots"``), complex.
        psr_db: the budget in dB.
        surface: ``"channel"`` or ``"pilots"``.
        exact: every block at exactly the budget (jamming, universal) instead of within it.
        g: the attacker's channel ``[B, 1]`` (None: unit gain).
        inner: an adversary already on the link, kept.
    """

    def __init__(self, delta: Tensor, psr_db: float, surface: str, *, exact: bool = False,
                 g: Tensor | None = None, inner: object | None = None) -> None:
        self.delta, self.psr_db, self.surface, self.exact, self.g, self.inner = delta, psr_db, surface, exact, g, inner
        self.applied: Tensor | None = None  # what reached the receiver, for the measured budget
        self.signal: Tensor | None = None

    def __repr__(self) -> str:
        return f"Radiator(surface={self.surface!r}, psr_db={self.psr_db}, exact={self.exact})"

    def _radiate(self, signal: Tensor) -> Tensor:
        d = self.delta.expand_as(signal) if self.delta.dim() == 1 else self.delta
        if d.shape != signal.shape or not torch.is_complex(d):
            raise ValueError(f"perturbation must be complex {tuple(signal.shape)} (or [{signal.shape[1]}] for a "
                             f"universal one) on the {self.surface} surface, got {d.dtype} {tuple(self.delta.shape)}")
        if self.g is not None:
            d = self.g * d
        out = F.project_psr(d, signal, self.psr_db, exact=self.exact)
        self.applied, self.signal = out, signal.detach()
        return out

    def interference(self, transmitted: Tensor, state: ChannelState, *,
                     generator: torch.Generator | None = None) -> Tensor | None:
        inner = self.inner.interference(transmitted, state, generator=generator) if self.inner is not None else None
        if self.surface != "channel":
            return inner
        out = self._radiate((state.h * transmitted).detach())
        return out if inner is None else inner + out

    def pilots(self, transmitted: Tensor, state: ChannelState, channel: Channel, *,
               generator: torch.Generator | None = None) -> Tensor | None:
        fn = getattr(self.inner, "pilots", None)
        inner = fn(transmitted, state, channel, generator=generator) if fn is not None else None
        if self.surface != "pilots":
            return inner
        out = self._radiate(pilot_signal(state, channel))
        return out if inner is None else inner + out


@contextmanager
def radiating(link: Link, radiator: Radiator) -> Iterator[Radiator]:
    """Put ``radiator`` on ``link`` (keeping any adversary it has) for the block, then restore."""
    old = link.adversary
    radiator.inner = old
    link.adversary = radiator
    try:
        yield radiator
    finally:
        link.adversary = old
