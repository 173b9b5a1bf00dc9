"""A learned eavesdropper: trained on sessions she simulates herself to predict Alice's final key bits.

Per final key bit ``j`` she has what her replay (:mod:`semguard.keys.replay`) derives from her
own observations and every public message: her key bit ``b_j``, the log2 bias
``log2 |E[(-1)^key_j]|`` of that bit under her bit posteriors (piling-up lemma over the public
Toeplitz row) and whether Bob's public tag confirmed her key.  A logistic regression on
``[s, s 2^bias, s tag, 1]`` (``s = 2 b - 1``), fitted by Newton's method with a small L2 penalty,
learns how far to trust each.  Its accuracy on held-out sessions, with a Clopper-Pearson
interval, is the empirical check of a secrecy claim: it must not exceed 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

__all__ = ["design", "fit_logistic", "LearnedEve", "evaluate_learned_eve"]


def design(eve_features: np.ndarray) -> np.ndarray:
    """``eve_features [L, 3]`` (bit, log2 bias, tag confirmed) -> design matrix ``[L, 4]``."""
    f = np.asarray(eve_features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"Eve's features must be [L, 3], got {f.shape}")
    s = 2.0 * f[:, 0] - 1.0
    return np.stack([s, s * np.exp2(np.clip(f[:, 1], -60.0, 0.0)), s * f[:, 2], np.ones_like(s)], axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Weights of ``P(y = 1 | x) = sigmoid(x w)`` by Newton's method with penalty ``l2 |w|^2 / 2``."""
    w = np.zeros(x.shape[1])
    for _ in range(iters):                                                # Newton steps, each over all rows
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


@dataclass(frozen=True)
class LearnedEve:
    """Held-out accuracy of the learned Eve on Alice's key bits and its two-sided Clopper-Pearson interval."""

    accuracy: float
    ci_low: float
    ci_high: float
    test_bits: int
    train_bits: int
    confidence: float
    weights: tuple[float, ...]

    @property
    def at_chance(self) -> bool:
        """0.5 lies within the interval (or above it: Eve does no better than guessing)."""
        return self.ci_low <= 0.5

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "test_bits": self.test_bits, "train_bits": self.train_bits, "confidence": self.confidence,
                "weights": list(self.weights), "at_chance": self.at_chance}


def evaluate_learned_eve(train: list[tuple[np.ndarray, np.ndarray]], test: list[tuple[np.ndarray, np.ndarray]],
                         confidence: float = 0.99) -> LearnedEve:
    """Fit on ``train`` sessions and score on ``test`` sessions, each ``(eve_features [L, 3], alice_bits [L])``."""
    if not train or not test:
        raise ValueError("the learned Eve needs at least one training and one held-out session with a key")
    xt = np.concatenate([design(f) for f, _ in train])
    yt = np.concatenate([np.asarray(b, dtype=np.float64) for _, b in train])
    w = fit_logistic(xt, yt)
    xs = np.concatenate([design(f) for f, _ in test])
    ys = np.concatenate([np.asarray(b) for _, b in test])
    k, n = int(((xs @ w > 0).astype(np.int64) == ys).sum()), int(ys.size)
    a = (1.0 - confidence) / 2.0
    lo = float(beta.ppf(a, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta.ppf(1.0 - a, k + 1, n - k)) if k < n else 1.0
    return LearnedEve(accuracy=k / n, ci_low=lo, ci_high=hi, test_bits=n, train_bits=int(yt.size),
                      confidence=confidence, weights=tuple(float(v) for v in w))
