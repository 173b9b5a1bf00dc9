"""Blind refinement of pilot-estimated CSI from a block's own symbols.

A least-squares estimate from a few pilots leaves a residual gain ``r = h / h_est`` on every
equalised symbol of a fading block.  A digital receiver shrugs off a small ``r``; an analog one
does not: a residual rotation mixes the two real values every complex symbol carries, and a
residual amplitude rescales every value.  Two facts about semguard's analog codecs fix ``r``
per block without more pilots:

* their blocks have unit power exactly (not only on average), so
  ``|r|^2 = mean |y|^2 - mean noise`` (zero-forced ``y``);
* the two values a symbol pairs are positively correlated (neighbouring blocks' PCA
  coefficients in SoftCast, neighbouring latent values in DeepJSCC), so ``E[x^2] = j c`` with
  ``c > 0`` -- the symbols are not circular -- while circular noise has ``E[w^2] = 0``; hence
  ``arg(sum y^2) = 2 arg(r) + pi/2``.  That fixes ``arg(r)`` up to ``pi``, and the pilots'
  estimate (``r ~ 1``) picks the branch.

Only blocks whose estimate is one coefficient over the whole block are refined.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from semguard.channels import functional as F
from semguard.channels.base import ChannelState

__all__ = ["refine_csi", "NONCIRCULARITY_TEST"]

# For circular y (no phase information), |sum y^2|^2 / sum |y|^4 is about Exp(1)-distributed, so
# above 20 (p ~ 2e-9) the symbols' non-circularity is real and fixes the phase; below it the
# pilots keep the phase.
NONCIRCULARITY_TEST = 20.0


def refine_csi(y: Tensor, state: ChannelState, *, n_ref: int | None = None) -> tuple[Tensor, ChannelState]:
    """Equalised symbols ``y [B, n]`` and their state -> the same re-equalised with the refined
    estimate ``h_est r`` (and the state carrying it).  A no-op with perfect CSI (``state.csi_error_var``
    is None).  ``n_ref``: how many leading symbols to take the phase from (default: all)."""
    if state.csi_error_var is None:
        return y, state
    h = state.h_est
    y_zf, noise = state.zero_forced(y)
    flat = (h == h[:, :1]).all(dim=1, keepdim=True)                           # [B, 1]
    ref = y_zf[:, :n_ref] if n_ref else y_zf
    s = ref.square().sum(dim=1, keepdim=True)
    theta = torch.remainder((torch.angle(s) - math.pi / 2) / 2 + math.pi / 2, math.pi) - math.pi / 2
    informative = s.abs().square() >= NONCIRCULARITY_TEST * ref.abs().pow(4).sum(dim=1, keepdim=True)
    theta = torch.where(informative, theta, torch.zeros_like(theta))
    power = y_zf.abs().square().mean(dim=1, keepdim=True) - noise.mean(dim=1, keepdim=True)
    r = torch.where(flat, torch.polar(power.clamp_min(1e-2).sqrt(), theta), torch.ones_like(theta))
    h_new = h * r.to(h.dtype)
    y_new = F.equalize(y_zf * h, h_new, state.n0, state.equalizer) if state.equalizer != "none" else y
    return y_new, replace(state, h_est=h_new)
