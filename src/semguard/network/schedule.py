"""Scheduling messages under a collapsing channel-use budget: critical messages first.

A frame has ``budget`` complex channel uses for a queue of images, each of which needs
``sizes[i]`` uses at full quality (SoftCast at cbr 1/6).  Each message can also be sent with
fewer uses: it then carries only its strongest PCA coefficients (largest variance, water-filled
among themselves), so its quality drops gracefully.  Policies:

* ``fifo``: in arrival order, each message gets all it needs until the budget runs out;
* ``uniform``: every message gets the same fraction ``budget / sum(sizes)`` of its size;
* ``priority``: the critical messages share the budget first (in proportion to their sizes, up
  to full quality), the rest share what remains the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from semguard.channels.base import Channel
from semguard.codecs.analog import AnalogJSCC, waterfilling_gains

__all__ = ["POLICIES", "budget_sweep", "schedule", "send_truncated"]

POLICIES = ("fifo", "uniform", "priority")


def schedule(sizes: Sequence[int], critical: Sequence[bool], budget: int, policy: str) -> np.ndarray:
    """Channel uses granted to each message ``[M]`` (ints, summing to at most ``budget``)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    crit = np.asarray(critical, dtype=bool)
    if sizes.shape != crit.shape or (sizes < 0).any():
        raise ValueError(f"sizes and critical must be the same length with sizes >= 0, got {sizes.shape}, {crit.shape}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0 channel uses, got {budget}")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    out = np.zeros_like(sizes)
    if policy == "uniform":
        frac = min(1.0, budget / max(1, sizes.sum()))
        return np.floor(sizes * frac).astype(np.int64)
    order = np.arange(len(sizes)) if policy == "fifo" else np.concatenate([np.flatnonzero(crit), np.flatnonzero(~crit)])
    left = budget
    if policy == "priority":
        for group in (np.flatnonzero(crit), np.flatnonzero(~crit)):
            if len(group) and left > 0:
                frac = min(1.0, left / max(1, sizes[group].sum()))
                out[group] = np.floor(sizes[group] * frac)
                left -= int(out[group].sum())
        return out
    for i in order:
        out[i] = min(sizes[i], left)
        left -= out[i]
    return out


@torch.no_grad()
def send_truncated(codec: AnalogJSCC, image: Tensor, uses: int, channel: Channel, snr_db: float, *,
                   design_snr_db: float = 10.0, generator: torch.Generator | None = None) -> Tensor:
    """One image ``[1, 3, H, W]`` in ``uses`` channel uses: its ``2 uses`` highest-variance
    coefficients (over all blocks) with water-filled gains, LMMSE at the receiver; 0 uses sends
    nothing and returns the basis mean.  The scale travels as side information."""
    c = codec
    blocks = c._blocks(image.float())                                          # [1, L, d]
    nb = blocks.shape[1]
    lam = c.log_lam.detach().exp().expand(nb, -1).reshape(-1)                  # [L*k]
    m = min(2 * max(0, int(uses)), lam.numel())
    m -= m % 2
    coef = ((blocks - c.mean) @ (c.enc_basis.T / c._root_d)).reshape(-1)
    est = torch.zeros_like(coef)
    if m > 0:
        keep = lam.argsort(descending=True, stable=True)[:m]
        g = waterfilling_gains(lam[keep], 10 ** (design_snr_db / 10))
        u = coef[keep] * g
        scale = u.square().mean().mul(2).sqrt()
        x = torch.view_as_complex((u / scale).reshape(-1, 2).contiguous()).unsqueeze(0)
        y, st = channel(x, snr_db, generator=generator)
        yz, n0 = st.zero_forced(y)
        r = torch.view_as_real(yz).reshape(-1) * scale
        nv = (0.5 * n0).repeat_interleave(2, dim=1).reshape(-1) * scale.square()
        est[keep] = r * (g * lam[keep]) / (g.square() * lam[keep] + nv)
    out = est.reshape(1, nb, c.k) @ (c.dec_basis / c._root_d) + c.mean
    return F.fold(out.transpose(1, 2), tuple(image.shape[-2:]), c.block, stride=c.block).clamp(0, 1)


def budget_sweep(codec: AnalogJSCC, images: Tensor, critical: Sequence[bool], fractions: Sequence[float],
                 channel: Channel, snr_db: float, *, seed: int = 0) -> list[dict]:
    """Mean PSNR of the critical and of the routine messages per policy and budget fraction
    (of the queue's full-quality channel uses)."""
    if len(critical) != images.shape[0]:
        raise ValueError(f"critical needs one flag per image ({images.shape[0]}), got {len(critical)}")
    full = codec.n_symbols(tuple(images.shape))
    crit = np.asarray(critical, dtype=bool)
    rows = []
    for frac in fractions:
        if not 0 <= frac <= 1:
            raise ValueError(f"budget fractions must be in [0, 1], got {frac}")
        for pol in POLICIES:
            uses = schedule([full] * images.shape[0], crit, int(frac * full * images.shape[0]), pol)
            g = torch.Generator().manual_seed(seed)
            psnr = []
            for i in range(images.shape[0]):
                xh = send_truncated(codec, images[i:i + 1], int(uses[i]), channel, snr_db, generator=g)
                psnr.append(float(10 * torch.log10(1.0 / (xh - images[i:i + 1]).square().mean().clamp_min(1e-10))))
            p = np.asarray(psnr)
            rows.append({"budget_fraction": frac, "policy": pol, "critical_psnr": float(p[crit].mean()),
                         "routine_psnr": float(p[~crit].mean()) if (~crit).any() else None})
    return rows
