"""Detection of jammed received blocks: the receiver knows ``N0`` and its codec's symbol statistics, so a
jammer raises the block's residual above what the noise explains.

Two statistics on an equalised AWGN block ``y = x + w (+ j)``, ``[B, n]`` complex:

* ``energy``: ``| ||y||^2 / n - (1 + N0) |`` (the block power's departure from unit signal power plus the
  noise, two-sided: a jammer that cancels part of the signal lowers it);
* ``whitened`` (default): the Mahalanobis distance of ``y`` (as ``2n`` reals) under ``N(mu, S + N0/2 I)``,
  ``mu`` and ``S`` the mean and covariance of the codec's clean symbols fitted on reference sources; it
  is ``chi^2(2n)`` if the symbols were Gaussian, and a jammer that moves ``y`` off the codec's symbol
  distribution (into directions where ``S`` is small) raises it most.

The receiver raises an alarm above a threshold set for a false-alarm rate on clean blocks
(:meth:`ResidualDetector.calibrate`); what it does on an alarm is the caller's choice (here: drop the block
and ask for a retransmission, counted as caught).  :class:`DetectorAwarePGD` is the joint adaptive attack:
PGD that degrades the decision while paying a penalty above the alarm threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from semguard.attacks.base import AttackContext
from semguard.channels.base import ChannelState
from semguard.codecs.base import SemanticCodec
from semguard.defenses._adaptive import DetectorPenaltyPGD
from semguard.registry import register

__all__ = ["roc_auc", "far_at_detection", "ResidualDetector", "DetectorAwarePGD", "STATISTICS"]

STATISTICS = ("whitened", "energy")


def roc_auc(clean: Tensor, attacked: Tensor) -> float:
    """Area under the ROC curve of scores (higher: more suspicious), the Mann-Whitney U statistic with
    ties counted one half."""
    c, a = clean.double().reshape(-1), attacked.double().reshape(-1)
    if c.numel() == 0 or a.numel() == 0:
        raise ValueError("roc_auc needs clean and attacked scores")
    gt = (a.unsqueeze(1) > c.unsqueeze(0)).double().mean()
    eq = (a.unsqueeze(1) == c.unsqueeze(0)).double().mean()
    return float(gt + 0.5 * eq)


def far_at_detection(clean: Tensor, attacked: Tensor, detection: float = 0.95) -> float:
    """False-alarm rate on clean blocks at the threshold that detects ``detection`` of attacked ones."""
    if not 0.0 < detection <= 1.0:
        raise ValueError(f"detection must be in (0, 1], got {detection}")
    a = torch.sort(attacked.double().reshape(-1)).values
    k = int(np.floor((1.0 - detection) * a.numel() + 1e-9))  # the largest threshold still detecting that many
    thr = float(a[min(k, a.numel() - 1)])
    return float((clean.double() >= thr).double().mean())


@register("defense", "residual-detector")
class ResidualDetector:
    """Scores received blocks against what noise and the codec's symbol statistics explain.

    Args:
        statistic: ``whitened`` or ``energy``.
        ridge: added to the fitted covariance's diagonal (numerical floor).
    """

    def __init__(self, *, statistic: str = "whitened", ridge: float = 1e-4) -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
        self.statistic, self.ridge = statistic, float(ridge)
        self.mu: Tensor | None = None
        self.cov: Tensor | None = None
        self.threshold: float | None = None

    def fit(self, codec: SemanticCodec, sources: Tensor, snr_db: float = 10.0) -> "ResidualDetector":
        """Fit the clean symbol mean and covariance on reference ``sources`` (disjoint from evaluation)."""
        with torch.no_grad():
            x = codec.encode(sources, snr_db)
        if not torch.is_complex(x):
            raise ValueError("codec: the detector needs complex symbols from the codec's encoder")
        r = torch.view_as_real(x).flatten(1).double()
        if r.shape[0] <= r.shape[1]:
            raise ValueError(f"sources: need more reference blocks ({r.shape[0]}) than real dimensions "
                             f"({r.shape[1]}) to fit the covariance")
        self.mu, self.cov = r.mean(0), torch.cov(r.T)
        return self

    def score(self, y: Tensor, state: ChannelState) -> Tensor:
        """Residual score per block ``[B]`` (differentiable in ``y``)."""
        if not torch.is_complex(y) or y.dim() != 2:
            raise ValueError(f"score expects received blocks complex [B, n], got {y.dtype} {tuple(y.shape)}")
        n0 = state.n0.reshape(-1).to(torch.float64)
        if self.statistic == "energy":
            return (y.abs().square().mean(1).double() - 1.0 - n0).abs()
        if self.mu is None or self.cov is None:
            raise RuntimeError("detector: fit() it on reference sources before scoring")
        r = torch.view_as_real(y).flatten(1).double() - self.mu
        if r.shape[1] != self.mu.numel():
            raise ValueError(f"score: blocks of {r.shape[1] // 2} symbols, fitted on {self.mu.numel() // 2}")
        eye = torch.eye(r.shape[1], dtype=torch.float64)
        res = torch.zeros(r.shape[0], dtype=torch.float64)
        for v in torch.unique(n0):  # one covariance per noise level
            prec = torch.linalg.inv(self.cov + (float(v) / 2 + self.ridge) * eye)
            res = torch.where(n0 == v, ((r @ prec) * r).sum(1), res)
        return res

    def calibrate(self, clean_scores: Tensor, false_alarm: float = 0.05) -> float:
        """Set the alarm threshold at the ``1 - false_alarm`` quantile of clean scores."""
        if not 0.0 < false_alarm < 1.0:
            raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
        self.threshold = float(np.quantile(clean_scores.double().numpy(), 1.0 - false_alarm))
        return self.threshold

    def alarm(self, y: Tensor, state: ChannelState) -> Tensor:
        if self.threshold is None:
            raise RuntimeError("detector: calibrate() a threshold before raising alarms")
        return self.score(y, state) > self.threshold


class DetectorAwarePGD(DetectorPenaltyPGD):
    """Joint attack on the detector and the codec: PGD on the task loss minus ``weight`` times the
    detector's score above its threshold, so the attack degrades the output while staying under the alarm.

    Args:
        detector: a fitted, calibrated :class:`ResidualDetector` (the attacker knows it: white-box).
        weight: penalty per unit of score above the threshold.
        margin: aim this far (in score units) under the threshold.
        **kw: the :class:`PGD` arguments.
    """

    name = "detector-aware-pgd"

    def __init__(self, *, detector: ResidualDetector, weight: float = 10.0, margin: float = 0.0,
                 **kw: Any) -> None:
        super().__init__(detector=detector, weight=weight, margin=margin, **kw)

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "detector": self.detector.statistic}

    def detector_score(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor:
        return self.detector.score(out["received"], out["state"])
