"""Min-entropy estimation, privacy amplification and key confirmation.

* :func:`mcv_min_entropy`: NIST SP 800-90B section 6.3.1 most-common-value estimate,
  ``H = -log2(p_u)`` with ``p_u = min(1, p + 2.576 sqrt(p (1 - p) / (N - 1)))``.
* :func:`lhl_length`: leftover hash lemma (Impagliazzo-Levin-Luby 1989; Hastad et al. 1999):
  a 2-universal hash extracts ``l = floor(H_min - leaked - 2 log2(1/eps))`` bits that are
  ``eps``-close to uniform given the disclosed information.
* :func:`toeplitz_hash`: the 2-universal family of binary Toeplitz matrices ``l x n`` defined by
  ``n + l - 1`` public seed bits (Krawczyk, CRYPTO 1994), evaluated as a convolution by FFT.
* :func:`confirmation_tag`/:func:`confirm`: HMAC-SHA256 key confirmation (RFC 2104).
"""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np
from scipy import fft as sp_fft
from scipy.special import ndtr

__all__ = ["mcv_min_entropy", "predictive_min_entropy", "lhl_length", "toeplitz_hash", "confirmation_tag", "confirm", "bits_to_bytes"]


def mcv_min_entropy(symbols: np.ndarray) -> float:
    """Min-entropy per symbol (bits) of a 1-D symbol sequence, SP 800-90B most-common-value estimate."""
    s = np.asarray(symbols).ravel()
    n = s.size
    if n < 2:
        raise ValueError(f"need at least 2 symbols for a min-entropy estimate, got {n}")
    _, counts = np.unique(s, return_counts=True)
    p = counts.max() / n
    p_u = min(1.0, p + 2.576 * math.sqrt(p * (1.0 - p) / (n - 1)))
    return -math.log2(p_u)


def lhl_length(min_entropy_bits: float, leaked_bits: float, eps: float = 1e-6) -> int:
    """Secret bits extractable by universal hashing: ``max(0, floor(H - leaked - 2 log2(1/eps)))``."""
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    return max(0, math.floor(min_entropy_bits - leaked_bits - 2.0 * math.log2(1.0 / eps)))


def _full_convolution(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution of two real 1-D arrays by real FFTs of a fast length (what
    ``scipy.signal.fftconvolve`` does; ``scipy.signal`` is not imported because it loads ``scipy.stats``,
    over a second of every PLKG start)."""
    size = a.size + b.size - 1
    nfft = sp_fft.next_fast_len(size, real=True)
    return sp_fft.irfft(sp_fft.rfft(a, nfft) * sp_fft.rfft(b, nfft), nfft)[:size]


def toeplitz_hash(bits: np.ndarray, out_len: int, seed_bits: np.ndarray) -> np.ndarray:
    """``T x mod 2`` for the Toeplitz matrix ``T[i, j] = seed[i - j + n - 1]`` of shape ``[out_len, n]``.

    Args:
        bits: input bits ``[n]`` (0/1).
        out_len: output length ``l``.
        seed_bits: public seed ``[n + l - 1]`` (0/1): ``seed[n-1:]`` is the first column,
            ``seed[n-1::-1]`` the first row.

    Returns:
        ``[l]`` uint8 bits.
    """
    x = np.asarray(bits, dtype=np.float64).ravel()
    s = np.asarray(seed_bits, dtype=np.float64).ravel()
    n = x.size
    if out_len < 0 or out_len > n:
        raise ValueError(f"output length must be in [0, {n}], got {out_len}")
    if s.size != n + out_len - 1 and out_len > 0:
        raise ValueError(f"seed must have n + l - 1 = {n + out_len - 1} bits, got {s.size}")
    if out_len == 0:
        return np.zeros(0, dtype=np.uint8)
    # (T x)_i = sum_j seed[i - j + n - 1] x_j = (seed * x)[i + n - 1]  (full convolution)
    conv = _full_convolution(s, x)[n - 1: n - 1 + out_len]
    return (np.rint(conv).astype(np.int64) & 1).astype(np.uint8)


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Pack 0/1 bits (MSB first, zero padded to a byte) into bytes."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


def confirmation_tag(key: bytes, nonce: bytes, role: bytes = b"alice") -> bytes:
    """HMAC-SHA256 over ``"semguard-confirm" || role || nonce`` under ``key``."""
    return hmac.new(key, b"semguard-confirm|" + role + b"|" + nonce, hashlib.sha256).digest()


def confirm(key: bytes, tag: bytes, nonce: bytes, role: bytes = b"alice") -> bool:
    """Constant-time check of a peer's :func:`confirmation_tag`."""
    return hmac.compare_digest(confirmation_tag(key, nonce, role), tag)


def predictive_min_entropy(x: np.ndarray, thresholds: np.ndarray, order: int = 32) -> float:
    """Min-entropy per probe (bits) of quantised components given the probe's own past.

    Fits a least-squares linear predictor of order ``order`` to each column of ``x [T, D]``;
    with predictions ``m_t`` and prediction-error std ``s``, the chance of guessing the quantiser
    cell (``thresholds [K, D]``) of sample ``t`` from the past is ``max_k P(cell_k | N(m_t, s^2))``.
    Returns ``-log2`` of that chance averaged over ``t``, summed over the columns (the
    prediction estimator idea of SP 800-90B section 6.3.7-6.3.10, with a Gaussian predictor).
    Band-limited fading sampled above its Nyquist rate is largely predictable, which the IID
    most-common-value estimate misses.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] <= 4 * order:
        raise ValueError(f"need x [T, D] with T > 4 * order = {4 * order}, got {x.shape}")
    total = 0.0
    win = np.lib.stride_tricks.sliding_window_view(x, order, axis=0)[:-1]  # [T-order, D, order]
    for d in range(x.shape[1]):                                           # loop over the 2 columns
        past, target = win[:, d, :], x[order:, d]
        coef, *_ = np.linalg.lstsq(past, target, rcond=None)
        pred = past @ coef
        s = max(float(np.std(target - pred)), 1e-9)
        edges = np.concatenate([[-np.inf], np.sort(thresholds[:, d]), [np.inf]])
        cdf = ndtr((edges[None, :] - pred[:, None]) / s)                  # [T', K+2], the normal CDF
        p_guess = float(np.diff(cdf, axis=1).max(axis=1).mean())
        total += -math.log2(max(p_guess, 2.0 ** -16))
    return total
