"""Jamming a separated digital link (``semguard.baselines``' WebP + 5G LDPC + QAM) at the same PSR
budget as the learned codecs: a channel wrapper that adds the jammer's signal at the receiver.

Two jammers, each at exactly ``psr_db`` per block relative to the received signal ``h x``:

* :func:`gaussian_jam`: equal-power complex Gaussian noise (the control).
* :func:`boundary_jam`: the worst-case symbol-domain jammer, which knows the transmitted symbols and
  the fading: it pushes the cheapest constellation coordinates just across their nearest decision
  boundary (half the minimum distance, plus a margin), as many per block as the budget pays for; what
  is left widens the moves it made.  Each flipped coordinate is a confident wrong LLR for the decoder.

* :func:`burst_jam`: Gaussian jamming concentrated on a ``fraction`` of the block (its first
  symbols), the whole block's budget spent there.  An image over the separated link is lost when any
  one LDPC codeword fails, so the white-box jammer that knows the codeword layout spends its power
  on one codeword rather than spreading it thin over all of them.

And one pilot jammer (:func:`pilot_jam`, through ``Channel.corrupt_pilots``), white-box on the fading
it corrupts: per coherence block it adds ``r h e^{j theta}`` to the received pilots, ``r`` the PSR
budget's amplitude against the received pilots ``h`` (the pilot attack's convention on the learned
codecs), so the receiver's estimate becomes ``h (1 + r e^{j theta})``: ``phase`` turns it by the
largest angle ``r`` can buy (``arcsin r``, ``theta = pi/2 + arcsin r``) and ``scale`` shrinks it to
``(1 - r) h`` (``theta = pi``), which mis-scales every QAM decision and the LLRs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from semguard.attacks.base import attacker_generator
from semguard.channels import functional as F
from semguard.channels.base import Channel, ChannelState

__all__ = ["JammedChannel", "PILOT_MODES", "boundary_jam", "burst_jam", "gaussian_jam", "pilot_jam"]

Jammer = Callable[[Tensor, ChannelState], Tensor]
PilotJammer = Callable[[Tensor], Tensor]
PILOT_MODES = ("phase", "scale")


def pilot_jam(psr_db: float, mode: str = "phase") -> PilotJammer:
    """A pilot jammer: ``jam(h_blocks [B, n_blocks]) -> delta [B, n_blocks]`` with
    ``|delta| = 10^(psr/20) |h|`` exactly in every block (see the module docstring for ``mode``)."""
    if not torch.isfinite(torch.tensor(float(psr_db))):
        raise ValueError(f"psr_db must be finite, got {psr_db}")
    if mode not in PILOT_MODES:
        raise ValueError(f"mode must be one of {', '.join(PILOT_MODES)}, got {mode!r}")
    r = 10 ** (psr_db / 20)
    theta = math.pi / 2 + math.asin(min(r, 1.0)) if mode == "phase" else math.pi

    def jam(hb: Tensor) -> Tensor:
        return hb * (r * complex(math.cos(theta), math.sin(theta)))

    return jam


def gaussian_jam(psr_db: float, *, seed: int = 0) -> Jammer:
    """A jammer of ``CN`` noise at exactly ``psr_db`` relative to ``h x`` per block."""
    rng = attacker_generator(seed)

    def jam(x: Tensor, state: ChannelState) -> Tensor:
        hx = state.h * x
        return F.project_psr(F.complex_normal(tuple(x.shape), generator=rng).to(x.device), hx, psr_db, exact=True)

    return jam


def burst_jam(psr_db: float, fraction: float, *, seed: int = 0) -> Jammer:
    """``CN`` noise on the first ``ceil(fraction n)`` symbols of each block only, at exactly ``psr_db``
    relative to ``h x`` over the whole block (so ``1/fraction`` times denser where it lands)."""
    if not torch.isfinite(torch.tensor(float(psr_db))):
        raise ValueError(f"psr_db must be finite, got {psr_db}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = attacker_generator(seed)

    def jam(x: Tensor, state: ChannelState) -> Tensor:
        m = math.ceil(fraction * x.shape[1])
        z = F.complex_normal(tuple(x.shape), generator=rng).to(x.device)  # the CPU stream, on any device
        z[:, m:] = 0
        return F.project_psr(z, state.h * x, psr_db, exact=True)

    return jam


def _boundary_moves(v: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """Per real coordinate ``v [B, m]`` of a PAM constellation: the signed move across its nearest
    decision boundary and its cost (squared length)."""
    levels = torch.unique(v.round(decimals=4))
    bounds = (levels[1:] + levels[:-1]) / 2                         # decision boundaries
    d = bounds.view(1, 1, -1) - v.unsqueeze(-1)                      # signed distances
    i = d.abs().argmin(-1, keepdim=True)
    near = d.gather(-1, i).squeeze(-1)
    dmin = (levels[1:] - levels[:-1]).min() if levels.numel() > 1 else torch.tensor(1.0)
    move = near + torch.sign(near) * margin * dmin
    return move, move.square()


def boundary_jam(psr_db: float, *, margin: float = 0.1) -> Jammer:
    """The worst-case symbol-domain jammer at exactly ``psr_db`` relative to ``h x`` per block."""
    if not torch.isfinite(torch.tensor(float(psr_db))):
        raise ValueError(f"psr_db must be finite, got {psr_db}")

    def jam(x: Tensor, state: ChannelState) -> Tensor:
        b, n = x.shape
        re_im = torch.view_as_real(x).reshape(b, 2 * n)
        move, cost = _boundary_moves(re_im, margin)
        budget = (10 ** (psr_db / 10)) * F.block_power(state.h * x) * n   # total power per block at Bob
        gain = state.h.abs().square().repeat_interleave(2, dim=1)          # a move costs |h|^2 at Bob
        cost = cost * gain
        order = cost.argsort(dim=1)
        cum = cost.gather(1, order).cumsum(1)
        take_sorted = cum <= budget.unsqueeze(1)
        take_sorted[:, 0] = True  # at least the cheapest move, even if the budget cannot complete it
        take = torch.zeros_like(take_sorted).scatter(1, order, take_sorted)
        delta = torch.view_as_complex((move * take).reshape(b, n, 2).contiguous())
        # exactly on the budget: what the last coordinate could not buy widens every taken move
        return F.project_psr(state.h * delta, state.h * x, psr_db, exact=True)

    return jam


class JammedChannel(Channel):
    """``inner`` with ``jammer(x, state)`` added at the receiver on every :meth:`apply`, and/or the
    pilots corrupted by ``pilot_jammer(h per block)`` on every :meth:`sample_state` (so any link that
    uses a semguard channel, the digital baseline included, is jammed)."""

    def __init__(self, inner: Channel, jammer: Jammer | None = None, *, pilot_jammer: PilotJammer | None = None) -> None:
        nn.Module.__init__(self)
        if not isinstance(inner, Channel):
            raise TypeError(f"inner must be a semguard Channel, got {type(inner).__name__}")
        if jammer is None and pilot_jammer is None:
            raise ValueError("jammer: give a data jammer, a pilot_jammer or both")
        if pilot_jammer is not None and (not inner.fading or getattr(inner, "csi", None) != "estimated"):
            raise ValueError(f"pilot_jammer: {type(inner).__name__} estimates no CSI from pilots; "
                             "a pilot attack needs a fading channel with csi='estimated'")
        self.inner, self.jammer, self.pilot_jammer = inner, jammer, pilot_jammer
        self.fading = inner.fading
        for k in ("coherence", "csi", "pilots", "csi_error_var", "equalizer"):
            setattr(self, k, getattr(inner, k, None))

    def sample_state(self, batch: int, n: int, snr_db: Tensor | float, *, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> ChannelState:
        state = self.inner.sample_state(batch, n, snr_db, generator=generator, device=device)
        if self.pilot_jammer is None:
            return state
        L = self.inner.coherence or n
        hb = state.h[:, ::L][:, : self.inner.pilot_blocks(n)]
        return self.inner.corrupt_pilots(state, self.pilot_jammer(hb))

    def apply(self, x: Tensor, state: ChannelState, *, generator: torch.Generator | None = None,
              interference: Tensor | None = None) -> Tensor:
        if self.jammer is None:
            return self.inner.apply(x, state, generator=generator, interference=interference)
        j = self.jammer(x, state)
        return self.inner.apply(x, state, generator=generator, interference=j if interference is None else interference + j)

    def equalize(self, y: Tensor, state: ChannelState) -> Tensor:
        return self.inner.equalize(y, state)

    def corrupt_pilots(self, state: ChannelState, delta: Tensor) -> ChannelState:
        return self.inner.corrupt_pilots(state, delta)
