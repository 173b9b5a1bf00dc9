"""The joint attack on a detector and the codec, written once: PGD on the codec's loss minus
``weight`` times the detector's score above ``threshold - margin``, so the perturbation degrades
the output while staying under the alarm.  A subclass says only which score the detector gives
the perturbed link (:meth:`DetectorPenaltyPGD.detector_score`)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from semguard.attacks.base import AttackContext
from semguard.attacks.pgd import PGD

__all__ = ["DetectorPenaltyPGD"]


class DetectorPenaltyPGD(PGD):
    def __init__(self, *, detector: Any, weight: float = 10.0, margin: float = 0.0, **kw: Any) -> None:
        super().__init__(**kw)
        if detector.threshold is None:
            raise ValueError("detector: calibrate its threshold before the adaptive attack uses it")
        if not weight > 0:
            raise ValueError(f"weight must be > 0, got {weight}")
        self.detector, self.weight, self.margin = detector, float(weight), float(margin)

    def extra_config(self) -> dict[str, Any]:
        return {**super().extra_config(), "threshold": self.detector.threshold, "weight": self.weight,
                "margin": self.margin}

    def detector_score(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def loss(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor:
        base = super().loss(ctx, out)
        excess = self.detector_score(ctx, out) - self.detector.threshold + self.margin
        return base - self.weight * excess.clamp_min(0).to(base.dtype)
