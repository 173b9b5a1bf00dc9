"""Pilot-consistency check against the pilot attack: the receiver compares its pilot estimate of each
coherence block's fading with a data-aided estimate from the block's own symbols, raises an alarm when
they disagree by more than clean blocks do, and then equalises with the data-aided estimate instead.

The data-aided estimate uses only the codec's clean symbol statistics, fitted on reference sources: the
mean power ``p_i = E|x_i|^2`` and the non-circular second moment ``c_i = E[x_i^2]`` of each position.  On
a coherence block ``b`` of raw received symbols ``r_i = h x_i + w_i`` (zero-forced symbols times the
pilot estimate, so the receiver has them):

* ``|h|^2 ~ (sum_b |r_i|^2 - |b| N0) / sum_b p_i`` (unbiased);
* ``h^2 ~ sum_b r_i^2 conj(c_i) / sum_b |c_i|^2`` (the noise is circular, so it drops out on average),
  which fixes ``arg h`` up to ``pi``; the branch nearer the pilot estimate is taken (a PSR budget under
  0 dB cannot move the pilot estimate by ``pi / 2``).  Where the block's symbols are too nearly circular
  to tell (``|s|^2 < 20 sum |r_i|^4 |c_i|^2`` with ``s = sum r_i^2 conj(c_i)``, as in
  :mod:`semguard.channels.csi`) the phase is the pilots' and only the amplitude is checked.

The score of a block is ``max_b |h_pilot - h_data|^2 / e`` over its coherence blocks, ``e`` the pilot
estimate's known error variance (``N0 / pilots``), so a clean block with a perfect data-aided estimate
scores like the largest of ``n_blocks`` unit exponentials; the alarm
threshold is its ``1 - false_alarm`` quantile on clean reference transmissions at the operating SNR
(:meth:`PilotCheckDefense.calibrate`).  The pilots attacked at a PSR move the estimate by
``|delta|^2 = 10^(psr/10) |h|^2``, so they are seen once that exceeds the clean scatter of the data-aided
estimate, which shrinks with the symbols per coherence block.  :class:`CheckAwarePilotAttack` is the
adaptive attack: pilot PGD through the check that pays a penalty above its threshold.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from semguard.attacks.base import AttackContext
from semguard.attacks.pilot import PilotAttack
from semguard.channels import functional as F
from semguard.channels.base import ChannelState
from semguard.channels.csi import NONCIRCULARITY_TEST
from semguard.codecs.base import SemanticCodec
from semguard.defenses._wrapped import ReceiverWrapper
from semguard.link import Link
from semguard.registry import register

__all__ = ["data_aided_estimate", "PilotCheckCodec", "PilotCheckDefense", "CheckAwarePilotAttack"]


def _block_sum(z: Tensor, coherence: int) -> Tensor:
    b, n = z.shape
    k = -(-n // coherence)
    return torch.nn.functional.pad(z, (0, k * coherence - n)).reshape(b, k, coherence).sum(2)


def data_aided_estimate(raw: Tensor, n0: Tensor, power: Tensor, second: Tensor, coherence: int,
                        reference: Tensor) -> Tensor:
    """The data-aided fading estimate per coherence block ``[B, n_blocks]`` from raw received symbols
    ``raw [B, n]`` (``h x + w``), the noise power ``n0 [B, 1]``, the clean ``E|x_i|^2`` (``power [n]``) and
    ``E[x_i^2]`` (``second [n]``, complex); the phase branch nearer ``reference [B, n_blocks]`` is taken."""
    if raw.shape[1:] != power.shape or second.shape != power.shape:
        raise ValueError(f"pilot-check: fitted on blocks of {power.numel()} symbols, got {tuple(raw.shape)}")
    b, n = raw.shape
    counts = _block_sum(torch.ones(1, n, device=raw.device), coherence)
    amp2 = (_block_sum(raw.abs().square(), coherence) - counts * n0) / _block_sum(power.unsqueeze(0), coherence)
    h2 = (_block_sum(raw.square() * second.conj(), coherence)
          / _block_sum(second.abs().square().unsqueeze(0), coherence).to(raw.dtype))
    unit = torch.polar(torch.ones_like(amp2), torch.angle(h2) / 2)
    unit = torch.where(((unit * reference.conj()).real >= 0), unit, -unit)
    s2 = _block_sum(raw.square() * second.conj(), coherence).abs().square()
    informative = s2 >= NONCIRCULARITY_TEST * _block_sum(raw.abs().pow(4) * second.abs().square(), coherence)
    ref_unit = reference / reference.abs().clamp_min(1e-12)
    unit = torch.where(informative, unit, ref_unit)
    return amp2.clamp_min(1e-4).sqrt() * unit


class PilotCheckCodec(ReceiverWrapper):
    """``codec`` whose receiver checks its pilot estimate against the data (see the module)."""

    def __init__(self, codec: SemanticCodec, power: Tensor, second: Tensor, *, coherence: int,
                 threshold: float) -> None:
        super().__init__()
        self.codec, self.coherence, self.threshold = codec, int(coherence), float(threshold)
        self.register_buffer("power", power)
        self.register_buffer("second", second)
        self.output_key = codec.output_key
        self.config = {"coherence": self.coherence, "threshold": self.threshold}

    def check(self, y: Tensor, state: ChannelState) -> tuple[Tensor, ChannelState, Tensor, Tensor]:
        """``(y, state)`` re-equalised with the data-aided estimate where the alarm is raised, the score
        ``[B]`` and the alarm ``[B]`` (bool)."""
        if state.csi_error_var is None or state.equalizer == "none":
            raise ValueError("pilot-check: the link's channel must fade with csi='estimated' (pilots to check)")
        L = self.coherence
        y_zf, _ = state.zero_forced(y)
        raw = y_zf * state.h_est
        h_p = state.h_est[:, ::L]
        h_d = data_aided_estimate(raw, state.n0, self.power, self.second, L, h_p)
        score = ((h_p - h_d).abs().square() / state.csi_error_var).amax(1)
        alarm = score > self.threshold
        h_new = F.expand_blocks(torch.where(alarm.unsqueeze(1), h_d, h_p), y.shape[1], L)
        st = replace(state, h_est=h_new)
        return F.equalize(raw, h_new, state.n0, state.equalizer), st, score, alarm

    def decode(self, y: Tensor, state: ChannelState, **kw: Any) -> Tensor:
        y_new, st, _, _ = self.check(y, state)
        return self.codec.decode(y_new, st, **kw)


@register("defense", "pilot-check")
class PilotCheckDefense:
    """Fit the codec's symbol statistics, calibrate the alarm on clean transmissions; ``wrap(link)`` is
    the checking receiver.

    Args:
        false_alarm: the clean blocks' alarm rate the threshold is set for.
    """

    def __init__(self, *, false_alarm: float = 0.05) -> None:
        if not 0.0 < false_alarm < 1.0:
            raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
        self.false_alarm = float(false_alarm)
        self.power: Tensor | None = None
        self.second: Tensor | None = None
        self.threshold: float | None = None
        self.coherence: int | None = None

    def fit(self, link: Link, sources: Tensor, snr_db: float = 10.0, *, seed: int = 0,
            repeats: int = 4) -> "PilotCheckDefense":
        """Symbol statistics of the codec on reference ``sources`` and the threshold from ``repeats``
        clean transmissions of them over ``link``'s channel at ``snr_db`` (disjoint from evaluation)."""
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        ch = link.channel
        if not getattr(ch, "fading", False) or getattr(ch, "csi", None) != "estimated":
            raise ValueError("link: pilot-check needs a fading channel with csi='estimated'")
        if link.cipher is not None:
            raise ValueError("link: pilot-check is fitted to unciphered symbols")
        if sources.shape[0] < 2 or repeats < 1:
            raise ValueError("sources: need at least 2 reference sources and repeats >= 1")
        with torch.no_grad():
            x = link.codec.encode(sources, snr_db)
            self.power, self.second = x.abs().square().mean(0), x.square().mean(0)
            self.coherence = ch.coherence or x.shape[1]
            probe = self._codec(link, float("inf"))
            scores = []
            for r in range(repeats):
                out = link(sources, snr_db, generator=torch.Generator().manual_seed(seed + r), decode=False)
                scores.append(probe.check(out["received"], out["state"])[2])
        s = torch.cat(scores).double().numpy()
        self.threshold = float(np.quantile(s, 1.0 - self.false_alarm))
        return self

    def _codec(self, link: Link, threshold: float) -> PilotCheckCodec:
        assert self.power is not None and self.second is not None and self.coherence is not None
        return PilotCheckCodec(link.codec, self.power, self.second, coherence=self.coherence, threshold=threshold)

    def wrap(self, link: Link) -> Link:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if self.threshold is None:
            raise RuntimeError("pilot-check: fit() it on reference sources before wrapping a link")
        c = getattr(link.channel, "coherence", None)
        if not getattr(link.channel, "fading", False) or (c is not None and c != self.coherence):
            raise ValueError(f"link: pilot-check was fitted for a fading channel with coherence {self.coherence}")
        return Link(self._codec(link, self.threshold), link.channel, adversary=link.adversary,
                    eavesdropper=link.eavesdropper)


class CheckAwarePilotAttack(PilotAttack):
    """The adaptive pilot attack: PGD on the pilots through the checking receiver, on the task loss minus
    ``weight`` times the check's score above its threshold (it degrades the output while staying under
    the alarm, where it can).  The link must be wrapped by :class:`PilotCheckDefense`.

    Args:
        weight: penalty per unit of score above the threshold.
        margin: aim this far under the threshold (score units).
        **kw: the :class:`PilotAttack` arguments.
    """

    name = "check-aware-pilot"

    def __init__(self, *, weight: float = 100.0, margin: float = 0.0, **kw: Any) -> None:
        super().__init__(**kw)
        if not weight > 0:
            raise ValueError(f"weight must be > 0, got {weight}")
        self.weight, self.margin = float(weight), float(margin)

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "weight": self.weight, "margin": self.margin}

    def loss(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor:
        rx = ctx.link.codec
        if not isinstance(rx, PilotCheckCodec):
            raise ValueError("link: the check-aware pilot attack needs a link wrapped by pilot-check")
        base = super().loss(ctx, out)
        score = rx.check(out["received"], out["state"])[2]
        return base - self.weight * (score - rx.threshold + self.margin).clamp_min(0).to(base.dtype)
