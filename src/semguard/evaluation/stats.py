"""Uncertainty of a comparison: the paired gap between two systems measured on the same images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Gap", "paired_gap"]


@dataclass(frozen=True)
class Gap:
    """``mean`` of ``a - b`` over ``n`` images and the half-width of its confidence interval at
    ``level`` (Student t, ``n - 1`` degrees of freedom; ``nan`` when ``n < 2``)."""

    mean: float
    half_width: float
    n: int
    level: float = 0.95

    def to_json(self) -> dict[str, float | int | None]:
        """A JSON-safe dict (an undefined interval becomes ``None``)."""
        hw = None if math.isnan(self.half_width) else self.half_width
        return {"mean": self.mean, "half_width": hw, "n": self.n, "level": self.level}

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def paired_gap(a: Sequence[float], b: Sequence[float], *, draws: int = 1, level: float = 0.95) -> Gap:
    """The gap ``a - b`` between two systems measured on the same images.

    ``a`` and ``b`` hold one value per image and channel draw, draw-major (as
    :func:`semguard.evaluation.image_eval.codec_samples` returns them): ``draws`` blocks of the
    same ``N`` images.  The image is the unit of sampling, so each image's differences are first
    averaged over its draws (the two systems' draws are independent of each other; only the
    image pairs them), and the interval is a t interval over the ``N`` image means.
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    if draws < 1 or len(a) == 0 or len(a) % draws:
        raise ValueError(f"{len(a)} samples do not split into {draws} draws of the same images")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n = len(a) // draws
    # [draws, N] -> each image's difference averaged over its draws
    diff = (np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).reshape(draws, n).mean(axis=0)
    mean = float(diff.mean())
    if n < 2:
        return Gap(mean, math.nan, n, level)
    ci = stats.ttest_1samp(diff, 0.0).confidence_interval(level)
    return Gap(mean, float(ci.high - ci.low) / 2, n, level)
